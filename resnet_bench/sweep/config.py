"""What a sweep runs: its cells (depth x backend x precision x mode x batch on one device), the
profiles (``quick`` and ``full``) and their stop rules, and resuming a run folder."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from resnet_bench.backends import BackendOptions, backend_class
from resnet_bench.machine import fingerprint as fp
from resnet_bench.measure.timing import RULES, SWEEP_RULE, StopRule
from resnet_bench.model.architecture import DEPTHS, check_depth
from resnet_bench.model.spec import ModelSpec
from resnet_bench.numerics.precision import check_precision
from resnet_bench.parity.accuracy import AccuracyBudget, check_inputs
from resnet_bench.scenarios.loadgen.settings import SCENARIOS as LOADGEN_SCENARIOS
from resnet_bench.util.errors import first_line

MODES = ("latency", "throughput")
DEFAULT_BACKENDS = {"cpu": ("torch", "onnxruntime", "openvino"),
                    "cuda": ("torch", "onnxruntime", "tensorrt", "torch-compile")}
# The quick profile's rule asks for the median within ±2%, the full profile's for ±1% (measure.timing.RULES).
PROFILES = {
    "quick": dict(depths=(18, 50), batches=(1, 8), rule=RULES["quick"]),
    "full": dict(depths=DEPTHS, batches=(1, 8, 32), rule=RULES["sweep"], precisions=("fp32", "bf16", "int8")),
}
FULL_CUDA_BATCHES = (1, 8, 32, 128)


@dataclass(frozen=True)
class SweepConfig:
    device: str = "cpu"
    depths: tuple[int, ...] = (18, 50)
    batches: tuple[int, ...] = (1, 8)
    backends: tuple[str, ...] = ("torch", "onnxruntime", "openvino")
    precisions: tuple[str, ...] = ("fp32",)
    modes: tuple[str, ...] = MODES
    variant: str = "v1.5"
    weights: str | None = None
    input_size: int = 224
    threads: int | None = None
    parity_images: int = 32
    artifacts: str = "artifacts"
    rule: StopRule = SWEEP_RULE  # ±1% median precision; StopRule is frozen, so one shared default
    cuda_graphs: bool = False  # torch on CUDA: time CUDA graph replays (latency mode)
    images: str | None = None  # parity and accuracy on these real images (resize, centre-crop), not seeded ones
    loadgen: tuple[str, ...] = ()  # LoadGen scenarios for every finalist per depth (full profile: Offline, Server)
    labels: str | None = None  # '<file> <class>' lines for --images (or class folders in it)
    calibration_images: str | None = None  # int8 calibrates on these (disjoint from --images); None: seeded
    max_accuracy_drop: float = 0.01  # relative top-1 drop a precision may cost (MLPerf: 1%)
    min_top1_agreement: float | None = None  # unlabelled real images: the agreement floor (None: per precision)
    roofs: bool = True  # measure the same-run roofs (False: no roofline fraction, ~10 s a depth saved)

    def __post_init__(self) -> None:
        BackendOptions(self.device, threads=self.threads, cuda_graphs=self.cuda_graphs)  # validates them
        for name in ("depths", "backends", "precisions", "modes"):
            if not getattr(self, name):
                raise ValueError(f"{name}: give at least one")
        for depth in self.depths:
            check_depth(depth)
        for name in self.backends:
            backend_class(name)
        for precision in self.precisions:  # the one table of precisions (precision.py)
            check_precision(precision)
        for mode in self.modes:
            if mode not in MODES:
                raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        for scenario in self.loadgen:
            if scenario not in LOADGEN_SCENARIOS:
                raise ValueError(f"LoadGen scenario must be one of {', '.join(LOADGEN_SCENARIOS)}, got {scenario!r}")
        if not self.batches or min(self.batches) < 1:
            raise ValueError(f"batch sizes must be at least 1, got {list(self.batches)}")
        spec = ModelSpec(self.depths[0], self.variant, self.weights, input_size=self.input_size)
        self.budget()  # validates the accuracy budget
        check_inputs(spec.num_classes, self.images, self.labels, self.calibration_images)

    def budget(self) -> AccuracyBudget:
        return AccuracyBudget(self.max_accuracy_drop, self.min_top1_agreement)

    @classmethod
    def from_profile(cls, profile: str, device: str, rule_overrides: dict | None = None, **overrides) -> SweepConfig:
        """The profile's cells and stop rule; ``overrides`` (None: keep) replace fields,
        ``rule_overrides`` fields of the profile's rule."""
        if profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")
        base = dict(PROFILES[profile], device=device, backends=DEFAULT_BACKENDS.get(device, ()))
        rule_overrides = dict(rule_overrides or {})
        if rule_overrides.get("max_s") is not None and rule_overrides.get("min_s") is None:
            # a --max-time under the profile's minimum time cuts that minimum too (not an error)
            base["rule"] = base["rule"].capped(rule_overrides.pop("max_s"))
        base["rule"] = replace(base["rule"], **rule_overrides)
        if profile == "full" and device == "cuda":
            base["batches"] = FULL_CUDA_BATCHES
            base["precisions"] = ("fp32", "tf32", "fp16", "bf16")
        if profile == "full" and device == "cpu":
            base["backends"] = (*DEFAULT_BACKENDS["cpu"], "torch-compile")
        if profile == "full":
            base["loadgen"] = ("offline", "server")
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> SweepConfig:
        data = dict(data, rule=StopRule(**data["rule"]))
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    def cells(self) -> list[dict]:
        return [dict(depth=d, variant=self.variant, backend=b, precision=p, device=self.device,
                     mode=m, batch_size=n, input_size=self.input_size)
                for d in self.depths for b in self.backends for p in self.precisions
                for m in self.modes for n in sorted(self.batches)]


def resume(run_dir: Path) -> SweepConfig:
    """The config of an earlier run, refused if this machine's hard fingerprint differs."""
    run_dir = Path(run_dir)
    try:
        config = SweepConfig.from_json(json.loads((run_dir / "config.json").read_text()))
        recorded = json.loads((run_dir / "fingerprint.json").read_text())["fingerprint_id"]
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"cannot resume {run_dir}: not a run directory ({first_line(exc)})") from exc
    here = fp.collect()["fingerprint_id"]
    if recorded != here:
        raise ValueError(f"cannot resume {run_dir}: it was measured with fingerprint {recorded}, "
                         f"this machine is {here}")
    return config
