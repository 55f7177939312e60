"""The PromQL builders evaluated by the real Prometheus engine (`promtool test rules`).

Input series have the label sets of the recorded scrapes (vLLM V1 names and `engine`/`model_name`
labels; DCGM `gpu`/`UUID`/`modelName` with the pod mapping) plus the target labels Prometheus
adds. Expected values are worked out by hand in the comments. Skipped where promtool is absent.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from gridshift.signals.labels import DeploymentRef, LabelScheme, SelectBy
from gridshift.signals.promql import GroupScope, QueryWindows, Signal, build_grouped_queries, build_queries

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool (Prometheus) is not installed")

NS = "gridshift-workloads"
MODEL = "Qwen/Qwen2.5-0.5B-Instruct"
LLAMA = DeploymentRef("prod", "llama", NS, MODEL)
LEGACY = DeploymentRef("prod", "legacy", NS, "legacy-model")
BOTH = DeploymentRef("prod", "both", NS, "both-model")


def vllm(metric: str, pod: str, deployment: str, model: str, **extra: str) -> str:
    labels = {
        "engine": "0",
        "model_name": model,
        "namespace": NS,
        "pod": pod,
        "gridshift_dev_deployment": deployment,
        **extra,
    }
    return metric + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def dcgm(metric: str, gpu: int, namespace: str, pod: str) -> str:
    return (
        f'{metric}{{gpu="{gpu}",UUID="GPU-{gpu}",device="nvidia{gpu}",modelName="NVIDIA H100 80GB HBM3",'
        f'Hostname="gpu-node-1",container="main",namespace="{namespace}",pod="{pod}"}}'
    )


def histogram(name: str, pod: str, deployment: str, model: str, per_minute: dict[str, int]) -> list[dict[str, str]]:
    return [
        {"series": vllm(f"{name}_bucket", pod, deployment, model, le=le), "values": f"0+{n}x20"}
        for le, n in per_minute.items()
    ]


def input_series() -> list[dict[str, str]]:
    series = []
    for pod, success_per_min, tokens_per_min, running, waiting, kv, prompts in (
        # vLLM's token-histogram edges end at the replica's --max-model-len: llama-a's (an L4's 27,632) at
        # 20,000, llama-b's (an H100's 131,072) at 100,000. Per minute: 9 prompts of 500 tokens on llama-a,
        # 1 of 30,000 on llama-b; every output within 200 tokens.
        ("llama-a", {"stop": 60, "length": 30}, 6000, 3, 1, 0.2, {"500.0": 9, "20000.0": 9, "+Inf": 9}),
        (
            "llama-b",
            {"stop": 120},
            12000,
            5,
            2,
            0.6,
            {"500.0": 0, "20000.0": 0, "50000.0": 1, "100000.0": 1, "+Inf": 1},
        ),
    ):
        for reason, n in success_per_min.items():
            series.append(
                {
                    "series": vllm("vllm:request_success_total", pod, "prod.llama", MODEL, finished_reason=reason),
                    "values": f"0+{n}x20",
                }
            )
        series += [
            {
                "series": vllm("vllm:generation_tokens_total", pod, "prod.llama", MODEL),
                "values": f"0+{tokens_per_min}x20",
            },
            {"series": vllm("vllm:prompt_tokens_total", pod, "prod.llama", MODEL), "values": "0+3000x20"},
            {"series": vllm("vllm:num_requests_running", pod, "prod.llama", MODEL), "values": f"{running}x20"},
            {"series": vllm("vllm:num_requests_waiting", pod, "prod.llama", MODEL), "values": f"{waiting}x20"},
            {"series": vllm("vllm:kv_cache_usage_perc", pod, "prod.llama", MODEL), "values": f"{kv}x20"},
        ]
        series += histogram(
            "vllm:time_to_first_token_seconds", pod, "prod.llama", MODEL, {"0.1": 25, "0.5": 50, "+Inf": 50}
        )
        series += histogram(
            "vllm:inter_token_latency_seconds", pod, "prod.llama", MODEL, {"0.01": 45, "0.05": 50, "+Inf": 50}
        )
        series += histogram("vllm:request_prompt_tokens", pod, "prod.llama", MODEL, prompts)
        outputs = {"200.0": prompts["+Inf"], "+Inf": prompts["+Inf"]}
        series += histogram("vllm:request_generation_tokens", pod, "prod.llama", MODEL, outputs)
    # llama-c served until minute 12 (a scale-down): its 8,000 tokens/min and its GPU 5 (200 W) are in the
    # energy window of the query at 20 m (from 5 m), the tokens and the energy over the same 7.5 minutes
    # (samples at 6..12 m, extrapolated a full minute back to 5 m and half a minute past 12 m).
    series += [
        {"series": vllm("vllm:generation_tokens_total", "llama-c", "prod.llama", MODEL), "values": "0+8000x12"},
        {"series": vllm("vllm:num_requests_running", "llama-c", "prod.llama", MODEL), "values": "2x12"},
        {"series": dcgm("DCGM_FI_DEV_POWER_USAGE", 5, NS, "llama-c"), "values": "200x12"},
        {"series": dcgm("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", 5, NS, "llama-c"), "values": "0+12000000x12"},
    ]
    # llama-d's /metrics failed from minute 19 (it still serves): Prometheus marked its series stale at once, so
    # at 20 m it is not among the replicas reporting. llama-a runs a second engine (data parallel): still one pod.
    series += [
        {"series": vllm("vllm:num_requests_running", "llama-d", "prod.llama", MODEL), "values": "1x18 stale"},
        {"series": vllm("vllm:num_requests_running", "llama-a", "prod.llama", MODEL, engine="1"), "values": "0x20"},
    ]
    # Another deployment in the same namespace: must never leak into prod.llama's figures.
    series += [
        {
            "series": vllm("vllm:request_success_total", "other-a", "prod.other", "other", finished_reason="stop"),
            "values": "0+600x20",
        },
        {"series": vllm("vllm:num_requests_running", "other-a", "prod.other", "other"), "values": "7x20"},
    ]
    # A deployment on an older vLLM: only the pre-rename names.
    series += [
        {"series": vllm("vllm:num_requests_running", "legacy-a", "prod.legacy", "legacy-model"), "values": "1x20"},
        {"series": vllm("vllm:gpu_cache_usage_perc", "legacy-a", "prod.legacy", "legacy-model"), "values": "0.7x20"},
    ]
    series += histogram(
        "vllm:time_per_output_token_seconds",
        "legacy-a",
        "prod.legacy",
        "legacy-model",
        {"0.02": 10, "0.1": 20, "+Inf": 20},
    )
    # A server exporting both names (deprecation period) with different values: the new one wins.
    series += histogram(
        "vllm:inter_token_latency_seconds", "both-a", "prod.both", "both-model", {"0.01": 45, "0.05": 50, "+Inf": 50}
    )
    series += histogram(
        "vllm:time_per_output_token_seconds", "both-a", "prod.both", "both-model", {"0.02": 10, "0.1": 20, "+Inf": 20}
    )
    # DCGM: llama-a holds GPU 0 (300 W), llama-b GPUs 1 and 2 (250 + 150 W); GPU 3 is idle and carries
    # the exporter's own pod labels; GPU 4 belongs to the other deployment. Energy in mJ per minute.
    for gpu, namespace, pod, watts in (
        (0, NS, "llama-a", 300),
        (1, NS, "llama-b", 250),
        (2, NS, "llama-b", 150),
        (3, "gpu-operator", "nvidia-dcgm-exporter-wqqqn", 68),
        (4, NS, "other-a", 500),
    ):
        series.append({"series": dcgm("DCGM_FI_DEV_POWER_USAGE", gpu, namespace, pod), "values": f"{watts}x20"})
        series.append(
            {
                "series": dcgm("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", gpu, namespace, pod),
                "values": f"1000000+{watts * 60 * 1000}x20",
            }
        )
    return series


def expectations(scheme: LabelScheme) -> list[dict[str, object]]:
    queries = build_queries(scheme, LLAMA, QueryWindows())
    legacy = build_queries(scheme, LEGACY, QueryWindows())
    both = build_queries(scheme, BOTH, QueryWindows())
    at = "20m"

    def scalar(query: str, value: float) -> dict[str, object]:
        return {"expr": query, "eval_time": at, "exp_samples": [{"labels": "{}", "value": value}]}

    def micro(query: str, value: float) -> dict[str, object]:
        # promtool compares floats exactly; quantile interpolation is off by an ulp, so compare in µ-units.
        return scalar(f"round(({query}) * 1e6)", round(value * 1e6))

    return [
        scalar(queries[Signal.REQUEST_RATE], 3.5),  # (60 + 30 + 120) / 60 s
        scalar(queries[Signal.GENERATION_TOKEN_RATE], 300),  # (6000 + 12000) / 60 s
        scalar(queries[Signal.PROMPT_TOKEN_RATE], 100),  # 2 x 3000 / 60 s
        # 95th of 100 obs/min: 50 below 0.1 s, 50 in (0.1, 0.5]: 0.1 + 0.4 * (95 - 50) / 50 = 0.46 s
        micro(queries[Signal.TTFT_P95], 0.46),
        # 95th of 100: 90 below 10 ms, 10 in (10, 50] ms: 0.01 + 0.04 * (95 - 90) / 10 = 0.03 s
        micro(queries[Signal.ITL_P95], 0.03),
        scalar(queries[Signal.REQUESTS_RUNNING], 8),
        scalar(queries[Signal.REQUESTS_WAITING], 3),
        scalar(queries[Signal.REPLICAS_REPORTING], 2),  # llama-a and llama-b: llama-c stopped, llama-d stale
        scalar(queries[Signal.KV_CACHE_USAGE], 0.4),
        {
            "expr": queries[Signal.WATTS_PER_REPLICA],
            "eval_time": at,
            "exp_samples": [
                {"labels": f'{{namespace="{NS}", pod="llama-a"}}', "value": 300},
                {"labels": f'{{namespace="{NS}", pod="llama-b"}}', "value": 400},
            ],
        },
        # 700 W for 15 min = 630,000 J over 300 tok/s x 900 s = 270,000 tokens, and llama-c's 200 W and
        # 8,000 tokens/min for 7.5 min: 90,000 J and 60,000 tokens (it used to count its tokens only)
        micro(queries[Signal.JOULES_PER_TOKEN], (630000 + 90000) / (270000 + 60000)),
        # 95th of 20: 10 below 20 ms, 10 in (20, 100] ms: 0.02 + 0.08 * (19 - 10) / 10 = 0.092 s
        micro(legacy[Signal.ITL_P95], 0.092),
        scalar(legacy[Signal.KV_CACHE_USAGE], 0.7),
        micro(both[Signal.ITL_P95], 0.03),
        # Only the edges both pods have (llama-b's 50,000 and 100,000 would lack llama-a's 45 requests):
        # 5 minutes of 9 + 1 requests, 45 of them within 500 tokens.
        {
            "expr": queries[Signal.PROMPT_TOKENS_BUCKETS],
            "eval_time": at,
            "exp_samples": [{"labels": f'{{le="{le}"}}', "value": n} for le, n in TOKEN_EDGES.items()],
        },
        {
            "expr": queries[Signal.GENERATION_TOKENS_BUCKETS],
            "eval_time": at,
            "exp_samples": [{"labels": f'{{le="{le}"}}', "value": 50} for le in ("200.0", "+Inf")],
        },
    ]


TOKEN_EDGES = {"500.0": 45, "20000.0": 45, "+Inf": 50}
"""The prompt-token histogram of prod.llama over 5 minutes, on the edges both its pods have."""


@pytest.mark.parametrize("select_by", list(SelectBy))
def test_builders_give_the_expected_values_on_the_real_engine(select_by: SelectBy, tmp_path: Path) -> None:
    promtool_passes(expectations(LabelScheme(select_by=select_by)), tmp_path / "signals_test.yaml")


def promtool_passes(tests: list[dict[str, object]], path: Path, extra: list[dict[str, str]] | None = None) -> None:
    """`promtool test rules` evaluates `tests` on input_series() and `extra`; every expectation must hold."""
    document = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": input_series() + (extra or []), "promql_expr_test": tests}],
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    assert PROMTOOL is not None
    result = subprocess.run([PROMTOOL, "test", "rules", str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


# --- Grouped queries: one per signal for every deployment of the namespace ---------------------------


def grouped_expectations(scheme: LabelScheme) -> list[dict[str, object]]:
    """Each deployment's value in the grouped answer equals its per-deployment value above."""
    queries = build_grouped_queries(scheme, GroupScope((NS,)), QueryWindows())
    at = "20m"
    key = scheme.deployment_label if scheme.select_by is SelectBy.DEPLOYMENT_LABEL else scheme.model_name_label
    names = {
        "llama": ("prod.llama", MODEL),
        "other": ("prod.other", "other"),
        "legacy": ("prod.legacy", "legacy-model"),
        "both": ("prod.both", "both-model"),
    }

    def labels(deployment: str, **extra: str) -> str:
        value = names[deployment][0 if scheme.select_by is SelectBy.DEPLOYMENT_LABEL else 1]
        pairs = {"namespace": NS, key: value, **extra}
        return "{" + ", ".join(f'{k}="{v}"' for k, v in pairs.items()) + "}"

    def each(query: str, values: dict[str, float], *, scale: float = 1.0) -> dict[str, object]:
        expr = query if scale == 1.0 else f"round(({query}) * {scale:g})"
        samples = [{"labels": labels(d), "value": round(v * scale) if scale != 1.0 else v} for d, v in values.items()]
        return {"expr": expr, "eval_time": at, "exp_samples": samples}

    return [
        each(queries[Signal.REQUEST_RATE], {"llama": 3.5, "other": 10}),  # other: 600 / 60 s
        each(queries[Signal.GENERATION_TOKEN_RATE], {"llama": 300}),
        each(queries[Signal.PROMPT_TOKEN_RATE], {"llama": 100}),
        each(queries[Signal.TTFT_P95], {"llama": 0.46}, scale=1e6),
        each(queries[Signal.ITL_P95], {"llama": 0.03, "legacy": 0.092, "both": 0.03}, scale=1e6),
        each(queries[Signal.REQUESTS_RUNNING], {"llama": 8, "other": 7, "legacy": 1}),
        each(queries[Signal.REQUESTS_WAITING], {"llama": 3}),
        each(queries[Signal.REPLICAS_REPORTING], {"llama": 2, "other": 1, "legacy": 1}),
        each(queries[Signal.KV_CACHE_USAGE], {"llama": 0.4, "legacy": 0.7}),
        {
            "expr": queries[Signal.WATTS_PER_REPLICA],
            "eval_time": at,
            "exp_samples": [
                {"labels": labels("llama", pod="llama-a"), "value": 300},
                {"labels": labels("llama", pod="llama-b"), "value": 400},
                {"labels": labels("other", pod="other-a"), "value": 500},
            ],
        },
        # other-a draws 500 W but generated no tokens: no J/token (missing, as per deployment).
        each(queries[Signal.JOULES_PER_TOKEN], {"llama": (630000 + 90000) / (270000 + 60000)}, scale=1e6),
        {
            "expr": queries[Signal.PROMPT_TOKENS_BUCKETS],
            "eval_time": at,
            "exp_samples": [{"labels": labels("llama", le=le), "value": n} for le, n in TOKEN_EDGES.items()],
        },
    ]


