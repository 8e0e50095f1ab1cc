"""What one LoadGen run asks for: the scenario and its load (``Load``), how long it lasts and
which percentile MultiStream and Server are held to (``Duration``: ``quick`` or ``mlperf``), as
LoadGen's ``TestSettings`` (``build_settings``).

Durations: ``QUICK`` runs for seconds and holds MultiStream and Server to p90 by default,
since LoadGen's early stopping can only bound a p99 after 662 (MultiStream) or 459 (Server,
none over the bound) queries, minutes for ResNet-50 on a CPU; ``MLPERF`` takes the minimums,
percentiles and seeds of the ``mlperf.conf`` built into LoadGen (ResNet-50's: 600 s, 1024
performance samples, MultiStream 662 queries, Offline 24,576 samples). Neither makes an
MLPerf result: nothing here is audited, and the row says which rules it followed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from resnet_bench.util.versions import package_version

SCENARIOS = ("singlestream", "multistream", "offline", "server")
NAMES = {"singlestream": "SingleStream", "multistream": "MultiStream", "offline": "Offline", "server": "Server"}
MULTISTREAM_SAMPLES = 8
ACCURACY_QPS = 1000.0  # Server's arrival rate in accuracy runs: every sample is answered once, soon
# Fewest queries after which LoadGen's early stopping can bound the percentile when no query
# is over it (measured with LoadGen 6.0.17: p90 64; p99 Server 459, MultiStream 662).
EARLY_STOPPING_QUERIES = {90: {"singlestream": 64, "multistream": 64, "server": 64},
                          99: {"singlestream": 64, "multistream": 662, "server": 459}}
# Server queries a quick run asks for, by held percentile. With the minimum alone (64 at p90) early
# stopping passes a run with at most 1 query over the bound, so "p90 <= bound" really meant about
# p98; with 256 it lets 14 pass (5.5%: the run holds p94.5), with 1024 at p99 3 (0.3%). What a count
# allows: ``overlatency_allowed``.
SERVER_QUERIES = {90: 256, 99: 1024}
CONFIDENCE = 0.99  # LoadGen's early-stopping confidence (loadgen/results.cc)


def overlatency_allowed(queries: int, percentile: float) -> int | None:
    """The most queries over the bound that LoadGen's early stopping lets a Server run of
    ``queries`` queries pass with (its MinPassingQueries rule: t over-bound queries need h under
    it with P(Binomial(h + t, 1 - p) <= t) < 1 - 0.99), or None when even none over passes."""
    from scipy.stats import binom

    p = percentile / 100 if percentile > 1 else percentile

    def passes(t: int) -> bool:  # the fewest queries that pass with t over the bound, against the count
        return binom.cdf(t, queries, 1 - p) < 1 - CONFIDENCE

    if not passes(0):
        return None
    t = 0
    while t + 1 < queries and passes(t + 1):
        t += 1
    return t


def loadgen_module():
    try:
        import mlperf_loadgen
    except ImportError as exc:
        raise ValueError("LoadGen is not installed: pip install mlcommons-loadgen") from exc
    return mlperf_loadgen


def loadgen_version() -> str:
    return package_version("mlcommons-loadgen") or "?"


@dataclass(frozen=True)
class Duration:
    """How long each LoadGen run lasts, and which percentile MultiStream and Server are held to."""

    name: str
    min_duration_s: float = 5.0
    performance_samples: int = 64  # images LoadGen draws its queries from
    official: bool = False  # the mlperf.conf built into LoadGen (ResNet-50's rules) sets the rest
    percentile: int = 90  # MultiStream and Server (SingleStream is always p90)
    server_queries: int | None = None  # at least this many Server queries (None: SERVER_QUERIES)

    def __post_init__(self) -> None:
        if self.percentile not in EARLY_STOPPING_QUERIES:
            raise ValueError(f"percentile must be one of {', '.join(map(str, EARLY_STOPPING_QUERIES))}, "
                             f"got {self.percentile}")
        if self.min_duration_s <= 0 or self.performance_samples < 1:
            raise ValueError("a duration needs min_duration_s > 0 and performance_samples >= 1")

    def held(self, scenario: str) -> int:
        return 90 if scenario in ("singlestream", "offline") else self.percentile

    def min_queries(self, scenario: str) -> int:
        """The query count a run asks for: early stopping's minimum, and for Server enough that
        over-bound queries near the held percentile can pass."""
        if scenario == "offline":
            return 1
        least = EARLY_STOPPING_QUERIES[self.percentile][scenario]
        if scenario == "server":
            return max(least, self.server_queries or SERVER_QUERIES[self.percentile])
        return least

    def rules(self, bound_ms: float | None = None) -> str:
        if self.official:
            bound = "" if bound_ms in (None, 15) else f", Server bound {bound_ms:g} ms instead of ResNet-50's 15 ms"
            return (f"mlperf: LoadGen {loadgen_version()}'s mlperf.conf ResNet-50 minimums and seeds{bound}; "
                    "unaudited, not an MLPerf result")
        server = self.min_queries("server")
        allowed = overlatency_allowed(server, self.percentile)
        return (f"{self.name}: >= {self.min_duration_s:g} s, Server >= {server} queries (early stopping passes at "
                f"most {allowed} over the bound), MultiStream and Server held to p{self.percentile}; not MLPerf rules")


QUICK = Duration("quick")
MLPERF = Duration("mlperf", 600.0, 1024, official=True, percentile=99)
DURATIONS = {"quick": QUICK, "mlperf": MLPERF}


def duration(name: str, percentile: int | None = None) -> Duration:
    if name not in DURATIONS:
        raise ValueError(f"duration must be one of {', '.join(DURATIONS)}, got {name!r}")
    base = DURATIONS[name]
    if percentile is None or percentile == base.percentile:
        return base
    return replace(base, percentile=percentile)


@dataclass(frozen=True)
class Load:
    """What one LoadGen run asks for, besides its duration."""

    scenario: str
    expected_s: float = 0.01  # SingleStream / MultiStream: expected query latency (sizes the run)
    target_qps: float = 1.0  # Server: the arrival rate; Offline: expected samples/s (sizes the run)
    bound_ms: float = 100.0  # Server: the latency bound
    accuracy: bool = False

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise ValueError(f"scenario must be one of {', '.join(SCENARIOS)}, got {self.scenario!r}")
        if not self.target_qps > 0 or not self.bound_ms > 0 or not self.expected_s > 0:
            raise ValueError("target QPS, latency bound and expected latency must be positive")


def build_settings(load: Load, span: Duration):
    lg = loadgen_module()
    settings = lg.TestSettings()
    if span.official:
        if settings.FromConfig("", "resnet50", NAMES[load.scenario], 0) != 0:
            raise ValueError("LoadGen could not read its built-in mlperf.conf")
    else:
        settings.min_duration_ms = int(span.min_duration_s * 1000)
        settings.min_query_count = span.min_queries(load.scenario)
    held = span.held(load.scenario) / 100
    settings.multi_stream_target_latency_percentile = held if load.scenario == "multistream" else 0.99
    settings.server_target_latency_percentile = held if load.scenario == "server" else 0.99
    settings.scenario = getattr(lg.TestScenario, NAMES[load.scenario])
    settings.mode = lg.TestMode.AccuracyOnly if load.accuracy else lg.TestMode.PerformanceOnly
    settings.single_stream_expected_latency_ns = int(load.expected_s * 1e9)
    settings.multi_stream_expected_latency_ns = int(load.expected_s * 1e9)
    settings.multi_stream_samples_per_query = MULTISTREAM_SAMPLES
    settings.offline_expected_qps = load.target_qps
    settings.server_target_qps = ACCURACY_QPS if load.accuracy else load.target_qps
    settings.server_target_latency_ns = int(load.bound_ms * 1e6)
    return settings
