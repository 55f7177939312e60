"""`gridshift profile` end to end against the local stub server, with a replayed power trace."""

from __future__ import annotations

import argparse
import io
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from rich.console import Console

from gridshift.api import GPUProfile
from gridshift.api.common import DNS_SUBDOMAIN
from gridshift.cli import profile as profile_cli
from gridshift.cli.main import UsageError
from gridshift.profiling import LevelMeasurement, LoadSettings
from tests.nvml.test_nvml_adapter import stand_in_pynvml
from tests.profiling.openai_stub import OpenAIStub, StubBehaviour
from tests.profiling.test_load_statistics import closed_loop


def parse(argv: list[str]) -> argparse.Namespace:
    # Until the lead registers the module in SUBCOMMAND_MODULES, build the same parser locally.
    parser = argparse.ArgumentParser(prog="gridshift")
    subparsers = parser.add_subparsers(dest="command", required=True)
    profile_cli.register(subparsers)
    return parser.parse_args(["profile", *argv])


@pytest.fixture
def power_trace(tmp_path: Path) -> Path:
    path = tmp_path / "trace.csv"
    rows = ["t_s,power_w"] + [f"{i * 0.02:.2f},{300 + (i % 5) * 10}" for i in range(50)]
    path.write_text("\n".join(rows) + "\n")
    return path


FAST = ["--warmup-seconds", "0.3", "--measure-seconds", "1.0", "--idle-seconds", "0.3", "--quiet"]


def test_profile_writes_a_valid_gpu_profile(tmp_path: Path, power_trace: Path) -> None:
    behaviour = StubBehaviour(served_model="org/stub-8b", base_step_ms=6.0, step_ms_per_running=3.0)
    out = tmp_path / "profile.yaml"
    with OpenAIStub(behaviour) as stub:
        args = parse(
            ["--endpoint", stub.url, "--concurrency", "1,2,4", "--prompt-tokens", "32", "--output-tokens", "64",
             "--power-trace", str(power_trace), "--gpu-type", "NVIDIA-H100-80GB-HBM3", "--output", str(out), *FAST]
        )  # fmt: skip
        assert profile_cli.run(args) == 0
    profile = GPUProfile.model_validate(yaml.safe_load(out.read_text()))
    spec = profile.spec
    assert profile.metadata["name"] == "stub-8b-nvidia-h100-80gb-hbm3-tp1"
    assert (spec.model, spec.gpu_type, spec.gpus_per_replica) == ("org/stub-8b", "NVIDIA-H100-80GB-HBM3", 1)
    assert [p.batch for p in spec.points] == [1, 2, 4]
    steps = [p.step_time_ms for p in spec.points]
    assert steps == sorted(steps) and steps[0] >= 6.0
    # The replayed trace averages 320 W.
    assert all(p.power_watts == pytest.approx(320.0, rel=0.05) for p in spec.points)
    assert spec.idle_power_watts == pytest.approx(320.0, rel=0.1)
    assert spec.source.method == "Measured" and "replayed power trace" in spec.source.description
    assert all(r["model"] == "org/stub-8b" and len(r["prompt"]) == 32 for r in behaviour.requests)


