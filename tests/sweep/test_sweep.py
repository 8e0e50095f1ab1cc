import json
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from resnet_bench.machine import fingerprint
from resnet_bench.measure.timing import StopRule
from resnet_bench.results import runs, schema
from resnet_bench.results.runs import start
from resnet_bench.sweep.config import SweepConfig
from resnet_bench.sweep.sweep import Sweep

QUICK_RULE = StopRule(warmup_iters=2, warmup_s=0.0, min_iters=6, min_s=0.1, max_s=10.0)  # 6: a bounded median


def small_config(store_dir, **overrides):
    base = dict(depths=(18,), batches=(1, 2), backends=("torch", "onnxruntime", "tensorrt"),
                input_size=64, parity_images=8, artifacts=str(store_dir), rule=QUICK_RULE)
    return SweepConfig(**{**base, **overrides})


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, store_dir, small_artifacts):
    run_dir = tmp_path_factory.mktemp("runs") / "run"
    config = small_config(store_dir)
    start(config, run_dir)
    Sweep(config, run_dir).run()
    return run_dir


def test_every_cell_is_one_row_with_every_column(small_run, resnet18_model):
    frame = runs.load(small_run)
    assert len(frame) == 3 * 2 * 2  # backends x modes x batches
    assert list(frame.columns) == runs.COLUMNS
    ok = frame[frame.status == "ok"]
    assert set(ok.backend) == {"torch", "onnxruntime"} and len(ok) == 8
    for row in ok.itertuples():  # each figure is reproducible from the raw samples kept beside it
        assert np.median(runs.load_samples(small_run, row.cell_id)) == pytest.approx(row.latency_ms_p50, abs=1e-5)
    assert (ok.iterations >= 6).all() and (ok.images_per_s > 0).all()
    assert (ok.parity_status == "pass").all() and (ok.rel_l2_err < 1e-5).all()
    # a network cannot outrun a large GEMM on the same CPUs, nor a CPU 64 fp32 FLOPs a cycle at 6 GHz
    assert ((0 < ok.roofline_fraction) & (ok.roofline_fraction < 1)).all()
    assert (ok.peak_gflops < 64 * 6 * fingerprint.collect()["cpus_available"]).all()
    with FlopCounterMode(display=False) as counter:  # FLOPs counted by torch, not by our formula
        resnet18_model(torch.zeros(1, 3, 64, 64))
    assert np.allclose(ok.achieved_gflops, counter.get_total_flops() / 1e9 * ok.images_per_s, rtol=1e-9)
    assert (ok.paper_gmacs == 1.8).all()
    # throughput rows run several requests at once, latency rows one
    assert set(ok[ok["mode"] == "latency"].streams) == {1}
    assert (ok[ok["mode"] == "throughput"].streams >= 2).all()


def test_every_timed_cell_has_its_median_interval_and_says_what_it_cannot_bound(small_run):
    ok = runs.load(small_run).query("status == 'ok'")
    assert (ok.schema_version == schema.SCHEMA_VERSION).all() and ok.median_precision.notna().all()
    assert ((ok.latency_ms_p50_low <= ok.latency_ms_p50) & (ok.latency_ms_p50 <= ok.latency_ms_p50_high)).all()
    short = ok[ok.iterations < 368]  # too few samples for a p99 upper bound: empty and said, not the max
    assert len(short) and short.latency_ms_p99.isna().all() and short.latency_ms_p99_high.isna().all()
    assert short.unbounded.str.contains("p99: a 95% upper bound needs >= 368 samples, have ").all()
    assert (ok.valid == ok.invalid_reasons.isna()).all()  # valid exactly when no reason is given


def test_the_sweep_rule_survives_the_config_file():
    config = SweepConfig()
    assert config.rule.target_precision == 0.01
    assert SweepConfig.from_json(json.loads(json.dumps(config.to_json()))).rule == config.rule


def test_unavailable_backend_is_rows_with_the_reason(small_run):
    frame = runs.load(small_run)
    trt = frame[frame.backend == "tensorrt"]
    assert len(trt) == 4 and set(trt.status) == {"unavailable"}
    assert trt.error.str.contains("TensorRT|CUDA").all()


def test_samples_and_fingerprint_are_kept(small_run):
    frame = runs.load(small_run)
    row = frame[frame.status == "ok"].iloc[0]
    samples = runs.load_samples(small_run, row.cell_id)
    assert len(samples) == row.iterations
    assert min(samples) == pytest.approx(row.latency_ms_min)
    recorded = json.loads((small_run / "fingerprint.json").read_text())
    assert recorded["fingerprint_id"] == row.fingerprint_id
    assert {"cpu_model", "cpus_available", "torch", "onnxruntime", "git_commit"} <= set(recorded)


def test_fingerprint_id_follows_hard_keys_only():
    here = fingerprint.collect()
    soft_change = {**here, "kernel": "other", "git_commit": "x"}
    assert fingerprint.fingerprint_id(soft_change) == here["fingerprint_id"]
    assert fingerprint.fingerprint_id({**here, "cpu_model": "Other CPU"}) != here["fingerprint_id"]


def test_oom_at_one_batch_skips_larger_batches(tmp_path, store_dir, small_artifacts, monkeypatch):
    import torch

    from resnet_bench.backends.torch_backend import TorchBackend
    real_run = TorchBackend.run

    def run(self, x):  # fault injection: the real backend runs out of memory at batches 2 and 4
        if x.shape[0] in (2, 4):  # (parity runs chunks of 8 images first, and must pass)
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_run(self, x)

    monkeypatch.setattr(TorchBackend, "run", run)
    config = small_config(store_dir, batches=(1, 2, 4), backends=("torch", "onnxruntime"), modes=("latency",),
                          roofs=False)
    start(config, tmp_path / "run")
    frame = pd.DataFrame(Sweep(config, tmp_path / "run").run().rows)
    torch_rows = frame[frame.backend == "torch"].set_index("batch_size")
    assert torch_rows.loc[1, "status"] == "ok"
    assert torch_rows.loc[2, "status"] == "oom" and "out of memory" in torch_rows.loc[2, "error"]
    assert torch_rows.loc[4, "status"] == "oom" and "not run" in torch_rows.loc[4, "error"]
    assert set(frame[frame.backend == "onnxruntime"].status) == {"ok"}  # the sweep went on