@pytest.mark.parametrize("select_by", list(SelectBy))
def test_grouped_queries_give_each_deployment_its_own_value_on_the_real_engine(
    select_by: SelectBy, tmp_path: Path
) -> None:
    promtool_passes(grouped_expectations(LabelScheme(select_by=select_by)), tmp_path / "grouped_test.yaml")


# --- J/token of the pods measured ----------------------------------------------------------------------

HALF = DeploymentRef("prod", "half", NS, "half-model")


def half_measured_series() -> list[dict[str, str]]:
    """prod.half: half-a holds GPU 6 (400 W) and half-b has no DCGM series (no pod mapping, its exporter down,
    or a new pod before its first scrape); each generates 6,000 tokens/min."""
    series = []
    for pod in ("half-a", "half-b"):
        series += [
            {"series": vllm("vllm:num_requests_running", pod, "prod.half", HALF.served_model_name), "values": "2x20"},
            {
                "series": vllm("vllm:generation_tokens_total", pod, "prod.half", HALF.served_model_name),
                "values": "0+6000x20",
            },
        ]
    series += [
        {"series": dcgm("DCGM_FI_DEV_POWER_USAGE", 6, NS, "half-a"), "values": "400x20"},
        {"series": dcgm("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", 6, NS, "half-a"), "values": "1000000+24000000x20"},
    ]
    return series