def test_the_batch_is_what_the_server_ran_not_what_the_client_kept_in_flight(
    power_trace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found in review: with vLLM's --max-num-seqs 4 at concurrency 16 the profile said batch 16 at the step
    # time of batch 4 (the client's requests in flight, queued ones included), and its fitted model promised
    # 3.7x the throughput measured. The stub serves 2 at once here and queues the rest.
    behaviour = StubBehaviour(base_step_ms=6.0, step_ms_per_running=1.0, max_running=2)
    with OpenAIStub(behaviour) as stub:
        args = parse(
            ["--endpoint", stub.url, "--served-model", "stub-model", "--concurrency", "1,2,8", "--prompt-tokens",
             "8", "--output-tokens", "64", "--power-trace", str(power_trace), "--gpu-type", "NVIDIA-L40S",
             "--name", "m-l40s", *[flag for flag in FAST if flag != "--quiet"]]
        )  # fmt: skip
        assert profile_cli.run(args) == 0
    out = capsys.readouterr()
    err = " ".join(out.err.split())  # as rich wrapped it
    points = GPUProfile.model_validate(yaml.safe_load(out.out)).spec.points
    assert [p.batch for p in points] == [1, 2, 2]
    # The point's batch over its step time is the throughput the server gave (the old point gave 4x it).
    tokens_per_s = [float(t.replace(",", "")) for t in re.findall(r"([\d,]+) tok/s", err)]
    assert len(tokens_per_s) == 3
    assert points[2].batch * 1000.0 / points[2].step_time_ms == pytest.approx(tokens_per_s[2], rel=0.3)
    assert re.search(r"concurrency 8: batch [12]\.\d of [5-8]\.\d requests in flight \(the server queued", err), err
    assert "the server ran a smaller batch than the concurrency at 8:" in err


def test_a_server_that_prefilled_and_queued_nothing_is_not_said_to_have_queued() -> None:
    # Found in review: any batch below the concurrency was said to be queued, so 32 clients all decoding at once
    # (0.3 s TTFT, then 256 tokens of 25 ms) read 'batch 30.5 of 32.0 requests in flight (the server queued or
    # prefilled the rest', and the summary that more concurrency there added latency, not throughput.
    levels = [LevelMeasurement(c, closed_loop(c, 0.0), energy_joules=1.0, power_watts=1.0) for c in (1, 32)]
    console = Console(file=io.StringIO(), record=True, width=200)
    observer = profile_cli._RichObserver(console, None)  # type: ignore[arg-type]
    for level in levels:
        observer.level_finished(level)
    profile_cli._print_summary(console, SimpleNamespace(metadata={"name": "p"}), [], levels)  # type: ignore[arg-type]
    text = console.export_text()
    assert re.search(r"concurrency 32: batch 30\.[56], ITL", text), text
    assert "queued" not in text and "throughput" not in text, text
    # One level alone cannot tell prefill from a queue.
    assert profile_cli.queued_note(levels[1]) == ""
    # The same clients against 8 slots (vLLM's --max-num-seqs 8) queued 24 of them.
    queued = LevelMeasurement(32, closed_loop(32, 3 * (0.3 + 255 * 0.025)), energy_joules=1.0, power_watts=1.0)
    note = profile_cli.queued_note(queued, levels[0])
    assert note.startswith(" of 32.0 requests in flight (the server queued about 24."), note


def test_the_summary_names_both_energy_per_token_figures() -> None:
    # Found in review: the level's line (energy / tokens) and the summary's one 'J/token' column (power x median
    # step / batch, no prefill stalls) differed up to 1.7x for the same level, and nothing said which was which.
    from gridshift.profiling import FitCheck, profile_points

    levels = [LevelMeasurement(c, closed_loop(c, 0.0), energy_joules=6000.0, power_watts=100.0) for c in (1, 8)]
    checks = [FitCheck(p, p.step_time_ms) for p in profile_points(levels, 1000.0)]
    console = Console(file=io.StringIO(), record=True, width=250)
    profile_cli._print_summary(console, SimpleNamespace(metadata={"name": "p"}), checks, levels)  # type: ignore[arg-type]
    text = console.export_text()
    assert "J/token measured" in text and "J/token at median step" in text, text
    row = next(line for line in text.splitlines() if line.strip("│ ").startswith("8 "))
    measured, at_step = (float(cell) for cell in row.strip("│ ").split("│")[-2:])
    assert measured == pytest.approx(levels[1].joules_per_token, abs=0.001)  # 6000 J over the window's tokens
    assert at_step == pytest.approx(100.0 * checks[1].point.step_time_ms / 1000.0 / 8, abs=0.001)


def test_a_level_the_server_fails_keeps_the_levels_measured_before_it(
    tmp_path: Path, power_trace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found in review: vLLM failing at concurrency 64 (out of memory, HTTP 500) after 1-32 were measured printed
    # one line and no profile, and with --quiet the levels' lines were gone too. The stub fails from 4 at once.
    out = tmp_path / "p.yaml"
    with OpenAIStub(StubBehaviour(base_step_ms=6.0, step_ms_per_running=1.0, fail_at_running=4)) as stub:
        args = parse(
            ["--endpoint", stub.url, "--served-model", "stub-model", "--concurrency", "1,2,8", "--prompt-tokens", "8",
             "--output-tokens", "64", "--power-trace", str(power_trace), "--gpu-type", "NVIDIA-L40S", "-o", str(out),
             *FAST]
        )  # fmt: skip
        assert profile_cli.run(args) == 3  # PARTIAL_SWEEP_EXIT
    err = " ".join(capsys.readouterr().err.split())
    assert "the sweep stopped at concurrency 8, which failed: POST " in err and "HTTP 500" in err, err
    assert "the profile holds concurrency 1,2 only" in err, err
    spec = GPUProfile.model_validate(yaml.safe_load(out.read_text())).spec
    assert [p.batch for p in spec.points] == [1, 2]
    assert "the sweep ended at concurrency 8, which failed" in spec.source.description


def test_a_server_that_ran_one_batch_at_every_level_is_named_with_the_measurements(
    power_trace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found in review: --max-num-seqs 2 at concurrency 4 and 8 ran batch 2 at both, and the sweep was refused
    # afterwards with "points: need at least two distinct batch sizes", naming no cause and (--quiet) losing
    # what was measured.
    with OpenAIStub(StubBehaviour(base_step_ms=6.0, step_ms_per_running=1.0, max_running=2)) as stub:
        args = parse(
            ["--endpoint", stub.url, "--served-model", "stub-model", "--concurrency", "4,8", "--prompt-tokens", "8",
             "--output-tokens", "64", "--power-trace", str(power_trace), "--gpu-type", "NVIDIA-L40S", *FAST]
        )  # fmt: skip
        assert profile_cli.run(args) == 1
    out = capsys.readouterr()
    assert out.out == ""
    assert "the server ran batch 2 at every level (concurrency 4, 8): it decodes about 2 sequences" in out.err
    assert "add concurrency levels below 2, e.g. 1; measured:" in out.err, out.err
    assert re.search(r"^  concurrency 4: batch [12]\.\d", out.err, re.MULTILINE), out.err
    assert re.search(r"^  concurrency 8: batch [12]\.\d", out.err, re.MULTILINE), out.err


def test_an_endpoint_ending_in_v1_is_taken_as_the_server(power_trace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Found in review: the OpenAI client's base_url, http://host:8000/v1, was asked /v1/v1/models, and with
    # --served-model the sweep failed only after the idle phase.
    with OpenAIStub() as stub:
        args = parse(
            ["--endpoint", stub.url + "/v1/", "--concurrency", "1,2", "--prompt-tokens", "8", "--output-tokens", "64",
             "--power-trace", str(power_trace), "--gpu-type", "NVIDIA-L40S",
             *[flag for flag in FAST if flag != "--quiet"]]
        )  # fmt: skip
        assert profile_cli.run(args) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert f"--endpoint ends in /v1, which gridshift adds to each path: using {stub.url}" in err, err
    assert profile_cli.endpoint_base("http://vllm:8000/api/v1?key=k") == "http://vllm:8000/api?key=k"
    assert profile_cli.endpoint_base("http://vllm:8000/v10") == "http://vllm:8000/v10"


def test_profile_prints_yaml_to_stdout_without_output(power_trace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with OpenAIStub() as stub:
        args = parse(
            ["--endpoint", stub.url, "--served-model", "stub-model", "--model", "org/m", "--concurrency", "1,3",
             "--prompt-tokens", "8", "--output-tokens", "64", "--power-trace", str(power_trace),
             "--gpu-type", "NVIDIA-L40S", "--gpus-per-replica", "2", "--name", "m-l40s", *FAST]
        )  # fmt: skip
        assert profile_cli.run(args) == 0
    document = yaml.safe_load(capsys.readouterr().out)
    profile = GPUProfile.model_validate(document)
    assert profile.metadata["name"] == "m-l40s"
    assert profile.spec.gpus_per_replica == 2
    # Two replayed GPUs: twice the trace's power.
    assert profile.spec.points[0].power_watts == pytest.approx(640.0, rel=0.05)


def test_a_server_that_refuses_requests_fails_the_run(power_trace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with OpenAIStub() as stub:
        args = parse(
            ["--endpoint", stub.url, "--served-model", "not-served", "--concurrency", "1,2",
             "--power-trace", str(power_trace), "--gpu-type", "X", *FAST]
        )  # fmt: skip
        assert profile_cli.run(args) == 1
    assert "HTTP 404" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--prometheus", "http://p:9090", "--gpu-type", "X"], "--prometheus needs --selector"),
        (["--selector", 'pod="a"'], "--selector is only used with --prometheus"),
        (["--power-trace", "/nonexistent.csv", "--gpu-type", "X"], "--power-trace /nonexistent.csv: no such file"),
        (["--prometheus", "http://p:9090", "--selector", 'pod="a"'], "--gpu-type is required"),
        (["--trace", "/nonexistent.csv"], "--trace /nonexistent.csv: no such file"),
        # Found in review: a folder, or /dev/null, was "no such file" too.
        (["--trace", "/tmp"], "--trace /tmp: not a regular file"),
        (["--power-trace", "/dev/null", "--gpu-type", "X"], "--power-trace /dev/null: not a regular file"),
        (["--gpus-per-replica", "3"], "--gpus-per-replica must be 1, 2, 4 or 8"),
        (["--trace-limit", "0"], "--trace-limit must be >= 1"),
        # Found in review: each of these failed after the sweep, or measured the wrong GPUs.
        (["--max-output-tokens", "1"], "--max-output-tokens must be >= 2"),
        (["--gpus", "0,1,2,3", "--gpus-per-replica", "2"], "--gpus has 4 indices but --gpus-per-replica is 2"),
        (
            ["--prometheus", "http://p:9090", "--selector", 'pod="a"', "--gpu-type", "X"],
            "--gpus-per-replica is required with --prometheus",
        ),
        (
            [
                "--prometheus",
                "http://p:9090",
                "--selector",
                'pod="a"',
                "--gpu-type",
                "X",
                "--gpus-per-replica",
                "1",
                "--scrape-wait-seconds",
                "-1",
            ],
            "--scrape-wait-seconds must be >= 0",
        ),
        # Found in review: a phase shorter than two of the shipped ServiceMonitor's 15 s scrapes read nothing, and
        # the error, after the phase, blamed --selector.
        (
            [
                "--prometheus",
                "http://p:9090",
                "--selector",
                'pod="a"',
                "--gpu-type",
                "X",
                "--gpus-per-replica",
                "1",
                "--idle-seconds",
                "10",
            ],
            "--idle-seconds 10 is too short for --prometheus: give at least 30 ",
        ),
        (
            [
                "--prometheus",
                "http://p:9090",
                "--selector",
                'pod="a"',
                "--gpu-type",
                "X",
                "--gpus-per-replica",
                "1",
                "--measure-seconds",
                "20",
            ],
            "--measure-seconds 20 is too short for --prometheus: give at least 30, two scrape intervals",
        ),
        # Checked before the sweep (review: these failed after it, losing the measurement).
        (["--name", "Bad_Name"], "--name 'Bad_Name' is not a Kubernetes object name"),
        (["--output", "/nonexistent/dir/p.yaml"], "--output /nonexistent/dir/p.yaml: /nonexistent/dir is not a dir"),
        (["--output", "/tmp"], "--output /tmp is a directory"),
    ],
)
def test_bad_flags_are_refused_naming_the_flag(argv: list[str], message: str) -> None:
    args = parse(["--endpoint", "http://127.0.0.1:1", "--served-model", "m", *argv])
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        profile_cli.run(args)


def test_the_idle_phase_read_through_prometheus_spans_two_scrapes_by_default() -> None:
    # LoadSettings' 10 s idle phase (for NVML) read through Prometheus held one 15 s scrape or none (review).
    base = ["--endpoint", "http://127.0.0.1:1", "--served-model", "m"]
    prometheus = [
        "--prometheus",
        "http://p:9090",
        "--selector",
        'pod="a"',
        "--gpu-type",
        "X",
        "--gpus-per-replica",
        "1",
    ]
    assert profile_cli._load_settings(parse([*base, *prometheus]), "m").idle_seconds == 30.0
    assert profile_cli._load_settings(parse([*base, *prometheus, "--idle-seconds", "0"]), "m").idle_seconds == 0.0
    assert profile_cli._load_settings(parse(base), "m").idle_seconds == 10.0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--gpu-type", "NVIDIA H100 80GB HBM3"],
            "--gpu-type 'NVIDIA H100 80GB HBM3': String should match pattern "
            "'^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$'; "
            "give the node label nvidia.com/gpu.product, spaces as '-': 'NVIDIA-H100-80GB-HBM3'",
        ),
        (["--gpu-type", "X" * 64], "--gpu-type 'XXX"),
        (["--model", "org/" + "m" * 253], "--model 'org/mmm"),
        (["--concurrency", "8"], "--concurrency needs at least two levels, e.g. 1,8, got 8"),
    ],
)
def test_what_the_profile_refuses_is_refused_before_the_sweep_naming_the_flag(
    argv: list[str], message: str, power_trace: Path
) -> None:
    # Found in review: each passed the flag checks, was measured for minutes, and then failed to make a profile
    # (naming spec.gpuType or spec.model, not the flag; a single level cannot be fitted). Port 1 answers nothing.
    args = parse(["--endpoint", "http://127.0.0.1:1", "--served-model", "m", "--power-trace", str(power_trace),
                  "--gpu-type", "NVIDIA-L40S", *argv])  # fmt: skip
    with pytest.raises(UsageError) as caught:
        profile_cli.run(args)
    assert str(caught.value).startswith(message), str(caught.value)


def test_a_served_model_name_too_long_for_the_profile_is_refused_before_the_sweep(power_trace: Path) -> None:
    with OpenAIStub(StubBehaviour(served_model="org/" + "m" * 253)) as stub:
        args = parse(["--endpoint", stub.url, "--power-trace", str(power_trace), "--gpu-type", "X", *FAST])
        with pytest.raises(UsageError, match=r"the served model's name \(pass --model\) 'org/m+'\.\.\.: String should"):
            profile_cli.run(args)
    assert not stub.behaviour.requests  # refused before any request was streamed


def test_bad_load_settings_are_refused_naming_the_setting(power_trace: Path) -> None:
    args = parse(
        ["--endpoint", "vllm:8000", "--served-model", "m", "--power-trace", str(power_trace), "--gpu-type", "X"]
    )
    with pytest.raises(UsageError, match="--endpoint must be an http"):
        profile_cli.run(args)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--measure-seconds", "-1"], "--measure-seconds must be > 0 s, got -1.0"),
        (["--output-tokens", "1"], "--output-tokens must be >= 2 to measure inter-token latency"),
        (["--prompt-tokens", "0"], "--prompt-tokens must be >= 1, got 0"),
        (["--idle-seconds", "-5"], "--idle-seconds must be >= 0 s"),
        (["--served-model", ""], "--served-model must not be empty"),
    ],
)
def test_load_flags_are_checked_before_the_endpoint_is_asked_for_its_model(argv: list[str], message: str) -> None:
    # Found in review: without --served-model these waited for the endpoint ("cannot list models"), and then
    # named LoadSettings' field (measure_seconds) rather than the flag. Port 1 answers nothing.
    args = parse(["--endpoint", "http://127.0.0.1:1", *argv])
    with pytest.raises(UsageError) as caught:
        profile_cli.run(args)
    assert str(caught.value).startswith(message)


