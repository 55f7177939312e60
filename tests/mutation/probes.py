"""Break the code on purpose, one mutant of issue 22 at a time, and check that the named tests fail.

Each probe edits one line of a copy of operator/ (never the working tree), runs the tests said to
guard against it with that copy first on the path, and passes when every one of them fails.
`python tests/mutation/probes.py` (or `make mutation-probes`); exit 1 if a named test lets its mutant through.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MIGRATION = "gridshift/planner/migration.py"
CAPACITY = "gridshift/planner/capacity.py"
ENTSOE = "gridshift/signals/entsoe.py"
MIGRATE = "gridshift/service/migrate.py"
INPUTS = "gridshift/service/inputs.py"
STATUS = "gridshift/service/status.py"
T_MIGRATION = "tests/planner/test_migration.py"
T_CAPACITY = "tests/planner/test_capacity.py"
T_WRITER = "tests/signals/test_entsoe_writer.py"
T_MIGRATE = "tests/service/test_migrate.py"
T_INPUTS = "tests/service/test_inputs.py"
T_FAILSAFES = "tests/service/test_failsafes.py"
RANDOM_MIGRATIONS = f"{T_MIGRATE}::test_random_migrations_keep_make_before_break_and_reach_their_target"


@dataclass(frozen=True)
class Probe:
    what: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


PROBES = [
    Probe(
        "floor check: - stopping.count(other) -> + (two removals from one pool in one batch)",
        MIGRATION,
        "after[other] = min(after[other], now_desired[other] - count)",
        "after[other] = min(after[other], now_desired[other] + count)",
        (
            # Since growth starts in the first batch (5 December 2026) the two-removals examples no longer
            # bind the floor; this one does.
            f"{T_MIGRATION}::test_a_batch_stops_no_more_than_the_floor_allows_where_growth_started_at_once",
        ),
    ),
    Probe(
        "growth check: and -> or (a cluster absent from desired)",
        MIGRATION,
        "for k, n in desired.items()) and all(",
        "for k, n in desired.items()) or all(",
        (f"{T_MIGRATION}::test_growing_onto_a_cluster_absent_from_desired_starts_it",),
    ),
    Probe(
        "batch limit: >= -> > (one replica too many per batch)",
        MIGRATION,
        "low, high = 0, min(removes[key], quota - taken)",
        "low, high = 0, min(removes[key], quota - taken + 1)",
        (
            f"{T_MIGRATION}::test_a_batch_stops_no_more_replicas_than_it_started_even_when_capacity_allows",
            f"{T_MIGRATION}::test_make_before_break_holds_on_targeted_migrations",
        ),
    ),
    Probe(
        "routing: total <= 0 -> <= 1 (capacities below 1 req/s)",
        MIGRATION,
        "if total <= 0:",
        "if total <= 1:",
        (f"{T_MIGRATION}::test_routing_weights_with_capacities_below_one_request_per_second",),
    ),
    Probe(
        "step action string ScaleUp -> ScaleUP",
        MIGRATION,
        'SCALE_UP = "ScaleUp"',
        'SCALE_UP = "ScaleUP"',
        (
            f"{T_MIGRATION}::test_step_actions_are_the_names_the_shell_reads",
            f"{T_MIGRATION}::test_pure_growth_starts_everything_at_once",
        ),
    ),
    Probe(
        'routing step key ("*", "*") -> ("all", "*")',
        MIGRATION,
        '("*", "*"),',
        '("all", "*"),',
        (
            f"{T_MIGRATION}::test_pure_growth_starts_everything_at_once",
            f"{T_MIGRATION}::test_make_before_break_holds_on_targeted_migrations",
        ),
    ),
    Probe(
        "p95 wait: mean_wait_s / util -> * (capacity overestimated)",
        CAPACITY,
        "mean_wait_s / np.maximum(safe_util, 1e-300)",
        "mean_wait_s * np.maximum(safe_util, 1e-300)",
        (
            f"{T_CAPACITY}::test_operating_point_matches_the_queueing_model_worked_by_hand",
            f"{T_CAPACITY}::test_a_ttft_bound_capacity_meets_the_ttft_slo_exactly",
        ),
    ),
    Probe(
        "unreachable check: rate <= 0.0 -> <= 1.0",
        CAPACITY,
        "if rate <= 0.0:",
        "if rate <= 1.0:",
        (f"{T_CAPACITY}::test_capacity_below_one_request_per_second_is_reported",),
    ),
    Probe(
        "prefill stall left out of p95 TPOT",
        CAPACITY,
        "np.where(steps_with_prefill > 1.0 - quantile, chunk_stall_s, 0.0)",
        "np.where(steps_with_prefill > 1.0 - quantile, 0.0, 0.0)",
        (
            f"{T_CAPACITY}::test_operating_point_matches_the_queueing_model_worked_by_hand",
            f"{T_CAPACITY}::test_the_prefill_stall_sets_the_tpot_limit_where_5_percent_of_steps_carry_a_chunk",
        ),
    ),
    Probe(
        "stall boundary moved: > 1 - q -> > 1.01 - q",
        CAPACITY,
        "steps_with_prefill > 1.0 - quantile",
        "steps_with_prefill > 1.01 - quantile",
        (f"{T_CAPACITY}::test_the_prefill_stall_sets_the_tpot_limit_where_5_percent_of_steps_carry_a_chunk",),
    ),
    Probe(
        "decode context: prompt + output / 2 -> prompt + output",
        CAPACITY,
        "    context = prompt + output / 2.0\n    base_s",
        "    context = prompt + output\n    base_s",
        (f"{T_CAPACITY}::test_operating_point_matches_the_queueing_model_worked_by_hand",),
    ),
    Probe(
        "binding-limit labels TPOT and TTFT swapped",
        CAPACITY,
        "        limit = CapacityLimit.TPOT\n    else:\n        limit = CapacityLimit.TTFT",
        "        limit = CapacityLimit.TTFT\n    else:\n        limit = CapacityLimit.TPOT",
        (
            f"{T_CAPACITY}::test_a_tpot_bound_capacity_meets_the_tpot_slo_exactly",
            f"{T_CAPACITY}::test_a_ttft_bound_capacity_meets_the_ttft_slo_exactly",
        ),
    ),
    Probe(
        "A44 writer: sender role A32 -> A33",
        ENTSOE,
        '"sender_MarketParticipant.marketRole.type", "A32"',
        '"sender_MarketParticipant.marketRole.type", "A33"',
        (
            f"{T_WRITER}::test_writer_reproduces_a_recorded_day_ahead_document_element_for_element",
            f"{T_WRITER}::test_writer_header_fields_are_the_day_ahead_documents",
        ),
    ),
    Probe(
        "A44 writer: in_Domain without codingScheme",
        ENTSOE,
        'add(series, "in_Domain.mRID", area_eic, codingScheme="A01")',
        'add(series, "in_Domain.mRID", area_eic)',
        (
            f"{T_WRITER}::test_writer_reproduces_a_recorded_day_ahead_document_element_for_element",
            f"{T_WRITER}::test_writer_header_fields_are_the_day_ahead_documents",
        ),
    ),
    # The service's migration state machine and fail-safes (the second part of issue 22): the bugs
    # found while adding service/migrate.py, re-applied, and the fail-safes broken.
    Probe(
        "routing published while a move waits for its revalidation",
        MIGRATE,
        "if not plan.steps and (plan.routing or scaled_to_zero):",
        "if not progress.steps and (plan.routing or scaled_to_zero):",
        (
            f"{T_MIGRATE}::test_routing_stays_where_it_is_while_a_move_waits_for_its_revalidation",
            f"{T_MIGRATE}::test_the_service_routes_no_traffic_to_a_cluster_before_its_replicas_are_ready",
            RANDOM_MIGRATIONS,
        ),
    ),
    Probe(
        "roll-back takes back batches already shifted",
        MIGRATE,
        "return steps[shifted + 1 :]",
        "return steps",
        # Since 5 December 2026 a roll-back keeps every key whose replicas are all Ready, so an earlier batch
        # is taken back only where one of its replicas crashed: that test guards it now.
        (f"{T_MIGRATE}::test_a_wait_on_a_shifted_batchs_crashed_replica_rolls_back_only_that_cluster",),
    ),
    Probe(
        "a WaitReady timeout never rolls back",
        MIGRATE,
        "if now - step.started_at > timedelta(seconds=timeout):",
        "if False:",
        (
            f"{T_MIGRATE}::test_replicas_not_ready_within_the_timeout_are_scaled_back_and_the_reason_reported",
            RANDOM_MIGRATIONS,
        ),
    ),
    Probe(
        "a write refused for the timeout never rolls back",
        MIGRATE,
        "if refused_for > timedelta(seconds=timeout):",
        "if False:",
        (f"{T_MIGRATE}::test_a_write_refused_for_the_ready_timeout_is_rolled_back_and_frees_the_deployment",),
    ),
    Probe(
        "a shift or scale-down trusts a WaitReady done cycles before",
        MIGRATE,
        "if _no_longer_ready(progress.steps, step, ready, now):",
        "if False and _no_longer_ready(progress.steps, step, ready, now):",
        (f"{T_MIGRATE}::test_routing_and_scale_downs_wait_for_replicas_that_stopped_being_ready",),
    ),
    Probe(
        "a move starts without revalidation",
        MIGRATE,
        "if not growth_only and self._revalidate_delay > timedelta(0):",
        "if False:",
        (f"{T_MIGRATE}::test_a_move_starts_only_once_the_same_target_was_planned_revalidate_delay_apart",),
    ),
    Probe(
        "a migration waiting on a cluster that is gone is never abandoned",
        MIGRATE,
        "return any(s.cluster not in views or not views[s.cluster].reachable for s in pending)",
        "return any(s.cluster in views and not views[s.cluster].reachable for s in pending)",
        (f"{T_MIGRATE}::test_a_migration_waiting_on_a_cluster_that_is_gone_is_abandoned_and_planned_afresh",),
    ),
    Probe(
        "a refused member write is not recorded in progress.error",
        MIGRATE,
        "progress.error = str(error)",
        "progress.error = None",
        (f"{T_MIGRATE}::test_a_refused_write_leaves_the_step_running_with_the_reason_and_is_retried",),
    ),
    Probe(
        "missing request rate read as zero demand",
        INPUTS,
        "return S.ObservedDemand(None, demand.mean_prompt_tokens, demand.mean_output_tokens)",
        "return S.ObservedDemand(0.0, demand.mean_prompt_tokens, demand.mean_output_tokens)",
        (
            f"{T_INPUTS}::test_a_cluster_without_a_request_rate_makes_the_whole_demand_unknown_not_smaller",
            f"{T_FAILSAFES}::test_missing_demand_metrics_never_scale_below_what_runs_and_say_so",
        ),
    ),
    Probe(
        "a cluster without a request rate left out of the sum",
        INPUTS,
        "if not signals or any(r is None for r in rates):",
        "if not signals or all(r is None for r in rates):",
        (f"{T_INPUTS}::test_a_cluster_without_a_request_rate_makes_the_whole_demand_unknown_not_smaller",),
    ),
    Probe(
        "stale prices taken as fresh by the planner",
        INPUTS,
        "return S.PriceHorizon(intervals=intervals, stale=reading.stale)",
        "return S.PriceHorizon(intervals=intervals, stale=False)",
        (
            f"{T_INPUTS}::test_a_stale_reading_keeps_its_prices_and_is_flagged",
            f"{T_FAILSAFES}::test_a_stale_price_feed_is_flagged_where_it_matters_and_moves_nothing",
        ),
    ),
    Probe(
        "PriceFeedStale not set on the deployment",
        STATUS,
        "stale_prices = sorted(c for c, v in concerning.items() if v.reading is None or v.reading.stale)",
        "stale_prices = sorted(c for c, v in concerning.items() if v.reading is None)",
        (f"{T_FAILSAFES}::test_a_stale_price_feed_is_flagged_where_it_matters_and_moves_nothing",),
    ),
    Probe(
        "MetricsStale never set",
        STATUS,
        "no_metrics = applied.demand.requests_per_second is None and",
        "no_metrics = False and",
        (f"{T_FAILSAFES}::test_missing_demand_metrics_never_scale_below_what_runs_and_say_so",),
    ),
]


def run_probe(probe: Probe, scratch: Path) -> list[str]:
    """The named tests that passed (should be none) with `probe` applied to a copy of operator/."""
    source_root = scratch / "operator"
    if source_root.exists():
        shutil.rmtree(source_root)
    shutil.copytree(REPO / "operator", source_root, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    target = source_root / probe.path
    text = target.read_text()
    if text.count(probe.old) != 1:
        raise SystemExit(f"probe {probe.what!r}: {probe.old!r} occurs {text.count(probe.old)} times in {probe.path}")
    target.write_text(text.replace(probe.old, probe.new))
    env = dict(os.environ, PYTHONPATH=str(source_root), GRIDSHIFT_SKIP_CLUSTER="1", PYTHONDONTWRITEBYTECODE="1")
    passed = []
    for test in probe.tests:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", test],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        verdict = "FAILS (guards it)" if done.returncode == 1 else f"exit {done.returncode}: LETS IT THROUGH"
        print(f"    {test.split('::')[-1]}: {verdict}", flush=True)
        if done.returncode != 1:
            passed.append(test)
    return passed


def control(scratch: Path) -> bool:
    """The named tests pass on an unmodified copy (else a failure below would prove nothing)."""
    source_root = scratch / "operator"
    shutil.copytree(REPO / "operator", source_root, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    tests = sorted({test for probe in PROBES for test in probe.tests})
    env = dict(os.environ, PYTHONPATH=str(source_root), GRIDSHIFT_SKIP_CLUSTER="1", PYTHONDONTWRITEBYTECODE="1")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    print(f"control (no mutant): {len(tests)} named tests {'pass' if done.returncode == 0 else 'FAIL'}", flush=True)
    if done.returncode != 0:
        print(done.stdout[-3000:], file=sys.stderr)
    return done.returncode == 0


def main() -> int:
    escaped = []
    with tempfile.TemporaryDirectory(prefix="gridshift-probes-") as scratch:
        if not control(Path(scratch)):
            return 2
        for probe in PROBES:
            print(f"{probe.path}: {probe.what}", flush=True)
            escaped += run_probe(probe, Path(scratch))
    if escaped:
        print(f"\n{len(escaped)} named test(s) did not fail on their mutant", file=sys.stderr)
        return 1
    print(f"\nall {len(PROBES)} probes: every named test fails on its mutant")
    return 0


if __name__ == "__main__":
    sys.exit(main())
