"""What the CPU's instruction set offers low precision: int8 dot products and bf16."""

from __future__ import annotations

from pathlib import Path

# Flag names as Linux spells them in /proc/cpuinfo.
INT8_LEVELS = (("amx_int8", "AMX-INT8"), ("avx512_vnni", "AVX512-VNNI"), ("avx_vnni", "AVX-VNNI"),
               ("avx512bw", "AVX-512BW"), ("avx2", "AVX2"))
BF16_FLAGS = ("amx_bf16", "avx512_bf16")


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


def int8_isa(flags: frozenset[str]) -> str:
    """The best int8 instruction set: AMX-INT8 > AVX512-VNNI > AVX-VNNI > AVX-512BW > AVX2."""
    return next((name for flag, name in INT8_LEVELS if flag in flags), "none")


def bf16_unavailable_reason(flags: frozenset[str] | None = None) -> str | None:
    """None where the CPU computes bf16 natively (AVX512-BF16 or AMX-BF16), else the reason."""
    flags = cpu_flags() if flags is None else flags
    if any(flag in flags for flag in BF16_FLAGS):
        return None
    return ("this CPU has no bf16 instructions (neither avx512_bf16 nor amx_bf16 in its flags): "
            "bf16 would be emulated in fp32, slower than fp32 itself")


def summary(flags: frozenset[str] | None = None) -> dict:
    flags = cpu_flags() if flags is None else flags
    return {"int8_isa": int8_isa(flags), "bf16": [f for f in BF16_FLAGS if f in flags] or None,
            "amx": sorted(f for f in flags if f.startswith("amx"))}