def test_without_nvml_the_error_says_what_to_do() -> None:
    args = parse(["--endpoint", "http://127.0.0.1:1", "--served-model", "m"])
    try:
        import pynvml

        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
        pytest.skip("this machine has NVML")
    except pynvml.NVMLError:
        pass
    with pytest.raises(UsageError, match=r"NVML could not start.*--prometheus URL"):
        profile_cli.run(args)


def test_concurrency_must_be_positive_integers() -> None:
    with pytest.raises(SystemExit):
        parse(["--endpoint", "http://x", "--concurrency", "1,0"])


def test_the_default_name_is_a_dns_subdomain() -> None:
    assert profile_cli.default_name("meta-llama/Meta-Llama-3-8B-Instruct", "NVIDIA-H100-80GB-HBM3", 1) == (
        "meta-llama-3-8b-instruct-nvidia-h100-80gb-hbm3-tp1"
    )
    # Found in review: a model served from a folder (vLLM names it by the path) was named after nothing but
    # its GPU, so profiling a second model replaced the first one's profile; and a dot before a dash, or a
    # name cut at a dash, was no Kubernetes name.
    h100 = "NVIDIA-H100-80GB-HBM3"
    assert profile_cli.default_name("/models/Meta-Llama-3-8B/", h100, 1) == "meta-llama-3-8b-nvidia-h100-80gb-hbm3-tp1"
    assert profile_cli.default_name("/models/Qwen2.5-7B/", h100, 1) == "qwen2.5-7b-nvidia-h100-80gb-hbm3-tp1"
    for model in ("org/model.", "org/" + "a" * 252, "org/a-.-b", "x/" + "b" * 220 + "-" + "c" * 40):
        name = profile_cli.default_name(model, h100, 1)
        assert len(name) <= 253 and re.fullmatch(DNS_SUBDOMAIN, name), name