@pytest.mark.parametrize("select_by", list(SelectBy))
def test_joules_per_token_divides_by_the_tokens_of_the_pods_measured_alone(select_by: SelectBy, tmp_path: Path) -> None:
    """Found in review: J/token divided the energy of the pods with DCGM series by the tokens of every pod, so
    prod.half's half-b, with no DCGM series, counted its tokens and not its energy: 400 W over 200 tokens/s,
    2 J/token, half the 4 J/token of the pod measured. It reads half-a's 400 J/s over its 100 tokens/s, per
    deployment and grouped; prod.llama, every pod measured, is unchanged."""
    scheme = LabelScheme(select_by=select_by)
    key = scheme.deployment_label if select_by is SelectBy.DEPLOYMENT_LABEL else scheme.model_name_label
    llama = (630000 + 90000) / (270000 + 60000)  # as in expectations()
    grouped = build_grouped_queries(scheme, GroupScope((NS,)), QueryWindows())[Signal.JOULES_PER_TOKEN]
    names = {"prod.llama": MODEL, "prod.half": HALF.served_model_name}

    def group(deployment: str) -> str:
        value = deployment if select_by is SelectBy.DEPLOYMENT_LABEL else names[deployment]
        return f'{{namespace="{NS}", {key}="{value}"}}'

    tests: list[dict[str, object]] = [
        {
            "expr": f"round(({build_queries(scheme, HALF, QueryWindows())[Signal.JOULES_PER_TOKEN]}) * 1e6)",
            "eval_time": "20m",
            "exp_samples": [{"labels": "{}", "value": 4_000_000}],
        },
        {
            "expr": f"round(({grouped}) * 1e6)",
            "eval_time": "20m",
            "exp_samples": [
                {"labels": group("prod.llama"), "value": round(llama * 1e6)},
                {"labels": group("prod.half"), "value": 4_000_000},
            ],
        },
    ]
    promtool_passes(tests, tmp_path / "measured_test.yaml", half_measured_series())
