"""`gridshift bench planner`: flags, output keys, and refusal of bad flags."""

from __future__ import annotations

import argparse
import json

import pytest

from gridshift.cli import bench
from gridshift.cli.main import UsageError


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gridshift")
    bench.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_json_output_has_the_documented_keys(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse(
        [
            "bench",
            "planner",
            "--deployments",
            "12",
            "--clusters",
            "3",
            "--gpu-types",
            "2",
            "--repeat",
            "2",
            "--seed",
            "3",
            "--json",
        ]
    )
    assert args.handler(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"deployments", "clusters", "gpu_types", "median_s", "p95_s", "solver"} <= set(result)
    assert (result["deployments"], result["clusters"], result["gpu_types"]) == (12, 3, 2)
    assert 0 < result["median_s"] <= result["p95_s"]
    assert result["solver"] == "milp"
    assert result["replicas"] >= 12


def test_forcing_greedy_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse(
        ["bench", "planner", "--deployments", "5", "--clusters", "2", "--repeat", "1", "--solver", "greedy", "--json"]
    )
    args.handler(args)
    assert json.loads(capsys.readouterr().out)["solver"] == "greedy"


def test_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse(["bench", "planner", "--deployments", "4", "--clusters", "2", "--repeat", "1"])
    args.handler(args)
    out = capsys.readouterr().out
    assert "median" in out and "p95" in out


@pytest.mark.parametrize(
    ("flag", "value"), [("--deployments", "0"), ("--clusters", "0"), ("--gpu-types", "5"), ("--repeat", "0")]
)
def test_bad_flags_are_usage_errors(flag: str, value: str) -> None:
    args = parse(["bench", "planner", flag, value])
    with pytest.raises(UsageError, match=flag):
        args.handler(args)