def test_sampling_more_gpus_than_the_replica_has_is_refused_before_the_sweep(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Found in review: NVML sampled all 8 GPUs of the node for a 1-GPU replica (2,400 W in the profile).
    monkeypatch.setitem(sys.modules, "pynvml", stand_in_pynvml(names=("NVIDIA H100 80GB HBM3",) * 8))
    args = parse(["--endpoint", "http://127.0.0.1:1", "--served-model", "m", "--gpus-per-replica", "1"])
    with pytest.raises(UsageError, match="sampling 8 GPU\\(s\\) for a replica of 1: pass --gpus"):
        profile_cli.run(args)


def test_a_window_without_two_tokens_of_a_stream_is_an_error_not_a_traceback(
    power_trace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found in review: summarise_window's ValueError escaped `run` as a traceback after the whole sweep.
    with OpenAIStub(StubBehaviour(base_step_ms=400.0)) as stub:
        args = parse(
            ["--endpoint", stub.url, "--served-model", "stub-model", "--concurrency", "1,2", "--prompt-tokens", "8",
             "--output-tokens", "2", "--power-trace", str(power_trace), "--gpu-type", "X",
             "--warmup-seconds", "0", "--measure-seconds", "0.2", "--idle-seconds", "0", "--quiet"]
        )  # fmt: skip
        assert profile_cli.run(args) == 1
    assert "at concurrency 1: no two consecutive tokens" in capsys.readouterr().err


def test_an_error_body_that_echoes_the_query_does_not_show_it(
    power_trace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found in review: the URL shown hid the query, and the body quoted after it echoed `?api_key=...`.
    with OpenAIStub() as stub:
        args = parse(
            ["--endpoint", f"{stub.url}/?api_key=SECRETKEY123", "--served-model", "stub-model", "--concurrency", "1,2",
             "--power-trace", str(power_trace), "--gpu-type", "X", *FAST]
        )  # fmt: skip
        assert profile_cli.run(args) == 1
    err = capsys.readouterr().err
    assert "HTTP 404" in err and "SECRETKEY123" not in err, err
    assert profile_cli.node_label_of("NVIDIA H100 80GB HBM3") == "NVIDIA-H100-80GB-HBM3"
    assert profile_cli.node_label_of("NVIDIA H200") == "NVIDIA-H200"


@pytest.mark.parametrize(
    ("nvml", "label"),
    [
        ("NVIDIA H100 PCIe", "NVIDIA-H100-PCIe"),
        ("NVIDIA H100 NVL", "NVIDIA-H100-NVL"),
        ("NVIDIA A100-PCIE-40GB", "NVIDIA-A100-PCIE-40GB"),
        ("NVIDIA A100 80GB PCIe", "NVIDIA-A100-80GB-PCIe"),
        ("NVIDIA GH200 480GB", "NVIDIA-GH200-480GB"),
        ("NVIDIA A100-SXM4-40GB", "NVIDIA-A100-SXM4-40GB"),
        ("NVIDIA L4", "NVIDIA-L4"),
        ("Tesla T4", "Tesla-T4"),
    ],
)
def test_a_profile_is_filed_under_the_label_gpu_feature_discovery_gives_its_gpu(nvml: str, label: str) -> None:
    # Found in review: PCIe, NVL and GH200 GPUs were filed under another product's label (SXM H100, H200), so
    # their slower measurements priced the SXM nodes and their own nodes had no profile.
    assert profile_cli.node_label_of(nvml) == label


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [("http://[::1", "--endpoint is not a valid URL"), ("ftp://vllm:8000", "--endpoint must be an http")],
)
def test_a_bad_endpoint_is_refused_before_anything_is_asked_of_it(endpoint: str, message: str) -> None:
    # An unparsable URL was an httpx.InvalidURL traceback (review).
    with pytest.raises(UsageError, match=message):
        profile_cli.run(parse(["--endpoint", endpoint]))


def test_credentials_in_the_endpoint_reach_neither_the_profile_nor_an_error(
    power_trace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found in review: the profile's description (stored in the cluster by --apply) quoted user:password@, and
    # the list-models error the whole URL with its query (and /v1/models appended after the query).
    with OpenAIStub(StubBehaviour(served_model="org/stub-8b")) as stub:
        secret_url = stub.url.replace("http://", "http://alice:s3cr3t-password@")
        args = parse(
            ["--endpoint", secret_url, "--concurrency", "1,2", "--prompt-tokens", "8", "--output-tokens", "64",
             "--power-trace", str(power_trace), "--gpu-type", "NVIDIA-L40S", *FAST]
        )  # fmt: skip
        assert profile_cli.run(args) == 0
        out = capsys.readouterr()
        assert "s3cr3t-password" not in out.out + out.err
        assert GPUProfile.model_validate(yaml.safe_load(out.out)).spec.source.description.startswith(
            "gridshift profile of org/stub-8b at http://REDACTED@"
        )
        with pytest.raises(UsageError) as refused:
            profile_cli.run(parse(["--endpoint", secret_url + "/nowhere?api_key=s3cr3t-key", "--gpu-type", "X"]))
    assert "s3cr3t" not in str(refused.value)
    assert "/nowhere/v1/models?<query omitted>" in str(refused.value)


def test_a_failed_apply_or_write_after_the_sweep_still_gives_the_yaml(
    power_trace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(profile: GPUProfile) -> str:
        raise UsageError("--apply: the API server refused gpuprofile x: Forbidden")

    monkeypatch.setattr(profile_cli, "_kube_api", lambda: None)
    monkeypatch.setattr(profile_cli, "apply_profile", refuse)
    with OpenAIStub() as stub:
        args = parse(
            ["--endpoint", stub.url, "--served-model", "stub-model", "--model", "org/m", "--concurrency", "1,2",
             "--prompt-tokens", "8", "--output-tokens", "64", "--power-trace", str(power_trace),
             "--gpu-type", "NVIDIA-L40S", "--name", "m-l40s", "--apply", *FAST]
        )  # fmt: skip
        assert profile_cli.run(args) == 1
    out = capsys.readouterr()
    assert "refused gpuprofile" in out.err
    assert GPUProfile.model_validate(yaml.safe_load(out.out)).metadata["name"] == "m-l40s"

    class Unwritable(type(tmp_path)):  # type: ignore[misc]
        def write_text(self, *_: object, **__: object) -> int:
            raise OSError(28, "No space left on device")

    text = "kind: GPUProfile\n"
    namespace = argparse.Namespace(output=Unwritable(tmp_path / "p.yaml"), apply=False)
    assert profile_cli._deliver(namespace, Console(stderr=True), None, text) == 1  # type: ignore[arg-type]
    out = capsys.readouterr()
    assert out.out == text and "No space left on device" in out.err


def test_a_gpu_index_given_twice_is_refused_naming_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse(["--endpoint", "http://127.0.0.1:1", "--served-model", "m", "--gpus", "0,1,0"])
    assert "argument --gpus: expected each value once, got '0,1,0' (repeated: [0])" in capsys.readouterr().err
    assert parse(["--endpoint", "http://127.0.0.1:1", "--served-model", "m", "--gpus", "1,0"]).gpus == (1, 0)


def test_an_error_body_that_echoes_a_key_decoded_does_not_show_it() -> None:
    # Self-review: only the query as sent was hidden; a server echoing the key's value, decoded, showed it.
    import asyncio
    import time

    import httpx

    from gridshift.profiling import EndpointError, LoadSettings, RequestShape, StreamRecord
    from gridshift.profiling.load import stream_request
    from gridshift.profiling.workload import PromptMaker

    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, text=f"invalid api key {request.url.params['api_key']!r}")

    settings = LoadSettings(endpoint="http://vllm:8000/?api_key=SECRET%2FKEY123", served_model="m")
    record = StreamRecord(shape=RequestShape(8, 8), started_at=0.0)

    async def send() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
            await stream_request(client, settings, record, PromptMaker(1), time.monotonic)

    with pytest.raises(EndpointError, match="HTTP 401") as refused:
        asyncio.run(send())
    assert "SECRET" not in str(refused.value), str(refused.value)


def test_a_prometheus_host_idna_cannot_encode_is_a_meter_error() -> None:
    # Self-review: the resolver's UnicodeError escaped `gridshift profile` as a traceback.
    from gridshift.profiling import EnergyMeterError, PrometheusEnergyMeter, PrometheusEnergySettings

    meter = PrometheusEnergyMeter(
        PrometheusEnergySettings(url="http://a..b:9090", selector='pod="x"', scrape_wait_seconds=0)
    )
    meter.begin_phase("idle")
    with pytest.raises(EnergyMeterError, match="unreachable"):
        meter.end_phase()


def test_an_upper_case_scheme_is_an_http_url_and_a_refused_endpoint_shows_no_credential(
    power_trace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found in review: `HTTP://ops:<password>@host/?api_key=<key>` passed the flag check (httpx lowercases the
    # scheme), then LoadSettings refused it case-sensitively, quoting the password and the key.
    with OpenAIStub(StubBehaviour(served_model="org/stub-8b")) as stub:
        upper = stub.url.replace("http://", "HTTP://ops:S3cretPass@")  # (the stub routes no query string)
        args = parse(
            ["--endpoint", upper, "--served-model", "org/stub-8b", "--concurrency", "1,2", "--prompt-tokens", "8",
             "--output-tokens", "64", "--power-trace", str(power_trace), "--gpu-type", "NVIDIA-L40S", *FAST]
        )  # fmt: skip
        assert profile_cli.run(args) == 0
    out = capsys.readouterr()
    assert "S3cretPass" not in out.out + out.err
    with pytest.raises(ValueError, match="must be an http") as refused:
        LoadSettings(endpoint="ftp://ops:S3cretPass@vllm:8000/?api_key=SECRETKEY123", served_model="m")
    assert "S3cretPass" not in str(refused.value) and "SECRETKEY123" not in str(refused.value), str(refused.value)


def _streamed_error(line: str, endpoint: str) -> str:
    """The EndpointError's text when the server streams `line` back to a request made to `endpoint`."""
    import asyncio
    import time

    import httpx

    from gridshift.profiling import EndpointError, RequestShape, StreamRecord
    from gridshift.profiling.load import stream_request
    from gridshift.profiling.workload import PromptMaker

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=line + "\n\n", headers={"Content-Type": "text/event-stream"})

    settings = LoadSettings(endpoint=endpoint, served_model="m")
    record = StreamRecord(shape=RequestShape(8, 8), started_at=0.0)

    async def send() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
            await stream_request(client, settings, record, PromptMaker(1), time.monotonic)

    with pytest.raises(EndpointError, match="streamed") as refused:
        asyncio.run(send())
    return str(refused.value)


@pytest.mark.parametrize(
    "line",
    [
        'data: {"error": {"message": "no such route /v1/completions?api_key=SECRET%2FKEY123 (SECRET/KEY123)"}}',
        "data: not json, asked with key SECRET/KEY123 by user S3cretPass",
    ],
)
def test_a_streamed_error_or_bad_line_that_echoes_a_credential_does_not_show_it(line: str) -> None:
    # Found in review: only a refusal's body was filtered; a streamed error chunk or a line that is not JSON was
    # quoted whole, and a server echoing the path or a key's value showed it.
    said = _streamed_error(line, "http://ops:S3cretPass@vllm:8000/?api_key=SECRET%2FKEY123")
    assert "SECRET" not in said and "S3cretPass" not in said, said


def test_a_streamed_error_keeps_the_words_a_short_query_value_shares() -> None:
    # Review: with a query value of 4 characters hidden, "?max_tokens=1000&stream=true" turned the member's
    # "max_tokens 1000 exceeds the limit 1000" into "max_tokens <query omitted> exceeds ...": values shorter than
    # gridshift.redaction's MIN_SECRET_LENGTH are words, not secrets, as in the operator's logs.
    line = 'data: {"error": {"message": "max_tokens 1000 exceeds the limit 1000", "retryable": true}}'
    said = _streamed_error(line, "http://vllm:8000/?max_tokens=1000&stream=true")
    assert "max_tokens 1000 exceeds the limit 1000" in said, said


def test_an_empty_gpu_type_is_said_to_be_empty_not_missing(power_trace: Path) -> None:
    # Found in review: `--gpu-type '' --power-trace ...` read "--gpu-type is required", though it was given.
    def args_of(trace: Path) -> list[str]:
        return ["--endpoint", "http://127.0.0.1:1", "--served-model", "m", "--power-trace", str(trace)]

    with pytest.raises(UsageError, match="--gpu-type is required with"):
        profile_cli.run(parse(args_of(power_trace)))
    with pytest.raises(UsageError, match="--gpu-type is empty: it is required with --prometheus or --power-trace"):
        profile_cli.run(parse([*args_of(power_trace), "--gpu-type", ""]))
