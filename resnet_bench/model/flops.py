"""The FLOPs table: counted multiply-adds per depth and variant against the paper's Table 1."""

from __future__ import annotations

from resnet_bench.model.architecture import DEPTHS, PAPER_GMACS, count_macs, count_params


def flops_rows(variants: tuple[str, ...] = ("v1", "v1.5"), input_size: int = 224,
               depths: tuple[int, ...] = DEPTHS) -> list[dict]:
    """One row per depth and variant: params, GMACs, GFLOPs (2 x MACs), paper figure, deviation.

    The paper's figure is for 224x224 inputs; at other sizes the deviation is still against it.
    """
    rows = []
    for variant in variants:
        for depth in depths:
            gmacs = count_macs(depth, variant, input_size) / 1e9
            paper = PAPER_GMACS[depth]
            rows.append({
                "depth": depth,
                "variant": variant,
                "input_size": input_size,
                "params": count_params(depth),
                "gmacs": round(gmacs, 4),
                "gflops": round(2 * gmacs, 4),
                "paper_gmacs": paper,
                "deviation_pct": round(100 * (gmacs - paper) / paper, 2),
            })
    return rows
