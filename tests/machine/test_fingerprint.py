import sys

import pytest

from resnet_bench.machine import fingerprint as fp
from resnet_bench.machine import isa

# The flags lines of this project's two machines (abridged): a 2-core AMD EPYC (Zen 4) and an
# Intel Xeon that the hypervisor names only "Intel(R) Xeon(R) Processor" (Sapphire Rapids).
EPYC = """processor\t: 0
model name\t: AMD EPYC
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512dq avx512cd avx512bw avx512vl avx512_bf16 avx512vbmi avx512_vnni
"""
XEON = """processor\t: 0
model name\t: Intel(R) Xeon(R) Processor
flags\t\t: fpu sse2 avx avx2 fma avx_vnni avx512f avx512_bf16 avx512_vnni avx512_fp16 amx_bf16 amx_tile amx_int8
processor\t: 1
flags\t\t: fpu sse2
"""


def test_isa_flags_parse_from_cpuinfo_text():
    assert isa.fingerprint_flags(EPYC) == ["avx2", "avx512f", "avx512_vnni", "avx512_bf16"]
    assert isa.fingerprint_flags(XEON) == ["avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16",
                                  "amx_bf16", "amx_int8", "amx_tile"]  # the first CPU's line
    assert isa.fingerprint_flags("processor : 0\n") == []
    assert "avx512" not in isa.fingerprint_flags("flags : avx512")  # whole flags only


def test_instruction_set_is_a_hard_key():
    base = fp.collect()
    epyc = {**base, "cpu_isa": "avx2,avx512f,avx512_vnni,avx512_bf16"}
    xeon = {**base, "cpu_isa": "avx2,avx512f,avx512_vnni,avx512_bf16,amx_bf16,amx_int8,amx_tile"}
    assert fp.fingerprint_id(epyc) != fp.fingerprint_id(xeon)
    assert fp.fingerprint_id(epyc) == fp.fingerprint_id({**epyc, "cpu_caches": {"L2": "2048K"}, "kernel": "x"})


def test_this_machine_is_fingerprinted():
    info = fp.collect()
    assert info["cpu_isa"] == ",".join(isa.fingerprint_flags(open("/proc/cpuinfo").read()))
    assert info["cpus_available"] >= 1 and "cpu_quota" in info
    assert all(key in info for key in fp.NVML_KEYS)  # None without a GPU or NVML


def test_cache_sizes_from_sysfs(tmp_path):
    for i, (level, kind, size) in enumerate([(1, "Data", "48K"), (1, "Instruction", "32K"), (2, "Unified", "2048K"),
                                             (3, "Unified", "107520K")]):
        folder = tmp_path / f"index{i}"
        folder.mkdir()
        for name, value in (("level", level), ("type", kind), ("size", size)):
            (folder / name).write_text(f"{value}\n")
    assert fp.cpu_caches(tmp_path) == {"L1d": "48K", "L1i": "32K", "L2": "2048K", "L3": "107520K"}
    assert fp.cpu_caches(tmp_path / "none") == {}


def test_nvml_missing_is_skipped(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import now raises ImportError
    assert fp._nvml() == dict.fromkeys(fp.NVML_KEYS)


@pytest.mark.gpu
def test_nvml_reads_the_gpu():
    pytest.importorskip("pynvml")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    info = fp._nvml()
    assert info["gpu_mig_mode"] in ("on", "off", None) and info["gpu_power_limit_w"] > 0
