"""The fleet on a Ray cluster started here with the documented ``ray start`` commands, each node on
its own loopback address (127.0.0.2 the head, 127.0.0.3 and up the workers, one CPU each): a small
sweep (ResNet-18 at 64 px, ONNX Runtime) on two machine kinds into one report with cost; a worker
killed mid-cell and a node removed mid-sweep lose no finished row; a killed driver resumes."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")

from resnet_bench.cli import main  # noqa: E402
from resnet_bench.fleet.run import FleetConfig, run_fleet  # noqa: E402
from resnet_bench.measure.timing import StopRule  # noqa: E402
from resnet_bench.results.runs import load  # noqa: E402
from resnet_bench.sweep.config import SweepConfig  # noqa: E402
from tests.fleet.cluster import LocalCluster  # noqa: E402

pytestmark = pytest.mark.fleet
REPO = Path(__file__).resolve().parents[2]
RULE = StopRule(warmup_iters=2, warmup_s=0.0, min_iters=6, min_s=0.05, max_s=1.0)
PRICES = """
[kinds.epyc-a]
price_per_hour = 0.192
basis = "on-demand, test"
date = "2026-12"
source = "a test of this suite"
"""


def small(batches=(1, 2), **overrides) -> SweepConfig:
    return SweepConfig(**{**dict(depths=(18,), batches=batches, backends=("onnxruntime",), modes=("latency",),
                                 input_size=64, parity_images=8, rule=RULE, roofs=False), **overrides})


@pytest.fixture
def cluster(request, tmp_path):
    kinds = getattr(request, "param", ["epyc-a", "epyc-b"])
    started = LocalCluster(kinds, tmp_path)
    try:
        yield started
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        started.stop()


@pytest.fixture(scope="module")
def two_kinds_cluster(tmp_path_factory):
    """One cluster of kinds epyc-a and epyc-b for the tests that leave both nodes up, and last the
    one that removes a node (a cluster start was 9.5-10.5 s of set-up in the suite's durations). These
    tests are the module's last: a ``cluster`` test after them would run beside this cluster (both
    heads on 127.0.0.2)."""
    started = LocalCluster(["epyc-a", "epyc-b"], tmp_path_factory.mktemp("cluster"))
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def shared(two_kinds_cluster):
    if len(two_kinds_cluster.removed):
        pytest.fail("the shared cluster lost a node before this test: the node-removing test must run last")
    yield two_kinds_cluster
    import ray

    if ray.is_initialized():
        ray.shutdown()


def _config(cluster, tmp_path, store_dir, sweep=None, prices=None) -> FleetConfig:
    return FleetConfig(cluster.address, sweep or small(), tmp_path / "fleet", prices, str(store_dir),
                       node_ip=cluster.head_ip)


def _rows(fleet: Path) -> list[dict]:
    return [r for folder in sorted(fleet.iterdir()) if (folder / "results.csv").is_file()
            for r in load(folder).to_dict("records")]


def test_bad_input_is_one_line_exit_2(tmp_path, capsys):
    nothing = ["fleet", "--address", "127.0.0.9:1", "--out", str(tmp_path)]
    assert main(nothing) == 2
    assert "no Ray cluster answers there within 10 s" in capsys.readouterr().err
    bad = tmp_path / "prices.toml"
    bad.write_text("[kinds.a]\nprice_per_hour = -1\nbasis='x'\ndate='y'\nsource='z'\n")
    assert main(["fleet", "--address", "127.0.0.9:1", "--prices", str(bad), "--out", str(tmp_path)]) == 2
    assert "price_per_hour must be a positive number" in capsys.readouterr().err
    bad.write_text("not toml [")
    assert main(["fleet", "--address", "127.0.0.9:1", "--prices", str(bad), "--out", str(tmp_path)]) == 2
    assert "not TOML" in capsys.readouterr().err


def test_without_ray_the_fleet_says_so_and_nothing_else_changes(tmp_path):
    code = ("import sys; sys.modules['ray'] = None; from resnet_bench.cli import main; "
            "sys.exit(main(sys.argv[1:]))")
    result = subprocess.run([sys.executable, "-c", code, "fleet", "--address", "auto"], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.strip() == (
        'resnet-bench: error: the fleet needs Ray, which is not installed: pip install -e ".[fleet]"')
    other = subprocess.run([sys.executable, "-c", code, "flops", "--format", "json"], cwd=REPO,
                           capture_output=True, text=True)
    assert other.returncode == 0 and json.loads(other.stdout)


@pytest.mark.parametrize("cluster", [[]], indirect=True)
def test_a_cluster_with_no_fleet_node_is_one_line_exit_2(cluster, tmp_path, capsys):
    assert main(["fleet", "--address", cluster.address, "--node-ip", cluster.head_ip, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "has no alive node offering the 'resnet_bench' resource" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("cluster", [["epyc-a", "epyc-a"]], indirect=True)
def test_a_worker_killed_mid_cell_loses_no_finished_row(cluster, tmp_path, store_dir, small_artifacts):
    """Two nodes of one kind; the worker running the group is SIGKILLed after its first row: the
    row stays, the missing cells are rerun on the other node (attempt 2), nothing twice."""
    config = _config(cluster, tmp_path, store_dir, small(batches=(1, 2, 4, 8), rule=StopRule(
        warmup_iters=2, warmup_s=0.0, min_iters=6, min_s=1.0, max_s=2.0)))
    killed: list[int] = []

    def kill_after_first_row() -> None:
        deadline = time.time() + 120
        while time.time() < deadline and not killed:
            if list(config.out.glob("*/results.csv")):
                found = subprocess.run(["pgrep", "-f", "ray::run_group"], capture_output=True, text=True)
                for pid in map(int, found.stdout.split()):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            time.sleep(0.2)

    killer = threading.Thread(target=kill_after_first_row)
    killer.start()
    run_fleet(config)
    killer.join()
    assert killed
    rows = _rows(config.out)
    assert sorted(r["batch_size"] for r in rows) == [1, 2, 4, 8]  # every cell once
    assert {r["attempt"] for r in rows} == {1, 2} and all(r["status"] == "ok" for r in rows)
    assert len({r["node_id"] for r in rows}) == 2  # the rerun went to the other node


def test_two_machine_kinds_one_merged_report_with_cost(shared, tmp_path, store_dir, small_artifacts):
    prices = tmp_path / "prices.toml"
    prices.write_text(PRICES)
    fleet = run_fleet(_config(shared, tmp_path, store_dir, prices=str(prices)))
    rows = _rows(fleet)
    assert sorted((r["machine_kind"], r["batch_size"]) for r in rows) == [("epyc-a", 1), ("epyc-a", 2),
                                                                          ("epyc-b", 1), ("epyc-b", 2)]
    assert all(r["status"] == "ok" and r["attempt"] == 1 and r["threads"] == 1 for r in rows)
    assert len({r["node_id"] for r in rows}) == 2  # same fingerprint, two nodes: kept apart
    assert sorted(p.name.split("-")[1] for p in fleet.iterdir() if p.is_dir()) == ["a", "b"]
    a = next(r for r in rows if r["machine_kind"] == "epyc-a")
    assert a["cost_per_million"] > 0 and "closed loop" in a["cost_basis"]
    b = next(r for r in rows if r["machine_kind"] == "epyc-b")
    assert str(b["cost_per_million"]) == "nan" and "no price for machine kind 'epyc-b'" in b["cost_basis"]
    assert main(["report", str(fleet), "--out", str(tmp_path / "report")]) == 0
    text = (tmp_path / "report" / "report.md").read_text()
    assert "## Across machines: cost at the SLA" in text and "ResNet-18: the cheapest is" in text
    assert "No price for epyc-b: left out of the cost ranking" in text
    for kind in ("epyc-a", "epyc-b"):
        assert f"## {kind}: 3. Batch scaling" in text and f"## {kind}: 8. Validity" in text


def test_a_killed_driver_resumes_and_completes(shared, tmp_path, store_dir, small_artifacts):
    out = tmp_path / "fleets"
    args = ["fleet", "--address", shared.address, "--node-ip", shared.head_ip, "--depths", "18", "--batches",
            "1,2,4", "--backends", "onnxruntime", "--modes", "latency", "--input-size", "64", "--no-roofs",
            "--min-iters", "6", "--max-time", "1", "--node-artifacts", str(store_dir), "--format", "json"]
    driver = subprocess.Popen([sys.executable, "-m", "resnet_bench", *args, "--out", str(out)], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 150
    while time.time() < deadline and not any(p.read_text().count("\n") >= 2 for p in out.glob("*/*/results.csv")):
        time.sleep(0.2)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    (fleet,) = out.iterdir()
    before = _rows(fleet)
    assert before, "the driver wrote no row within 150 s"
    assert len(before) < 6, "the driver finished before it was killed: the resume would prove nothing"
    result = subprocess.run([sys.executable, "-m", "resnet_bench", *args, "--resume", str(fleet)], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    # the resume counts what the killed driver finished, and times only the rest
    assert f"; {len(before)} cells already done" in result.stderr, result.stderr[-2000:]
    after = _rows(fleet)
    assert sorted((r["machine_kind"], r["batch_size"]) for r in after) == sorted(
        (k, b) for k in ("epyc-a", "epyc-b") for b in (1, 2, 4))
    kept = {(r["machine_kind"], r["cell_id"]): r["latency_ms_p50"] for r in before}
    assert all(kept[(r["machine_kind"], r["cell_id"])] == r["latency_ms_p50"] for r in after
               if (r["machine_kind"], r["cell_id"]) in kept)  # finished rows were not timed again


def test_a_node_removed_mid_sweep_becomes_error_rows_naming_it(shared, tmp_path, store_dir, small_artifacts):
    """Last of the tests on the shared cluster: it removes epyc-b's node."""
    config = _config(shared, tmp_path, store_dir, small(batches=(1, 2, 4, 8), rule=StopRule(
        warmup_iters=2, warmup_s=0.0, min_iters=6, min_s=1.0, max_s=2.0)))
    removed: list[bool] = []

    def remove_b_after_its_first_row() -> None:
        deadline = time.time() + 120
        while time.time() < deadline and not removed:
            for path in config.out.glob("epyc-b-*/results.csv"):
                if path.read_text().count("\n") >= 2:
                    shared.remove(1)
                    removed.append(True)
            time.sleep(0.2)

    remover = threading.Thread(target=remove_b_after_its_first_row)
    remover.start()
    run_fleet(config)
    remover.join()
    rows = _rows(config.out)
    a = [r for r in rows if r["machine_kind"] == "epyc-a"]
    b = [r for r in rows if r["machine_kind"] == "epyc-b"]
    assert sorted(r["batch_size"] for r in a) == [1, 2, 4, 8] and all(r["status"] == "ok" for r in a)
    assert sorted(r["batch_size"] for r in b) == [1, 2, 4, 8]  # each cell once: measured, or an error row
    finished, failed = [r for r in b if r["status"] == "ok"], [r for r in b if r["status"] == "error"]
    assert finished and failed
    assert all("on node" in r["error"] or "no alive node" in r["error"] for r in failed)