def _bench(*args):
    return [sys.executable, "-m", "resnet_bench", "bench", "--confirm-s", "0", "--no-roofs", *args]


def test_kill_mid_sweep_then_resume_runs_only_missing_cells(tmp_path, store_dir, small_artifacts):
    args = ["--depths", "18", "--input-size", "64", "--batches", "1,2", "--backends", "torch,onnxruntime",
            "--artifacts", str(store_dir), "--out", str(tmp_path), "--warmup-iters", "2",
            "--warmup-time", "0", "--min-iters", "5", "--min-time", "0.3", "--max-time", "1",
            "--format", "json"]
    process = subprocess.Popen(_bench(*args), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    csv = None
    while time.time() < deadline:
        found = list(tmp_path.glob("*/results.csv"))
        if found and len(pd.read_csv(found[0])) >= 3:
            csv = found[0]
            break
        time.sleep(0.2)
    assert csv is not None, "the sweep wrote no rows"
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = pd.read_csv(csv)  # the file is whole: written by rename
    assert 3 <= len(before) < 8
    result = subprocess.run(_bench("--resume", str(csv.parent), "--format", "json"), capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    after = pd.read_csv(csv)
    assert len(after) == 8 and after.cell_id.is_unique
    kept = after.set_index("cell_id").loc[before.cell_id]
    assert (kept.latency_ms_mean.values == before.latency_ms_mean.values).all()  # not re-measured
    assert {row["run_dir"] for row in json.loads(result.stdout)} == {str(csv.parent)}  # stdout is JSON only


def test_bench_bad_input(tmp_path, capsys):
    import torch

    from resnet_bench.cli import main

    if not torch.cuda.is_available():  # one real process: exit code and stderr as a shell sees them
        result = subprocess.run(_bench("--device", "cuda"), capture_output=True, text=True)
        assert result.returncode == 2 and result.stderr.count("\n") == 1
        assert "no CUDA device" in result.stderr
    for args, message in [(["--resume", str(tmp_path)], "cannot resume"),
                          (["--depths", "20"], "depth must be one of"),
                          (["--profile", "huge"], "profile must be one of"),
                          (["--modes", "offline"], "mode must be one of")]:
        assert main(_bench(*args)[3:]) == 2  # the rest in this process (~2.5 s of imports each saved)
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def test_profiles():
    quick = SweepConfig.from_profile("quick", "cpu")
    assert quick.depths == (18, 50) and quick.batches == (1, 8) and quick.modes == ("latency", "throughput")
    assert quick.backends == ("torch", "onnxruntime", "openvino")
    assert quick.precisions == ("fp32",) and quick.rule.target_precision == 0.02 and quick.rule.max_s == 30
    full = SweepConfig.from_profile("full", "cuda")
    assert full.depths == (18, 34, 50, 101, 152) and full.batches == (1, 8, 32, 128)
    assert full.precisions == ("fp32", "tf32", "fp16", "bf16")
    full_cpu = SweepConfig.from_profile("full", "cpu", rule_overrides={"max_s": 5.0})
    assert full_cpu.precisions == ("fp32", "bf16", "int8") and full_cpu.rule.target_precision == 0.01
    assert full_cpu.rule.max_s == 5.0
    # --max-time under the profile's 2 s minimum cuts the minimum; both given and crossed is an error
    assert SweepConfig.from_profile("quick", "cpu", rule_overrides={"max_s": 0.5}).rule.min_s == 0.5
    with pytest.raises(ValueError, match=r"max_s \(0.5\) must be >= min_s \(1"):
        SweepConfig.from_profile("quick", "cpu", rule_overrides={"max_s": 0.5, "min_s": 1.0})
    for nothing in (0.0, -1.0):  # refused in the user's words, not a field they never gave
        with pytest.raises(ValueError, match="--max-time must be more than 0 seconds"):
            SweepConfig.from_profile("quick", "cpu", rule_overrides={"max_s": nothing})
    assert SweepConfig.from_profile("quick", "cpu", depths=(50,)).depths == (50,)


def test_every_row_is_divided_by_the_best_roof_of_the_run(tmp_path):
    """A roof caught in a slow minute must not leave earlier cells above 1.0 of "peak": at the
    end, every row is divided by the best roof the run measured (never lowered)."""
    sweep = Sweep(SweepConfig(depths=(18,), backends=("onnxruntime",)), tmp_path / "run")
    cell = dict(depth=18, variant="v1.5", backend="onnxruntime", precision="fp32", device="cpu", mode="latency",
                input_size=224)
    sweep.writer.add({**cell, "batch_size": 1, "cell_id": "a", "status": "ok", "achieved_gflops": 200.0,
                      "peak_gflops": 180.0, "roofline_fraction": 200 / 180})
    sweep.writer.add({**cell, "batch_size": 8, "cell_id": "b", "status": "error"})
    sweep.peaks = {"fp32": 250.0}
    sweep._final_roof()
    frame = runs.load(tmp_path / "run")
    assert frame.peak_gflops.iloc[0] == 250.0 and frame.roofline_fraction.iloc[0] == pytest.approx(0.8)
    assert frame.peak_gflops.isna().iloc[1]
