"""The instruction-set flags the suite reads, in one table: which kernels a CPU can run for
fp32, bf16 and int8, as Linux spells the flags in /proc/cpuinfo."""

from __future__ import annotations

from pathlib import Path

# flag -> name in reports. The order is the fingerprint's (``cpu_isa``, a hard key).
FLAGS: dict[str, str] = {
    "avx2": "AVX2", "avx512f": "AVX-512F", "avx512_vnni": "AVX512-VNNI", "avx_vnni": "AVX-VNNI",
    "avx512_bf16": "AVX512-BF16", "avx512_fp16": "AVX512-FP16", "amx_bf16": "AMX-BF16", "amx_int8": "AMX-INT8",
    "amx_tile": "AMX-TILE", "avx512bw": "AVX-512BW",
}
# The flags recorded in the fingerprint (every flag above but AVX-512BW, which adds nothing to
# AVX-512F on the CPUs seen here; left out so fingerprint ids stay those of earlier runs).
FINGERPRINT = tuple(flag for flag in FLAGS if flag != "avx512bw")
INT8 = ("amx_int8", "avx512_vnni", "avx_vnni", "avx512bw", "avx2")  # best first
BF16 = ("amx_bf16", "avx512_bf16")  # either computes bf16 natively


def parse_flags(text: str) -> frozenset[str]:
    """The flags of the first ``flags`` line of a /proc/cpuinfo text (whole words only)."""
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The first CPU's flags; empty where /proc/cpuinfo does not exist (not Linux)."""
    try:
        return parse_flags(Path(cpuinfo).read_text())
    except OSError:
        return frozenset()


def fingerprint_flags(cpuinfo: str) -> list[str]:
    """The fingerprint's flags present in a /proc/cpuinfo text, in the table's order."""
    present = parse_flags(cpuinfo)
    return [flag for flag in FINGERPRINT if flag in present]


def int8_isa(flags: frozenset[str]) -> str:
    """The best int8 instruction set: AMX-INT8 > AVX512-VNNI > AVX-VNNI > AVX-512BW > AVX2."""
    return next((FLAGS[flag] for flag in INT8 if flag in flags), "none")


def bf16_unavailable_reason(flags: frozenset[str] | None = None) -> str | None:
    """None where the CPU computes bf16 natively (AVX512-BF16 or AMX-BF16), else the reason."""
    flags = cpu_flags() if flags is None else flags
    if any(flag in flags for flag in BF16):
        return None
    return ("this CPU has no bf16 instructions (neither avx512_bf16 nor amx_bf16 in its flags): "
            "bf16 would be emulated in fp32, slower than fp32 itself")


def summary(flags: frozenset[str] | None = None) -> dict:
    flags = cpu_flags() if flags is None else flags
    return {"int8_isa": int8_isa(flags), "bf16": [f for f in BF16 if f in flags] or None,
            "amx": sorted(f for f in flags if f.startswith("amx"))}
