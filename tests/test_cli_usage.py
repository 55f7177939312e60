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


# Found in review (5 December 2026): feeds and input files read numbers strictly (gridshift.numerals), flags still
# through int() and float(), which read "1_0" as 10, "１２" and "١٢" as 12, " 12 " as 12: `--deployments 1_000`
# or `--seeds ١٢` was read silently. Parsed only (build_parser), so that the old code, which took these, fails
# at once instead of running the command.
@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["bench", "planner", "--deployments", "1_0"], "argument --deployments: not an integer: '1_0'"),
        (["bench", "planner", "--seeds", "١٢"], "argument --seeds: not an integer: '١٢'"),
        (["bench", "planner", "--repeat", "12.0"], "argument --repeat: not an integer: '12.0'"),
        (["bench", "planner", "--tightness", "0.6 "], "argument --tightness: not a number: '0.6 '"),
        (["bench", "mix", "--ttft-ms", "２000"], "argument --ttft-ms: not a number: '２000'"),
        (["simulate", "--replan-minutes", "６０"], "argument --replan-minutes: not an integer: '６０'"),
        (["simulate", "--jobs", " 2"], "argument --jobs: not an integer: ' 2'"),
        (["simulate", "--days", "1_0.5"], "argument --days: not a number: '1_0.5'"),
        (["prices", "--sequence", "1_0", "x.csv"], "argument --sequence: not an integer: '1_0'"),
        (["prices", "--timeout", "1e999", "x.csv"], "argument --timeout: not a finite number: '1e999'"),
        (["profile", "--endpoint", "http://x", "--concurrency", "１,2"], "argument --concurrency: expected comma-"),
        (["profile", "--endpoint", "http://x", "--gpus", "0,1_0"], "argument --gpus: expected comma-separated"),
        (["profile", "--endpoint", "http://x", "--prompt-tokens", "5_12"], "argument --prompt-tokens: not an int"),
        (["profile", "--endpoint", "http://x", "--measure-seconds", "NaN"], "argument --measure-seconds: not a fin"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_a_number_flag_written_other_than_plainly_is_refused_naming_the_flag(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from gridshift.cli.main import build_parser

    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err, err


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--pue", "1_0"], "--pue: '1_0' is not [KEY=]NUMBER"),
        (["--gpu-price", "DE-LU=２.5"], "--gpu-price: 'DE-LU=２.5' is not [KEY=]NUMBER"),
        (["--fx", "EUR=1_0"], "--fx: 'EUR=1_0' is not [KEY=]NUMBER"),
        (["--minute-miss", "0.0_5"], "--minute-miss: expected a probability within (0, 1) or off, got '0.0_5'"),
        (["--deployments", "1_0"], "--deployments: '1_0' is neither a number of deployments nor a YAML file"),
        # The check before plain_integer passed "+-12" to int(): a ValueError traceback.
        (["--deployments=+-12"], "--deployments: '+-12' is neither a number of deployments nor a YAML file"),
        # A name past the file system's limit (ENAMETOOLONG) was an OSError traceback printing it whole (review).
        (
            ["--deployments", "9" * 5000],
            "--deployments: '9999999999999999999... (5,000 characters) is neither a number "
            "of deployments nor a YAML file",
        ),
        (
            ["--deployments", "x" * 300],
            "--deployments: 'xxxxxxxxxxxxxxxxxxx... (300 characters) is neither a number "
            "of deployments nor a YAML file",
        ),
    ],
    ids=lambda v: " ".join(v)[:40] if isinstance(v, list) else None,
)
def test_a_simulate_number_read_by_its_handler_is_read_plainly_too(argv: list[str], named: str) -> None:
    from gridshift.cli.main import build_parser
    from gridshift.cli.simulate import build_settings
    from gridshift.cli.usage import UsageError

    with pytest.raises(UsageError) as refused:
        build_settings(build_parser().parse_args(["simulate", *argv]))
    assert str(refused.value) == named


def test_a_carbon_price_list_is_read_plainly_item_by_item() -> None:
    from gridshift.cli.main import build_parser
    from gridshift.cli.simulate import carbon_price_list
    from gridshift.cli.usage import UsageError

    def prices(text: str) -> list[float]:
        return carbon_price_list(build_parser().parse_args(["simulate", "--carbon-price", text]).carbon_price)

    assert prices("0, 50,100") == [0.0, 50.0, 100.0]  # spaces after a comma are the list's layout
    with pytest.raises(UsageError, match=r"^--carbon-price: '1_0' is not a number \(USD per tonne\)$"):
        prices("0,1_0")
    with pytest.raises(UsageError, match=r"^--carbon-price: 'nan' is not a number"):
        prices("nan")
    with pytest.raises(UsageError, match=r"^--carbon-price: '1e999' must be within 0\.\.10000 USD/t$"):
        prices("1e999")


def test_number_flags_written_plainly_still_parse() -> None:
    from gridshift.cli.main import build_parser

    parser = build_parser()
    args = parser.parse_args(["bench", "planner", "--deployments", "20", "--seed", "-1", "--tightness", "+.5"])
    assert (args.deployments, args.clusters, args.seed, args.tightness, args.budget) == (20, 12, -1, 0.5, None)
    args = parser.parse_args(["profile", "--endpoint", "http://x", "--concurrency", "1, 2,4", "--gpus", "0"])
    assert (args.concurrency, args.gpus, args.trace_limit) == ((1, 2, 4), (0,), 5000)
    args = parser.parse_args(["simulate", "--replan-minutes", "+30", "--days", "1e-1", "--fx", "EUR = 1.08"])
    assert (args.replan_minutes, args.days) == (30, 0.1)
    from gridshift.cli.simulate import build_settings

    assert build_settings(args).fx_to_usd["EUR"] == 1.08  # spaces around "=" are the pair's layout


def test_a_huge_bad_flag_value_is_quoted_by_its_first_characters(capsys: pytest.CaptureFixture[str]) -> None:
    from gridshift.cli.main import build_parser

    cases = [
        (["bench", "planner", "--seeds", "1" * 5000], "argument --seeds: more than 4,300 digits: '1111"),
        (["simulate", "--days", "1_" * 50_000], "argument --days: not a number: '1_1_"),
    ]
    for argv, named in cases:
        with pytest.raises(SystemExit):
            build_parser().parse_args(argv)
        error = capsys.readouterr().err.splitlines()[-1]  # after argparse's usage lines
        assert named in error and error.endswith("characters)") and len(error) < 200, error[:300]
