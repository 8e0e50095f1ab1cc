"""The race: its elimination rules on cases of known answer, and its error rate against the truth
by simulation (how often a raced pick is not a right answer: a candidate within 3% of the true
best among those truly within the budget)."""

import pytest

from resnet_bench.select.race import Entry, Limits, RacePlan, eliminate, simulate_race

PLAN = RacePlan(rounds=6)
# A quick run's shape: twelve candidates, images/s and p90 ms (ResNet-50 on a 2-core CPU).
RATES = [24.5, 23.4, 12.8, 25.5, 25.3, 11.0, 21.6, 21.5, 14.5, 22.1, 22.3, 15.9]
P90 = [45.0, 48.0, 95.0, 96.0, 98.0, 180.0, 390.0, 400.0, 600.0, 730.0, 760.0, 1100.0]


def named_bound(sd: float) -> float:
    """The most candidates a useful race names on average (measured: 2.7-2.9 at 3%, 3.6 at 6%)."""
    return 3.2 if sd <= 0.03 else 3.9


def entry(label, rates, quantiles):
    return Entry(label, {}, rates=list(rates), quantiles=list(quantiles))


def test_round_one_drops_only_what_misses_by_more_than_the_noise():
    entries = [entry("fast", [20], [50]), entry("over", [30], [130]), entry("near", [25], [110])]
    eliminate(entries, Limits(max_latency_ms=100), PLAN, 1)
    assert [e.state for e in entries] == ["racing", "out", "racing"]  # 130 > 125; 110 is within 25%
    assert entries[1].why.startswith("p90 130 ms") and entries[1].left_in == 1


def test_later_rounds_drop_the_dominated_by_their_intervals():
    steady = [20.0, 20.2, 19.9, 20.1]
    entries = [entry("best", steady, [50, 51, 50, 50]), entry("close", [19.9, 20.1, 20.0, 20.2], [50] * 4),
               entry("slow", [15.0, 15.1, 14.9, 15.0], [60, 61, 60, 60])]
    eliminate(entries, Limits(max_latency_ms=100), PLAN, 4)
    assert [e.state for e in entries] == ["racing", "racing", "out"]
    assert "below another that meets the budget" in entries[2].why


@pytest.mark.parametrize("budget, sd", [(100, 0.03), (100, 0.06), (500, 0.03), (None, 0.03)])
def test_the_raced_pick_is_right_at_least_95_times_in_100(budget, sd):
    """Right: the pick within the budget and a candidate within 3% of the true best named (alone or
    tied). Of twelve, a handful are left named (25.5, 25.3 and 24.5 images/s are within 4%)."""
    # 600 races (docs/reports.md's table is of 2000): a wrong rate measured near 0% is then known to
    # within ~1% and pick_off's 5.9% at sd 6% within ~2% (95%), inside the bounds, in a third of the time
    found = simulate_race(RATES, P90, Limits(max_latency_ms=budget), PLAN, process_sd=sd, runs=600, seed=1)
    assert found["wrong"] <= 0.05 and found["named"] <= named_bound(sd), found
    # The early tie (futility, from round 3) trades rounds for order among near-ties: 2000 races, 4.5
    # rounds instead of 6.0 at sd 3% (first-named off by more than 3%: 1.3% instead of 0.4%), 3.7
    # instead of 6.0 at 6% (11.3% instead of 5.9%); each one named is within 4% of the best (docs/reports.md)
    assert found["pick_off"] <= (0.035 if sd <= 0.03 else 0.16), found
    assert found["rounds"] <= (4.8 if sd <= 0.03 else 4.0), found


def test_a_race_that_named_everyone_would_be_caught_by_named():
    wide = RacePlan(rounds=2, confidence=0.999)  # intervals so wide that nothing is dropped after round 2
    found = simulate_race(RATES[:5], P90[:5], Limits(), wide, process_sd=0.03, runs=200, seed=1)
    assert found["named"] == 4.0 and found["loose"] == 1.0  # all but 12.8 images/s, dropped in round 1
    assert found["named"] > named_bound(0.03)  # the main test's bound rejects it


def test_an_impossible_budget_leaves_nothing_and_is_no_error():
    found = simulate_race(RATES, P90, Limits(max_latency_ms=5), PLAN, process_sd=0.03, runs=200)
    assert found["none"] == 1.0 and found["wrong"] == 0.0


