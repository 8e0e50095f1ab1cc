"""Turn a model spec into verified, cached artifacts: ONNX, OpenVINO IR, TensorRT engines."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch

from exporters import onnx_export, openvino_export, quantize, tensorrt_export, tensorrt_int8
from exporters.errors import ExportError
from exporters.store import Artifact, ArtifactStore
from resnet_bench.model import architecture, network, spec
from resnet_bench.model import images as image_code
from resnet_bench.model.images import in_chunks, synthetic_images
from resnet_bench.model.spec import ModelSpec
from resnet_bench.numerics.agreement import agreement
from resnet_bench.numerics.precision import ARTIFACT_PRECISIONS
from resnet_bench.numerics.tolerances import TOLERANCES, rel_l2, top1_agreement
from resnet_bench.util.errors import first_message
from resnet_bench.util.files import file_sha256
from resnet_bench.util.versions import package_version

TARGETS = ("onnx", "openvino", "tensorrt")
PRECISIONS = ARTIFACT_PRECISIONS  # fp32, fp16, int8: what an artifact is stored in (the precision table)
VERIFY_BATCHES = (1, 3)  # neither is the export example's batch (2)
# The code whose change can change an artifact's files: any edit to it gives a new key, so a
# PR's own graph is exported (the gate's base and head share an artifact only when it is the same).
# images: the seeded weights are calibrated on synthetic images.
GRAPH_CODE = (architecture, network, image_code, spec, onnx_export)


@functools.cache
def code_sha256(*modules) -> str:
    """One hash of the source files of ``modules`` and of this file (the export steps)."""
    digest = hashlib.sha256()
    for path in sorted({Path(m.__file__) for m in modules} | {Path(__file__)}):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


ACCURACY_IMAGES = 32  # a quantized artifact's agreement with PyTorch fp32 is measured on these


@dataclass(frozen=True)
class ExportOptions:
    targets: tuple[str, ...] = ("onnx",)
    precisions: tuple[str, ...] = ("fp32",)
    batches: tuple[int, ...] = (1,)  # the TensorRT profile covers these
    opset: int = onnx_export.DEFAULT_OPSET
    static_batch: int | None = None  # None: dynamic batch axis
    out: Path = field(default=Path("artifacts"))
    onnx: Path | None = None  # start from this ONNX file instead of exporting the model
    # int8: calibration images (None: seeded synthetic ones) and ONNX Runtime's QDQ scheme
    calibration_images: Path | None = None
    calibration_count: int = quantize.CALIBRATION_COUNT
    ort_int8: str = quantize.DEFAULT_ORT_SCHEME

    def __post_init__(self) -> None:
        for target in self.targets:
            if target not in TARGETS:
                raise ValueError(f"unknown target {target!r}; choose from {', '.join(TARGETS)}")
        for precision in self.precisions:
            if precision not in PRECISIONS:
                raise ValueError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
        if not self.targets or not self.precisions:
            raise ValueError("at least one target and one precision are needed")
        if not self.batches or min(self.batches) < 1:
            raise ValueError(f"batch sizes must be at least 1, got {list(self.batches)}")
        if not 18 <= self.opset <= 23:
            raise ValueError(f"opset must be between 18 and 23, got {self.opset}")
        if self.static_batch is not None and self.static_batch < 1:
            raise ValueError(f"static batch must be at least 1, got {self.static_batch}")
        if self.calibration_count < 1:
            raise ValueError(f"calibration count must be at least 1, got {self.calibration_count}")
        quantize.ort_scheme(self.ort_int8)


def check_available(targets: tuple[str, ...], precisions: tuple[str, ...] = ()) -> None:
    """Refuse up front, naming what is missing, before any time is spent exporting."""
    if "openvino" in targets and package_version("openvino") is None:
        raise ExportError("openvino: OpenVINO is not installed (pip install 'resnet-bench[cpu]')")
    if "openvino" in targets and "int8" in precisions and package_version("nncf") is None:
        raise ExportError("openvino int8: NNCF is not installed (pip install 'resnet-bench[cpu]')")
    if "tensorrt" in targets:
        reason = tensorrt_export.unavailable_reason()
        if reason:
            raise ExportError(f"tensorrt: {reason}")


class Exporter:
    """Exports one model spec; builds the PyTorch model and its reference outputs only if an
    artifact is missing, so a fully cached export never touches the model."""

    def __init__(self, spec: ModelSpec, options: ExportOptions) -> None:
        self.spec, self.options = spec, options
        self.store = ArtifactStore(options.out)
        self._reference: dict[int, tuple[np.ndarray, np.ndarray]] | None = None
        self._model: torch.nn.Module | None = None
        self._onnx: dict[str, Artifact] = {}
        self._calibration: quantize.Calibration | None = None
        self._accuracy_reference: tuple[np.ndarray, np.ndarray] | None = None
        if options.onnx is not None:
            onnx_export.read_onnx(options.onnx)  # fail early on a bad file

    # -- helpers ---------------------------------------------------------------------------
    def model(self) -> torch.nn.Module:
        if self._model is None:
            self._model = self.spec.build()
        return self._model

    def verify_batches(self) -> tuple[int, ...]:
        return (self.options.static_batch,) if self.options.static_batch else VERIFY_BATCHES

    def reference(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Images and PyTorch fp32 logits per verification batch size."""
        if self._reference is None:
            images = synthetic_images(max(self.verify_batches()), self.spec.input_size, seed=11)
            self._reference = {}
            for batch in self.verify_batches():
                x = images[:batch]
                if self.options.onnx is not None:  # no PyTorch model: the given ONNX is the reference
                    ref = onnx_export.run_onnxruntime(self.options.onnx, x.numpy())
                else:
                    with torch.inference_mode():
                        ref = self.model()(x).numpy()
                self._reference[batch] = (x.numpy(), ref)
        return self._reference

    def verify(self, run, path: Path, precision: str, runtime: str) -> dict:
        """Run the artifact with its own runtime at each verification batch against PyTorch."""
        tolerance = TOLERANCES[precision]
        report = {"runtime": runtime, "batches": {}}
        for batch, (images, ref) in self.reference().items():
            try:
                out = run(path, images)
            except Exception as exc:  # runtimes raise their own types for a wrong input shape
                raise ExportError(f"{path.name}: {runtime} failed at batch {batch}: "
                                  f"{first_message(exc)}") from exc
            if out.shape != ref.shape:
                raise ExportError(f"{path.name}: batch {batch} gave output shape {out.shape}, "
                                  f"expected {ref.shape} (batch dimension fixed at export?)")
            error, top1 = rel_l2(out, ref), top1_agreement(out, ref)
            report["batches"][str(batch)] = {"rel_l2_err": error, "top1_agreement": top1}
            if error > tolerance.max_rel_l2 or top1 < tolerance.min_top1:
                raise ExportError(f"{path.name} ({precision}) disagrees with PyTorch at batch {batch}: "
                                  f"rel L2 {error:.2e} (max {tolerance.max_rel_l2:.0e}), "
                                  f"top-1 {top1:.0%}")
        return report

    def calibration(self) -> quantize.Calibration:
        if self._calibration is None:
            opts = self.options
            self._calibration = quantize.calibration_set(self.spec.input_size, opts.calibration_count,
                                                         opts.calibration_images)
        return self._calibration

    def accuracy(self, run, path: Path) -> dict:
        """Agreement with PyTorch fp32 (error metrics, top-1/top-5, margin-aware top-1) on
        ACCURACY_IMAGES seeded images, for the manifest of a quantized artifact."""
        if self._accuracy_reference is None:
            seeded = synthetic_images(ACCURACY_IMAGES, self.spec.input_size, seed=11).numpy()
            if self.options.onnx is not None:
                ref = in_chunks(lambda x: onnx_export.run_onnxruntime(self.options.onnx, x), seeded)
            else:
                with torch.inference_mode():
                    ref = in_chunks(lambda x: self.model()(torch.from_numpy(x)).numpy(), seeded)
            self._accuracy_reference = (seeded, ref)
        seeded, ref = self._accuracy_reference
        out = in_chunks(lambda x: run(path, x), seeded)
        return {"reference": "PyTorch fp32" if self.options.onnx is None else "the given ONNX in onnxruntime fp32",
                **agreement(out, ref)}

    # -- targets ---------------------------------------------------------------------------
    def onnx(self, precision: str) -> Artifact:
        if precision == "int8":
            return self.onnx_int8()
        if precision in self._onnx:
            return self._onnx[precision]
        opts = self.options
        if opts.onnx is not None:
            if precision != "fp32":
                raise ExportError("--onnx gives one file; its precision is its own: ask for fp32")
            fields = {"source_onnx_sha256": file_sha256(opts.onnx)}
        else:
            fields = {"model": self.spec.key_fields(), "opset": opts.opset,
                      "static_batch": opts.static_batch, "exporter": onnx_export.EXPORTER,
                      "torch": torch.__version__, "onnx": onnx.__version__,
                      "onnxscript": package_version("onnxscript"), "code": code_sha256(*GRAPH_CODE)}
        fields = {**fields, "target": "onnx", "precision": precision}

        def build(folder: Path) -> tuple[str, dict]:
            path = folder / "model.onnx"
            if opts.onnx is not None:
                path.write_bytes(Path(opts.onnx).read_bytes())
            else:
                onnx_export.export_onnx(self.model(), path, self.spec.input_size, precision,
                                        opts.opset, opts.static_batch)
            proto = onnx_export.read_onnx(path)
            batch = onnx_export.batch_dim(proto)
            if opts.static_batch is None and opts.onnx is None and not isinstance(batch, str):
                raise ExportError(f"exported ONNX has a fixed batch of {batch}, a dynamic one was asked for")
            extra = {"batch_dim": batch, "opset": proto.opset_import[0].version,
                     "nodes": len(proto.graph.node), "spec": self.spec.name}
            try:
                import onnxruntime
            except ImportError:
                extra["verify"] = "skipped: onnxruntime is not installed"
            else:
                extra["verify"] = self.verify(onnx_export.run_onnxruntime, path, precision,
                                              f"onnxruntime {onnxruntime.__version__}")
            return path.name, extra

        artifact = self.store.get_or_build("onnx", self.spec.name + f"-{precision}", precision, fields, build)
        self._onnx[precision] = artifact
        return artifact

    def onnx_int8(self, scheme: str | None = None) -> Artifact:
        """Static QDQ quantization of the fp32 ONNX (``quantize.ORT_SCHEMES``); the calibration
        set's hash and the scheme are in the key."""
        import onnxruntime

        name = scheme or self.options.ort_int8
        source, calibration = self.onnx("fp32"), self.calibration()
        fields = {"onnx_key": source.key, "target": "onnx", "precision": "int8",
                  "scheme": quantize.ort_scheme(name).key_fields(), "calibration": calibration.key_fields(),
                  "onnxruntime": onnxruntime.__version__, "code": code_sha256(quantize)}

        def build(folder: Path) -> tuple[str, dict]:
            path = folder / "model.onnx"
            extra = quantize.quantize_onnx(source.path, path, calibration, quantize.ort_scheme(name))
            onnx_export.read_onnx(path)
            runtime = f"onnxruntime {onnxruntime.__version__}"
            return path.name, {**extra, "scheme_name": name, "calibration": calibration.key_fields(),
                               "verify": self.verify(onnx_export.run_onnxruntime, path, "int8", runtime),
                               "accuracy": self.accuracy(onnx_export.run_onnxruntime, path),
                               "source": str(source.path), "spec": self.spec.name}

        suffix = "int8" if name == quantize.DEFAULT_ORT_SCHEME else f"int8-{name}"
        return self.store.get_or_build("onnx", f"{self.spec.name}-{suffix}", "int8", fields, build)

    def openvino_int8(self) -> Artifact:
        """NNCF post-training quantization of the fp32 IR; preset, subset size and what the CPU
        plugin executes in int8 are in the manifest."""
        source, calibration = self.openvino("fp32"), self.calibration()
        fields = {"ir_key": source.key, "target": "openvino", "precision": "int8",
                  "openvino": package_version("openvino"), "nncf": package_version("nncf"),
                  "preset": quantize.NNCF_PRESET, "calibration": calibration.key_fields(),
                  "code": code_sha256(quantize, openvino_export)}

        def build(folder: Path) -> tuple[str, dict]:
            path = folder / "model.xml"
            extra = quantize.quantize_openvino(source.path, path, calibration)
            runtime = f"openvino {package_version('openvino')} CPU"
            return path.name, {**extra, "calibration": calibration.key_fields(),
                               "executed": quantize.executed_precisions(openvino_export.compile_cpu(path)),
                               "verify": self.verify(openvino_export.run_openvino, path, "int8", runtime),
                               "accuracy": self.accuracy(openvino_export.run_openvino, path),
                               "source": str(source.path), "spec": self.spec.name}

        return self.store.get_or_build("openvino", self.spec.name + "-int8", "int8", fields, build)

    def openvino(self, precision: str) -> Artifact:
        if precision == "int8":
            return self.openvino_int8()
        # OpenVINO converts the fp32 ONNX; fp16 here means fp16-compressed weights.
        source = self.onnx("fp32")
        version = package_version("openvino")
        fields = {"onnx_key": source.key, "target": "openvino", "precision": precision,
                  "openvino": version, "converter": "openvino.convert_model",
                  "code": code_sha256(openvino_export)}

        def build(folder: Path) -> tuple[str, dict]:
            path = folder / "model.xml"
            openvino_export.export_openvino(source.path, path, precision)
            report = self.verify(openvino_export.run_openvino, path, precision,
                                 f"openvino {version} CPU f32")
            return path.name, {"verify": report, "source": str(source.path), "spec": self.spec.name,
                               "weights": "fp16-compressed" if precision == "fp16" else "fp32"}

        return self.store.get_or_build("openvino", self.spec.name + f"-{precision}", precision, fields, build)

    def tensorrt(self, precision: str, tf32: bool = False, contexts: int = 1) -> Artifact:
        """An engine from the ``precision`` ONNX, TF32 allowed or not, with one profile per
        (context, batch asked for): see ``tensorrt_export.plan_profiles``. Strongly typed: the
        precision is the graph's (int8: symmetric Q/DQ, explicit quantization)."""
        source = self.onnx_int8("tensorrt") if precision == "int8" else self.onnx(precision)
        env = tensorrt_export.environment()
        profiles = tensorrt_export.plan_profiles(self.options.batches, contexts)
        builders = (tensorrt_export, tensorrt_int8) if precision == "int8" else (tensorrt_export,)
        fields = {**tensorrt_export.engine_key_fields(source.key, precision, profiles, env, tf32=tf32),
                  "code": code_sha256(*builders)}
        cache = tensorrt_export.timing_cache_path(self.store.root / "tensorrt", env)
        name = self.spec.name + f"-{'tf32' if tf32 and precision == 'fp32' else precision}-x{contexts}"

        def build(folder: Path) -> tuple[str, dict]:
            path = folder / "model.engine"
            builder = tensorrt_int8.build_int8_engine if precision == "int8" else tensorrt_export.build_engine
            extra = builder(source.path, path, profiles, self.spec.input_size, cache, tf32=tf32)
            return path.name, {**extra, "contexts": contexts, "source": str(source.path), "spec": self.spec.name}

        return self.store.get_or_build("tensorrt", name, precision, fields, build)


EXPORTERS = {"onnx": Exporter.onnx, "openvino": Exporter.openvino, "tensorrt": Exporter.tensorrt}


def export(spec: ModelSpec, options: ExportOptions) -> list[Artifact]:
    """Every (target, precision) asked for, in that order; cached artifacts are reused."""
    check_available(options.targets, options.precisions)
    exporter = Exporter(spec, options)
    return [EXPORTERS[target](exporter, precision)
            for target in options.targets for precision in options.precisions]
