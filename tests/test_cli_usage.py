"""Bad flag values and input files give `gridshift <command>: error: ...` naming the flag, exit 2, no traceback.

Found in review (2 December 2026): NaN and infinities passed the bound checks of float flags (every
comparison with NaN is false: `simulate --gpu-price nan` wrote NaN costs into its JSON, `--cold-start-seconds
inf` and `--fx EUR=inf` ended in tracebacks), a non-UTF-8 file made `validate` raise, and under
`python -m gridshift.cli.main` every usage error became a traceback (two UsageError classes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from gridshift.cli.main import main
from tests.conftest import REPO_ROOT


def exit_code(argv: Sequence[str]) -> int | str | None:
    """main()'s code: argparse reports a bad value itself (SystemExit 2), the handlers by UsageError (2)."""
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["prices", "--timeout", "nan", "x.csv"], "argument --timeout: not a finite number: 'nan'"),
        (["simulate", "--cold-start-seconds", "inf"], "argument --cold-start-seconds: not a finite number"),
        (["simulate", "--days", "nan"], "argument --days: not a finite number"),
        (["simulate", "--gpu-price", "nan"], "--gpu-price: 'nan' is not a finite number"),
        (["simulate", "--fx", "EUR=inf"], "--fx: 'EUR=inf' is not a finite number"),
        (["bench", "planner", "--tightness", "nan"], "argument --tightness: not a finite number"),
        # Found in review (3 December 2026): each ended in a traceback from the library it reached.
        (["prices", "--timeout", "-1", "x.csv"], "--timeout must be within (0, 3600] seconds, got -1"),
        (["prices", "--timeout", "1e300", "x.csv"], "--timeout must be within (0, 3600] seconds"),
        (["bench", "planner", "--seed", "-1"], "--seed must be >= 0, got -1"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_non_finite_or_out_of_range_number_flags_are_refused_by_name(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert exit_code(argv) == 2
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err


def test_bench_mix_prints_its_summary_when_no_fleet_meets_the_slo(capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code(["bench", "mix", "--ttft-ms", "1"]) == 1  # the target is not met: exit 1, no TypeError
    out, err = capsys.readouterr()
    assert "planner / exact at most - (mean -;" in out
    # Found in review: each row printed nan and a planner cost of 0.000 USD/h, and nothing said why.
    assert "nan" not in out and "no GPU type meets the SLO for this workload" in out
    assert "no GPU type meets --ttft-ms 1 and --tpot-ms 100 for any workload" in err
    assert exit_code(["bench", "mix", "--ttft-ms", "1", "--json"]) == 1
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"workload"' in line]
    assert rows and all(r["planner_usd_per_hour"] is None for r in rows)


def test_a_file_that_is_not_utf8_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("kind: Caf\xe9\n".encode("latin-1"))
    assert exit_code(["validate", str(path)]) == 2
    # Found in review: the sentence stopped at "YAML files must be".
    assert "is not UTF-8 text (byte 9): YAML files must be UTF-8\n" in capsys.readouterr().err


def test_usage_errors_stay_usage_errors_when_run_as_a_module() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "operator")}
    done = subprocess.run(
        [sys.executable, "-m", "gridshift.cli.main", "simulate", "--gpu-price", "nan"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "--gpu-price: 'nan' is not a finite number" in done.stderr and "Traceback" not in done.stderr


def test_a_reader_that_goes_away_ends_the_command_quietly(shared_data: Path) -> None:
    # `gridshift prices FILE --json | head` (docs/signals.md) ended in a BrokenPipeError traceback.
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "operator")}
    source = shared_data / "prices-2024" / "US-TEX-ERCO_electricity_prices_2024.csv"
    command = [sys.executable, "-m", "gridshift.cli.main", "prices", str(source), "--json"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) as process:
        assert process.stdout is not None and process.stderr is not None
        process.stdout.readline()
        process.stdout.close()  # as head does after its lines
        err = process.stderr.read().decode()
        code = process.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert code == 141