@pytest.mark.parametrize("args, message", [
    (["--budget-s", "0"], "--budget-s must be positive, got 0"),
    (["--latency-percentile", "95"], "--latency-percentile must be one of 50, 90, 99, got 95"),
    (["--max-latency-ms", "-1"], "--max-latency-ms must be positive"),
    (["--backends", "tensorrt"], "no candidate left after the filters: --backends tensorrt on cpu"),
    (["--precisions", "int8"], "no candidate left after the filters: --precisions int8 needs an established accuracy"),
])
def test_select_bad_input_is_one_line_exit_2_before_any_work(tmp_path, capsys, args, message):
    from resnet_bench.cli import main

    assert main(["select", *args, "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "runs").exists()


def test_the_race_summary_fits_100_columns_and_puts_the_never_raced_on_one_line():
    """Rows as results.csv gives them back (NaN where a candidate was never timed): no 'nan' in
    the table, the round a candidate left in as an integer, the never-raced in one line per reason."""
    from rich.console import Console

    from resnet_bench.cli.output import WIDTH, race_summary

    nan = float("nan")
    timed = dict(status="ok", images_per_s=29.9, images_per_s_low=28.5, images_per_s_high=31.3, latency_ms_p90=73.3)
    rows = [dict(backend="onnxruntime", precision="fp32", mode="throughput", batch_size=1, race_state="tied",
                 race_round=6.0, race_reason="tied", **timed),
            dict(backend="torch", precision="fp32", mode="latency", batch_size=8, status="ok", race_state="out",
                 race_round=1.0, images_per_s=13.8, images_per_s_low=nan, images_per_s_high=nan, latency_ms_p90=nan,
                 race_reason="p90 647 ms (at least 518) is over the 100 ms budget")]
    rows += [dict(backend=b, precision="int8", mode=m, batch_size=n, status="not_raced", race_state=nan,
                  race_round=nan, images_per_s=nan, latency_ms_p90=nan, race_reason="accuracy not established")
             for b in ("onnxruntime", "openvino") for m in ("latency", "throughput") for n in (1, 8)]
    console = Console(width=WIDTH, record=True)
    race_summary(console, rows, 6, 90)
    text = console.export_text()
    assert "nan" not in text and max(len(line) for line in text.splitlines()) <= WIDTH
    assert "tied r6 " in text and "out r1 " in text and "13.8 " in text and "(nan" not in text
    (line,) = [line for line in text.splitlines() if line.startswith("not raced")]
    assert line == "not raced (8 candidates: onnxruntime int8, openvino int8): accuracy not established"
    assert "int8 lat" not in text  # no row each for the never-raced


def test_futility_ties_equal_candidates_early_and_never_cuts_a_clear_lead():
    """Two candidates of equal truth: no number of rounds can order them, and the race says so
    before its last round; a 9% lead is still separated most of the time (the stop does not cut it)."""
    equal = simulate_race([25.0, 25.0], [50.0, 50.0], Limits(max_latency_ms=100), PLAN, process_sd=0.03,
                          runs=300, seed=2)
    assert equal["wrong"] == 0.0 and equal["rounds"] < 4.5, equal
    clear = simulate_race([27.25, 25.0], [50.0, 50.0], Limits(max_latency_ms=100), PLAN, process_sd=0.03,
                          runs=300, seed=2)  # 9% ahead: past the two projected half-widths (~6.3%) at sd 3%
    assert clear["pick_off"] <= 0.02 and clear["named"] <= 1.5, clear


def test_a_race_over_real_processes_of_known_service_time(tmp_path):
    """Fresh worker processes of a backend of known service time (a real sleep), two processes a
    round (the 'fp32' and 'fp16' labels: two sides timing the batch-4 configuration in turn): 5 ms
    at batch 4 is 800 images/s, 10 ms is 400 (dominated), 40 ms at batch 8 misses a 25 ms budget by
    more than round 1's margin, and a cell that cannot be opened fails alone. The race must pick
    the first, alone, each figure with its own side."""
    from resnet_bench.select.race import race
    from resnet_bench.util.files import PACKAGE

    def cell(batch, ms, precision="fp32"):
        return {"backend": "service-time", "precision": precision, "mode": "latency", "batch_size": batch,
                "service_ms": ms, "depth": 18, "input_size": 2, "device": "cpu"}

    broken = {**cell(2, 1.0), "service_ms": None}  # the worker cannot open it
    entries = [Entry("fast", cell(4, 5.0, "fp16")), Entry("half", cell(4, 10.0)), Entry("slow", cell(8, 40.0)),
               Entry("broken", broken)]
    ended = race(entries, Limits(max_latency_ms=25), RacePlan(rounds=4), PACKAGE.parent, tmp_path)
    state = {e.label: (e.state, e.left_in) for e in entries}
    assert ended["pick"] == "fast" and state["fast"][0] == "picked", (ended, state)
    assert state["slow"] == ("out", 1) and "over the 25 ms budget" in entries[2].why
    assert state["half"][0] == "out" and "below another that meets the budget" in entries[1].why
    assert state["broken"] == ("out", 1) and entries[3].why.startswith("failed:")
    assert 740 < entries[0].rates[0] <= 800 and 370 < entries[1].rates[0] <= 400  # a sleep never undershoots


def test_a_race_of_equal_candidates_ends_in_an_early_tie_that_says_so(tmp_path):
    """Two sides of the same known service time cannot be ordered: the race stops before its last
    round (futility, from round 3) and the answer says the tie and why it stopped."""
    from resnet_bench.select.pick import answer
    from resnet_bench.select.race import race
    from resnet_bench.util.files import PACKAGE

    cells = [{"backend": "service-time", "precision": p, "mode": "latency", "batch_size": 4, "service_ms": 10.0,
              "depth": 18, "input_size": 2, "device": "cpu"} for p in ("fp32", "fp16")]
    entries = [Entry("a", cells[0]), Entry("b", cells[1])]
    plan = RacePlan(rounds=8)
    ended = race(entries, Limits(max_latency_ms=25), plan, PACKAGE.parent, tmp_path)
    assert ended["ended"] == "futile" and 3 <= ended["rounds"] < 8 and ended["tied_with"], ended
    assert "(8 would not either)" in next(e.why for e in entries if e.label in ended["tied_with"])
    rows = [{"cell_id": e.label, "backend": "service-time", "precision": e.cell["precision"], "mode": "latency",
             "batch_size": 4, "race_state": e.state, "images_per_s": e.interval(e.rates, plan.confidence)[0],
             "images_per_s_low": 390.0, "images_per_s_high": 400.0, "latency_ms_p90": 10.2} for e in entries]
    text = answer(rows, ended, Limits(max_latency_ms=25))
    assert text.startswith("Tied within this machine's noise") and "stopped early" in text, text
