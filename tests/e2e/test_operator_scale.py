"""The fleet-scale case CI runs: bench/operator_scale.py at 1,000 Advisory deployments x 12 regions.

Real control planes (hub + 12 regions, started 4 at a time), one member replica per deployment, the
service's real adapters cycle by cycle (see the bench's docstring). Asserts the bounds of issue 20 that
do not depend on the machine's load: Prometheus queries per cycle are 10 per region whatever the
number of deployments, an idle cycle writes nothing (the Lease renewal aside), every deployment gets
its status in the first cycle through at most write_concurrency writes at once, RSS under 384 MiB
(well within the chart's limit). The wall times are printed, not asserted (a shared 2-core machine;
docs/scale.md). About 6 minutes here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from bench.operator_scale import CHART_MEMORY_LIMIT_MIB

from gridshift.signals.promql import Signal
from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]

DEPLOYMENTS, REGIONS, CONCURRENCY = 1000, 12, 16
RSS_BOUND_MIB = 384


def test_a_thousand_deployments_in_twelve_regions_stay_within_the_bounds(tmp_path: Path) -> None:
    # The bench runs in a process of its own, as the operator does: its RSS is then the service's and
    # not this pytest session's high-water mark (which held every earlier test's memory: 394 MiB in CI).
    # It starts its own 13 planes (beside the session's world, if one runs) and stops them.
    figures = tmp_path / "scale.json"
    command = [
        sys.executable,
        "-m",
        "bench.operator_scale",
        f"--deployments={DEPLOYMENTS}",
        f"--regions={REGIONS}",
        "--nodes=2",
        "--steady=2",
        f"--write-concurrency={CONCURRENCY}",
        "--planner-budget=10",
        "--verbose",
        f"--json={figures}",
    ]
    done = subprocess.run(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True, timeout=1800, check=False)
    print("\n" + done.stdout)
    assert done.returncode == 0, f"bench/operator_scale.py exited {done.returncode}"
    result = json.loads(figures.read_text())
    assert result["first"] is not None
    assert result["first"]["status_writes"] >= DEPLOYMENTS + REGIONS
    # The pool's writes plus the Lease renewal beside them.
    assert result["peak_writes_in_flight"] <= CONCURRENCY + 1
    assert result["cycles_to_quiet"] <= 2
    assert len(result["steady"]) == 2
    for cycle in result["steady"]:
        assert (cycle["writes"], cycle["status_writes"], cycle["member_writes"], cycle["events"]) == (0, 0, 0, 0)
        assert cycle["prometheus_queries"] == len(Signal) * REGIONS, "one query per signal per region"
        assert cycle["errors"] == 0
    # 223-285 MiB measured at 1,000 (docs/scale.md). The bound was 3/4 of the chart's limit when that was
    # 512Mi; the limit is 1Gi since, for 10,000 deployments, and the bound at 1,000 stays where it was.
    assert result["peak_rss_mib"] < min(RSS_BOUND_MIB, 0.75 * CHART_MEMORY_LIMIT_MIB)
