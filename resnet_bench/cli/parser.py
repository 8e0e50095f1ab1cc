"""The command line's grammar: argument types, every command's flags, and a parser whose errors
are one line and exit 2."""

from __future__ import annotations

import argparse
import sys

from resnet_bench import __version__
from resnet_bench.cli import commands
from resnet_bench.cli.output import FORMATS
from resnet_bench.model.architecture import DEPTHS
from resnet_bench.select.confirm import DEFAULT_BUDGET_S as DEFAULT_CONFIRM_S

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse prints usage too; we want one line
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(EXIT_BAD_INPUT)


def int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one value")
    return values


def fraction(text: str) -> float:
    try:
        value = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction like 1% or 0.01, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0% and 100%, got {text!r}")
    return value


def str_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _add_model_args(parser: argparse.ArgumentParser, depth_default: int | None = 18) -> None:
    parser.add_argument("--depth", type=int, default=depth_default, required=depth_default is None,
                        help=f"ResNet depth: {', '.join(map(str, DEPTHS))}")
    parser.add_argument("--variant", default="v1.5", help="v1 (paper) or v1.5 (torchvision)")
    parser.add_argument("--weights", default=None, help="torchvision-format state_dict file")



def _add_accuracy_args(parser: argparse.ArgumentParser) -> None:
    """What low precision may cost, and on which images it is judged and calibrated."""
    parser.add_argument("--labels", default=None,
                        help="'<image file> <class>' lines for --images (or give --images as class folders)")
    parser.add_argument("--calibration-images", default=None, metavar="DIR",
                        help="int8: calibrate on these images, disjoint from --images (default: seeded ones)")
    parser.add_argument("--max-accuracy-drop", type=fraction, default=0.01,
                        help="the relative top-1 drop a precision may cost against fp32 (default 1%%, MLPerf's)")
    parser.add_argument("--min-top1-agreement", type=float, default=None,
                        help="unlabelled --images: the top-1 agreement with fp32 a precision must keep "
                             "(default: int8 0.95, bf16 0.98)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="resnet-bench", description="Export, check and benchmark ResNet-18..152.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("flops", help="multiply-adds and params per depth against Table 1")
    p.add_argument("--variant", default="both", help="v1, v1.5 or both")
    p.add_argument("--input-size", type=int, default=224)
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=commands.cmd_flops)

    p = sub.add_parser("time", help="time one depth with PyTorch eager on the CPU")
    _add_model_args(p)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--input-size", type=int, default=224)
    p.add_argument("--max-time", type=float, default=None,
                   help="timed seconds at most (default 20; a cell short of ±1%% by then is marked invalid)")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=commands.cmd_time)

    p = sub.add_parser("export", help="export to ONNX / OpenVINO IR / TensorRT engine (cached)")
    _add_model_args(p, depth_default=50)
    p.add_argument("--to", type=str_list, default=("onnx",), help="onnx,openvino,tensorrt")
    p.add_argument("--precision", type=str_list, default=("fp32",), help="fp32,fp16,int8")
    p.add_argument("--calibration-images", default=None, metavar="DIR",
                   help="int8: calibrate on these images (default: seeded synthetic ones)")
    p.add_argument("--calibration-count", type=int, default=32, help="int8: seeded calibration images")
    p.add_argument("--ort-int8", default="u8s8", help="int8 ONNX scheme: u8s8, s8s8, u8s8-rr, tensorrt")
    p.add_argument("--batches", type=int_list, default=(1,),
                   help="batch sizes the TensorRT profile must cover (min/opt/max)")
    p.add_argument("--opset", type=int, default=18)
    p.add_argument("--static-batch", type=int, default=None, help="fix the batch axis (default: dynamic)")
    p.add_argument("--input-size", type=int, default=224)
    p.add_argument("--onnx", default=None, help="convert this ONNX file instead of exporting the model")
    p.add_argument("--out", default="artifacts", help="artifact store folder")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=commands.cmd_export)

    p = sub.add_parser("parity", help="compare every backend x precision with PyTorch fp32")
    _add_model_args(p, depth_default=50)
    p.add_argument("--backends", type=str_list, default=("torch", "onnxruntime", "openvino"))
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--precision", type=str_list, default=("fp32",), help="fp32,fp16,bf16")
    p.add_argument("--images", default=None, help="folder of real images (resize 256, crop 224)")
    p.add_argument("--count", type=int, default=32, help="seeded synthetic images when no --images")
    p.add_argument("--input-size", type=int, default=224)
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: the CPUs we may use)")
    p.add_argument("--cuda-graphs", action="store_true", help="torch on cuda: replay captured CUDA graphs")
    p.add_argument("--out", default="artifacts", help="artifact store folder")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=commands.cmd_parity)

    p = sub.add_parser("bench", help="the sweep: latency and throughput per depth x batch x backend")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--profile", default="quick", help="quick (ResNet-18/50, batch 1/8) or full")
    p.add_argument("--depths", type=int_list, default=None)
    p.add_argument("--batches", type=int_list, default=None)
    p.add_argument("--backends", type=str_list, default=None)
    p.add_argument("--precisions", type=str_list, default=None)
    p.add_argument("--modes", type=str_list, default=None, help="latency,throughput")
    p.add_argument("--input-size", type=int, default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--artifacts", default=None, help="artifact store folder (default: artifacts)")
    p.add_argument("--out", default="results/runs", help="where run directories go")
    p.add_argument("--resume", default=None, metavar="RUN_DIR", help="run only the cells missing there")
    p.add_argument("--warmup-iters", type=int, default=None, help="untimed calls per shape (default 20)")
    p.add_argument("--warmup-time", type=float, default=None, help="untimed seconds per shape (default 1)")
    p.add_argument("--min-iters", type=int, default=None, help="timed calls at least (default 36)")
    p.add_argument("--min-time", type=float, default=None, help="timed seconds at least (default 2)")
    p.add_argument("--max-time", type=float, default=None,
                   help="timed seconds at most (default: quick 30, full 20)")
    p.add_argument("--target-precision", type=fraction, default=None,
                   help="stop once the median's 95%% interval is within ± this (1%% or 0.01; default: quick 2%%, "
                        "full 1%%); a cell that misses it by --max-time is marked invalid")
    p.add_argument("--cuda-graphs", action="store_true",
                   help="torch on cuda: time CUDA graph replays (latency mode)")
    p.add_argument("--variant", default=None, help="v1 (paper) or v1.5 (torchvision, default)")
    p.add_argument("--weights", default=None, help="torchvision-format state_dict file (default: seeded)")
    p.add_argument("--images", default=None,
                   help="parity and accuracy on this folder of real images, or class folders (default: seeded)")
    _add_accuracy_args(p)
    p.add_argument("--max-latency-ms", type=float, default=None,
                   help="the budget the pick that --confirm-s re-measures is made under (default: none)")
    p.add_argument("--latency-percentile", type=int, default=90, help="50, 90 or 99 (with --max-latency-ms)")
    p.add_argument("--no-roofs", action="store_true", help="skip the same-run roofs (no roofline fraction)")
    p.add_argument("--confirm-s", type=float, default=DEFAULT_CONFIRM_S,
                   help="seconds to re-measure each depth's pick and runner-up in fresh processes (0: skip)")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=commands.cmd_bench)

    p = sub.add_parser("select", help="race the candidates: which runtime, precision and batch meets my budget here")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    _add_model_args(p, depth_default=50)
    p.add_argument("--max-latency-ms", type=float, default=None, help="the latency budget (default: none)")
    p.add_argument("--latency-percentile", type=int, default=90, help="50, 90 or 99")
    p.add_argument("--min-throughput", type=float, default=None, help="images/s the pick must at least give")
    p.add_argument("--precisions", type=str_list, default=("fp32",))
    p.add_argument("--backends", type=str_list, default=None, help="default: the device's")
    p.add_argument("--batches", type=int_list, default=(1, 8))
    p.add_argument("--modes", type=str_list, default=("latency", "throughput"))
    p.add_argument("--budget-s", type=float, default=300.0, help="the race's time budget in seconds")
    p.add_argument("--input-size", type=int, default=224)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--images", default=None,
                   help="parity and accuracy on this folder of real images, or class folders (default: seeded)")
    _add_accuracy_args(p)
    p.add_argument("--artifacts", default="artifacts", help="artifact store folder")
    p.add_argument("--out", default="results/runs", help="where run directories go")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=commands.cmd_select)

    p = sub.add_parser("fleet", help="one sweep across the nodes of an existing Ray cluster, with cost at the SLA")
    p.add_argument("--address", required=True, help="the Ray cluster: auto, HOST:PORT or ray://HOST:PORT")
    p.add_argument("--profile", default="quick", help="quick or full (as bench)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--depths", type=int_list, default=None)
    p.add_argument("--batches", type=int_list, default=None)
    p.add_argument("--backends", type=str_list, default=None)
    p.add_argument("--precisions", type=str_list, default=None)
    p.add_argument("--modes", type=str_list, default=None, help="latency,throughput")
    p.add_argument("--input-size", type=int, default=None)
    p.add_argument("--max-time", type=float, default=None, help="timed seconds at most per cell")
    p.add_argument("--min-iters", type=int, default=None, help="timed calls at least per cell")
    p.add_argument("--prices", default=None, metavar="FILE",
                   help="TOML: price per hour of each machine kind (results/prices.example.toml)")
    p.add_argument("--resume", default=None, metavar="FLEET_DIR", help="run only the cells missing there")
    p.add_argument("--out", default="results/fleet", help="where the fleet folder goes")
    p.add_argument("--node-artifacts", default="artifacts", help="each node's own artifact store (a path there)")
    p.add_argument("--node-ip", default=None, help="the driver's own address (default: Ray's choice)")
    p.add_argument("--no-roofs", action="store_true", help="skip the same-run roofs (no roofline fraction)")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=commands.cmd_fleet)

    p = sub.add_parser("loadgen", help="latency under load: MLPerf LoadGen scenarios for one depth x backend")
    _add_model_args(p, depth_default=50)
    p.add_argument("--backend", default="onnxruntime")
    p.add_argument("--precision", default="fp32")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--scenario", type=str_list, default=("singlestream", "multistream", "offline", "server"),
                   help="singlestream,multistream,offline,server")
    p.add_argument("--latency-bound-ms", type=float, default=None,
                   help="Server's bound on the held percentile (default: 15 on cuda, 100 on cpu)")
    p.add_argument("--duration", default="quick", help="quick (seconds) or mlperf (600 s and the official counts)")
    p.add_argument("--percentile", type=int, default=None,
                   help="MultiStream's and Server's held percentile, 90 or 99 (default: quick 90, mlperf 99)")
    p.add_argument("--server-qps", type=float, default=None, help="one Server run at this QPS (default: peak search)")
    p.add_argument("--search-steps", type=int, default=8, help="Server peak search: at most this many LoadGen runs")
    p.add_argument("--server-mode", default=None,
                   help="Server's instance: latency or throughput (default: latency on cpu, throughput on cuda)")
    p.add_argument("--offline-batches", type=int_list, default=None,
                   help="Offline runs the one of most images/s (default: 1,8 on cpu; 8,32,128 on cuda)")
    p.add_argument("--input-size", type=int, default=224)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--images", default=None, help="accuracy-run images (default: 32 seeded synthetic images)")
    p.add_argument("--labels", default=None, help="'file label' lines for --images: top-1 accuracy too")
    p.add_argument("--calibration-images", default=None, metavar="DIR",
                   help="int8: calibrate on these images, disjoint from --images (default: seeded ones)")
    p.add_argument("--max-accuracy-drop", type=fraction, default=0.01,
                   help="the relative top-1 drop a precision may cost against fp32 (default 1%%)")
    p.add_argument("--no-batching", action="store_true", help="Server: one image per request, no dynamic batcher")
    p.add_argument("--cuda-graphs", action="store_true",
                   help="torch on cuda: Offline on one request stream replaying CUDA graphs (torch-compile: "
                        "mode reduce-overhead)")
    p.add_argument("--count", type=int, default=32, help="seeded accuracy images when no --images")
    p.add_argument("--artifacts", default="artifacts", help="artifact store folder")
    p.add_argument("--out", default="results/runs", help="where run directories go")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=commands.cmd_loadgen)

    p = sub.add_parser("report", help="report.md / report.html / plots from one or more runs")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--out", default="results/report", help="output folder")
    p.add_argument("--max-latency-ms", type=float, default=None)
    p.add_argument("--latency-percentile", type=int, default=90, help="50, 90 or 99")
    p.add_argument("--min-throughput", type=float, default=None, help="images/s")
    p.add_argument("--max-rel-err", type=float, default=None, help="relative L2 error against PyTorch fp32")
    p.add_argument("--max-accuracy-drop", type=fraction, default=None,
                   help="the relative top-1 drop a pick may cost (default: each row's own verdict, 1%% at bench time)")
    p.add_argument("--min-top1-agreement", type=float, default=None,
                   help="share of images whose top-1 class matches PyTorch fp32 (e.g. 0.99)")
    p.add_argument("--precisions", type=str_list, default=None)
    p.add_argument("--devices", type=str_list, default=None)
    p.add_argument("--depths", type=int_list, default=None)
    p.set_defaults(func=commands.cmd_report)

    verdict_formats = (*FORMATS, "markdown")
    p = sub.add_parser("compare",
                       help="BASE and HEAD runs: each cell's difference (slower / faster / within), no timing verdict")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="BASE HEAD (or HEAD with --baseline)")
    p.add_argument("--threshold", default="10%")
    p.add_argument("--baseline", action="store_true", help="against results/baselines/<fingerprint>: warn only")
    p.add_argument("--baselines", default="results/baselines")
    p.add_argument("--format", choices=verdict_formats, default="table")
    p.set_defaults(func=commands.cmd_compare)

    p = sub.add_parser("gate", help="PR gate: base ref and working tree over fresh processes, one job")
    p.add_argument("--ref", default=None, help="base git ref (default: merge-base with main)")
    p.add_argument("--head", default=None, help="source tree to test (default: this checkout's working tree)")
    p.add_argument("--rounds", type=int, default=None,
                   help="one look at this many rounds of fresh processes per side (default: looks at 4 to 20)")
    p.add_argument("--blocks", type=int, default=None, help="blocks per process and cell (default 3)")
    p.add_argument("--threshold", default="10%")
    p.add_argument("--cells", type=str_list, default=None, help="depth/backend/batch,... (default: all gated)")
    p.add_argument("--input-size", type=int, default=None, help="image size of every cell (default: 224)")
    p.add_argument("--artifacts", default="artifacts")
    p.add_argument("--format", choices=verdict_formats, default="table")
    p.set_defaults(func=commands.cmd_gate)
    return parser
