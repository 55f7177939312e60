"""The recording rules (charts/gridshift/files/prometheus/gridshift.rules.yaml) load into Prometheus
(`promtool check rules`) and compute J/token and USD per million tokens per deployment and region
from vLLM, DCGM and operator series (`promtool test rules`), and the measured cost over the operator's
predicted cost, joined on the one label scheme without relabelling. Metric and label names are taken
from gridshift.signals and the operator's registry so they cannot drift from what it exports."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gridshift.signals.labels import LabelScheme
from gridshift.signals.promql import (
    DCGM_POWER,
    DCGM_TOTAL_ENERGY,
    VLLM_GENERATION_TOKENS,
    VLLM_REQUESTS_RUNNING,
)
from gridshift_dev.chart import GPU_TYPE_LABEL, REGION_LABEL, RULE_NAMES

from .conftest import CHART_DIR

RULES = CHART_DIR / "files" / "prometheus" / "gridshift.rules.yaml"
PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool missing (make system-deps installs Debian's)")

H100, L40S = "NVIDIA-H100-80GB-HBM3", "NVIDIA-L40S"
WORKLOADS = "gridshift-workloads"
# pod -> (deployment label, GPU type, output tokens/s, W per GPU for each GPU); p-other is not gridshift's.
PODS: dict[str, tuple[str | None, str, float, list[float]]] = {
    "chat-a": ("llm.chat", H100, 100.0, [300.0]),
    "chat-b": ("llm.chat", H100, 200.0, [400.0, 400.0]),
    "code-a": ("llm.code", L40S, 50.0, [200.0]),
    "other": (None, H100, 0.0, [500.0]),
}
GPU_HOUR_USD = {H100: 2.5, L40S: 1.0}
PREDICTED_USD_PER_HOUR = {"llm.chat": 8.0, "llm.code": 1.0}
"""What the operator predicted for each deployment in eu-de (gridshift_deployment_predicted_cost_usd_per_hour)."""
ENERGY_USD_PER_KWH = 0.2
MINUTES = 40


def labels(**pairs: str) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in pairs.items()) + "}"


def series(metric: str, pairs: dict[str, str], start: float, per_minute: float) -> dict[str, str]:
    return {"series": metric + labels(**pairs), "values": f"{start:g}+{per_minute:g}x{MINUTES}"}


def input_series() -> list[dict[str, str]]:
    scheme = LabelScheme()
    out = []
    gpu_index = 0
    for pod, (deployment, gpu_type, tokens_per_second, watts) in PODS.items():
        target = {scheme.namespace_label: WORKLOADS, scheme.pod_label: pod, REGION_LABEL: "eu-de"}
        if deployment is not None:
            vllm = target | {scheme.deployment_label: deployment, GPU_TYPE_LABEL: gpu_type, "instance": f"{pod}:8000"}
            out.append(series(VLLM_REQUESTS_RUNNING, vllm, 3, 0))
            out.append(series(VLLM_GENERATION_TOKENS, vllm, 1000, tokens_per_second * 60))
        for gpu_watts in watts:
            # dcgm-exporter's labels (honorLabels: the workload's namespace/pod), as in the real scrapes.
            dcgm = target | {
                "gpu": str(gpu_index),
                "UUID": f"GPU-{gpu_index}",
                "modelName": gpu_type,
                "Hostname": "node-1",
                "container": "vllm",
                "instance": "dcgm:9400",
            }
            gpu_index += 1
            out.append(series(DCGM_POWER, dcgm, gpu_watts, 0))
            out.append(series(DCGM_TOTAL_ENERGY, dcgm, 5e9, gpu_watts * 60 * 1000))  # mJ
    for replica in ("operator-0", "operator-1"):  # two operator replicas export the same prices
        # The labels the operator's registry writes (test_operator_series_carry_the_rules_labels).
        operator = {"pod": replica, "namespace": "gridshift-system", "job": "gridshift-metrics", "cluster": "de-1"}
        for gpu_type, usd in GPU_HOUR_USD.items():
            price = operator | {REGION_LABEL: "eu-de", GPU_TYPE_LABEL: gpu_type}
            out.append(series(RULE_NAMES.gpu_hour_price, price, usd, 0))
        out.append(series(RULE_NAMES.energy_price, operator | {REGION_LABEL: "eu-de"}, ENERGY_USD_PER_KWH, 0))
        for deployment, predicted in PREDICTED_USD_PER_HOUR.items():
            where = operator | {scheme.deployment_label: deployment, REGION_LABEL: "eu-de"}
            out.append(series(RULE_NAMES.predicted_cost, where, predicted, 0))
    return out


def rounded(expr: str, samples: list[tuple[str, str | None, float]]) -> dict[str, Any]:
    """A promtool expectation at 30 m: `expr` to 6 decimals, one sample per (deployment, region or None, value)."""
    deployment = LabelScheme().deployment_label
    return {
        "expr": f"round(({expr}) * 1e6) / 1e6",
        "eval_time": "30m",
        "exp_samples": [
            {"labels": labels(**{deployment: d} | ({REGION_LABEL: r} if r else {})), "value": v} for d, r, v in samples
        ],
    }


def h100_pod_series(pods: dict[str, tuple[str, str, float, float | None]]) -> list[dict[str, str]]:
    """One H100 replica pod each: pod -> (deployment, region, tokens/s, watts, or None without DCGM series)."""
    scheme = LabelScheme()
    out = []
    for gpu, (pod, (deployment, region, tokens, watts)) in enumerate(pods.items()):
        target = {scheme.namespace_label: WORKLOADS, scheme.pod_label: pod, REGION_LABEL: region}
        vllm = target | {scheme.deployment_label: deployment, GPU_TYPE_LABEL: H100}
        out.append(series(VLLM_REQUESTS_RUNNING, vllm, 1, 0))
        out.append(series(VLLM_GENERATION_TOKENS, vllm, 1000, tokens * 60))
        if watts is not None:
            out.append(series(DCGM_POWER, target | {"gpu": str(gpu)}, watts, 0))
            out.append(series(DCGM_TOTAL_ENERGY, target | {"gpu": str(gpu)}, 0, watts * 60 * 1000))
    return out


def promtool_passes(test_file: Path, input_series: list[dict[str, str]], expectations: list[dict[str, Any]]) -> None:
    """`promtool test rules` of the chart's rules on `input_series` (1-minute samples) meets `expectations`."""
    tests = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": input_series, "promql_expr_test": expectations}],
    }
    test_file.write_text(yaml.safe_dump(tests, sort_keys=False))
    proc = subprocess.run(
        [str(PROMTOOL), "test", "rules", str(test_file)], capture_output=True, text=True, check=False, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def expected_samples() -> dict[str, list[dict[str, Any]]]:
    """What each rule must give, computed here from PODS (not from PromQL)."""
    scheme = LabelScheme()
    by_deployment: dict[str, dict[str, float]] = {}
    for deployment, gpu_type, tokens_per_second, watts in PODS.values():
        if deployment is None:
            continue
        totals = by_deployment.setdefault(deployment, {"watts": 0.0, "tokens": 0.0, "gpu_usd": 0.0})
        totals["watts"] += sum(watts)
        totals["tokens"] += tokens_per_second
        totals["gpu_usd"] += len(watts) * GPU_HOUR_USD[gpu_type]

    def samples(value_of: Any) -> list[dict[str, Any]]:
        return [
            {"labels": labels(**{scheme.deployment_label: name, REGION_LABEL: "eu-de"}), "value": value_of(t)}
            for name, t in sorted(by_deployment.items())
        ]

    def cost(t: dict[str, float]) -> float:
        return t["gpu_usd"] + t["watts"] / 1000 * ENERGY_USD_PER_KWH

    def measured_over_predicted(name: str) -> float:
        return cost(by_deployment[name]) / PREDICTED_USD_PER_HOUR[name]

    return {
        RULE_NAMES.measured_over_predicted: [
            {
                "labels": labels(**{scheme.deployment_label: name, REGION_LABEL: "eu-de"}),
                "value": measured_over_predicted(name),
            }
            for name in sorted(by_deployment)
        ],
        RULE_NAMES.power_watts: samples(lambda t: t["watts"]),
        RULE_NAMES.token_rate: samples(lambda t: t["tokens"]),
        RULE_NAMES.joules_per_token: samples(lambda t: t["watts"] / t["tokens"]),
        RULE_NAMES.gpu_cost: samples(lambda t: t["gpu_usd"]),
        RULE_NAMES.cost: samples(cost),
        RULE_NAMES.usd_per_mtok: samples(lambda t: cost(t) / (t["tokens"] * 3600) * 1e6),
    }


def test_rules_file_loads_into_prometheus() -> None:
    proc = subprocess.run([str(PROMTOOL), "check", "rules", str(RULES)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Every recording rule and alert of the file (the count once written here went stale with a new alert).
    groups = yaml.safe_load(RULES.read_text())["groups"]
    assert f"SUCCESS: {sum(len(g['rules']) for g in groups)} rules found" in proc.stdout


def test_rules_compute_joules_per_token_and_usd_per_million_tokens(tmp_path: Path) -> None:
    expected = expected_samples()
    # Hand-checked anchor: chat holds 3 H100s drawing 1,100 W for 300 tokens/s.
    assert expected[RULE_NAMES.joules_per_token][0]["value"] == pytest.approx(1100 / 300)
    # ... and 3 x 2.5 USD/h of GPUs plus 1.1 kW x 0.2 USD/kWh, against the 8 USD/h the operator predicted.
    assert expected[RULE_NAMES.measured_over_predicted][0]["value"] == pytest.approx((7.5 + 0.22) / 8.0)
    tests = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": input_series(),
                "promql_expr_test": [
                    {
                        "expr": f"round({name} * 1e6) / 1e6",
                        "eval_time": "30m",
                        "exp_samples": [s | {"value": round(s["value"] * 1e6) / 1e6} for s in samples],
                    }
                    for name, samples in expected.items()
                ],
            }
        ],
    }
    test_file = tmp_path / "rules_test.yaml"
    test_file.write_text(yaml.safe_dump(tests, sort_keys=False))
    proc = subprocess.run(
        [str(PROMTOOL), "test", "rules", str(test_file)], capture_output=True, text=True, check=False, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_joules_per_token_counts_the_energy_of_a_replica_stopped_within_the_window(tmp_path: Path) -> None:
    # chat-a (300 W, 100 tokens/s) serves all 40 minutes; chat-c (500 W, 200 tokens/s) stopped at minute 30.
    # At 40 m the 15-minute window holds chat-c's samples 26..30 m, read as 5.5 minutes by rate()'s
    # extrapolation, for its tokens and its energy alike. Found in review: its tokens were counted and
    # its energy not (joined to the pods running at 40 m only).
    scheme = LabelScheme()
    out = []
    for index, (pod, watts, tokens, last) in enumerate((("chat-a", 300, 100, 40), ("chat-c", 500, 200, 30))):
        target = {scheme.namespace_label: WORKLOADS, scheme.pod_label: pod, REGION_LABEL: "eu-de"}
        vllm = target | {scheme.deployment_label: "llm.chat", GPU_TYPE_LABEL: H100, "instance": f"{pod}:8000"}
        dcgm = target | {"gpu": str(index), "UUID": f"GPU-{index}", "modelName": H100, "instance": "dcgm:9400"}
        out += [
            {"series": VLLM_REQUESTS_RUNNING + labels(**vllm), "values": f"3x{last}"},
            {"series": VLLM_GENERATION_TOKENS + labels(**vllm), "values": f"1000+{tokens * 60}x{last}"},
            {"series": DCGM_TOTAL_ENERGY + labels(**dcgm), "values": f"5e9+{watts * 60 * 1000}x{last}"},
        ]
    share = 5.5 / 15
    expected = (300 + 500 * share) / (100 + 200 * share)
    key = labels(**{scheme.deployment_label: "llm.chat", REGION_LABEL: "eu-de"})
    test = {
        "interval": "1m",
        "input_series": out,
        "promql_expr_test": [
            {
                "expr": f"round({RULE_NAMES.joules_per_token} * 1e6) / 1e6",
                "eval_time": "40m",
                "exp_samples": [{"labels": key, "value": round(expected * 1e6) / 1e6}],
            }
        ],
    }
    test_file = tmp_path / "stopped_test.yaml"
    test_file.write_text(
        yaml.safe_dump({"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": [test]}, sort_keys=False)
    )
    proc = subprocess.run(
        [str(PROMTOOL), "test", "rules", str(test_file)], capture_output=True, text=True, check=False, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_rules_use_the_operator_metric_and_label_names() -> None:
    text = RULES.read_text()
    scheme = LabelScheme()
    for name in (VLLM_GENERATION_TOKENS, DCGM_TOTAL_ENERGY, DCGM_POWER, scheme.deployment_label, REGION_LABEL):
        assert name in text
    records = [r["record"] for g in yaml.safe_load(text)["groups"] for r in g["rules"] if "record" in r]
    assert len(records) == len(set(records)) == 13
    # One label scheme: no rule renames a label to join the operator's series with vLLM's and DCGM's.
    assert "label_replace" not in text


def test_operator_series_carry_the_rules_labels() -> None:
    """The series the rules read from the operator carry, in its real exposition, the labels the rules join on."""
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from tests.service.harness import ServiceHarness, deployment_body

    world = ServiceHarness(["eu-de"])
    world.add(deployment_body())
    world.cycle()
    exposed = {
        sample.name: set(sample.labels)
        for family in text_string_to_metric_families(generate_latest(world.service.metrics.registry).decode())
        for sample in family.samples
    }
    scheme = LabelScheme()
    assert exposed[RULE_NAMES.gpu_hour_price] == {"cluster", REGION_LABEL, GPU_TYPE_LABEL}
    assert exposed[RULE_NAMES.energy_price] == {"cluster", REGION_LABEL}
    assert exposed[RULE_NAMES.predicted_cost] == {scheme.deployment_label, REGION_LABEL}


def test_usd_per_million_tokens_covers_the_same_regions_above_and_below_and_no_tokens_give_no_series(
    tmp_path: Path,
) -> None:
    """ml.b serves 1,000 tokens/s in each of three regions, but only eu-de has a cost: eu-fr has no energy
    price now (the operator drops the series) and eu-nl no DCGM series. Its USD/Mtok is eu-de's cost over
    eu-de's tokens (the dashboard divided by all three regions' tokens: a third of it), its J/token the
    power of eu-de and eu-fr over their tokens. ml.idle holds a GPU and serves nothing: no USD/Mtok and no
    J/token at all, rather than +Inf."""
    from gridshift_dev import dashboard
    from gridshift_dev.chart import operator_metric_names

    pods = {  # pod -> (deployment, region, tokens/s, watts or None without DCGM series)
        "b-de": ("ml.b", "eu-de", 1000.0, 700.0),
        "b-fr": ("ml.b", "eu-fr", 1000.0, 700.0),
        "b-nl": ("ml.b", "eu-nl", 1000.0, None),
        "idle": ("ml.idle", "eu-de", 0.0, 100.0),
    }
    out = h100_pod_series(pods)
    for region in ("eu-de", "eu-fr", "eu-nl"):
        where = {"cluster": region, REGION_LABEL: region}
        out.append(series(RULE_NAMES.gpu_hour_price, where | {GPU_TYPE_LABEL: H100}, 2.0, 0))
    out.append(series(RULE_NAMES.energy_price, {"cluster": "eu-de", REGION_LABEL: "eu-de"}, 0.1, 0))
    cost_de = 2.0 + 0.7 * 0.1  # one H100 at 2 USD/h, 0.7 kW at 0.1 USD/kWh
    queries: dict[str, str] = {}  # each panel's first query: the measured figure
    for title, expr in dashboard.panel_queries(RULE_NAMES, operator_metric_names()):
        queries.setdefault(title, expr)

    expectations = [
        rounded(RULE_NAMES.usd_per_mtok, [("ml.b", "eu-de", round(cost_de / 1000 / 3600 * 1e6, 6))]),
        rounded(
            queries["USD per million tokens per deployment"], [("ml.b", "", round(cost_de / 1000 / 3600 * 1e6, 6))]
        ),
        rounded(RULE_NAMES.joules_per_token, [("ml.b", "eu-de", 0.7), ("ml.b", "eu-fr", 0.7)]),
        rounded(queries["J per token per deployment"], [("ml.b", "", 0.7)]),
    ]
    promtool_passes(tmp_path / "per_token_test.yaml", out, expectations)


def test_usd_per_million_tokens_leaves_out_a_region_where_a_replica_is_out_of_the_cost(tmp_path: Path) -> None:
    """ml.mix serves 1,000 tokens/s on an H100 and 1,000 on an L40S in eu-de, whose operator prices no L40S (the
    cluster stopped offering it: status.cost's unpricedReplicas), and 1,000 on an H100 in eu-fr. The L40S's GPUs
    are not in eu-de's cost, so eu-de's cost over all its tokens read half the H100's figure (found in review).
    ml.n's second eu-de replica has no DCGM series: its GPUs are out of the cost in the same way. Now neither
    region has a USD/Mtok, and a deployment's figure leaves them out. ml.b, priced in full, serves in eu-de and
    holds an idle replica in eu-fr: that region's cost stays in ml.b's figure (review: dropped by a first fix)."""
    from gridshift_dev import dashboard
    from gridshift_dev.chart import operator_metric_names

    scheme = LabelScheme()
    out = []
    pods = {  # pod -> (deployment, region, GPU type, tokens/s, DCGM series); each GPU draws 700 W
        "mix-de-h100": ("ml.mix", "eu-de", H100, 1000.0, True),
        "mix-de-l40s": ("ml.mix", "eu-de", L40S, 1000.0, True),
        "mix-fr-h100": ("ml.mix", "eu-fr", H100, 1000.0, True),
        "n-de-a": ("ml.n", "eu-de", H100, 1000.0, True),
        "n-de-b": ("ml.n", "eu-de", H100, 1000.0, False),
        "b-de": ("ml.b", "eu-de", H100, 1000.0, True),
        "b-fr-idle": ("ml.b", "eu-fr", H100, 0.0, True),
    }
    for gpu, (pod, (deployment, region, gpu_type, tokens, dcgm)) in enumerate(pods.items()):
        target = {scheme.namespace_label: WORKLOADS, scheme.pod_label: pod, REGION_LABEL: region}
        vllm = target | {scheme.deployment_label: deployment, GPU_TYPE_LABEL: gpu_type}
        out.append(series(VLLM_REQUESTS_RUNNING, vllm, 1, 0))
        out.append(series(VLLM_GENERATION_TOKENS, vllm, 1000, tokens * 60))
        if dcgm:
            out.append(series(DCGM_POWER, target | {"gpu": str(gpu)}, 700.0, 0))
            out.append(series(DCGM_TOTAL_ENERGY, target | {"gpu": str(gpu)}, 0, 700.0 * 60 * 1000))
    for region in ("eu-de", "eu-fr"):
        where = {"cluster": region, REGION_LABEL: region}
        out.append(series(RULE_NAMES.gpu_hour_price, where | {GPU_TYPE_LABEL: H100}, 2.0, 0))
        out.append(series(RULE_NAMES.energy_price, where, 0.1, 0))
    per_mtok = round((2.0 + 0.7 * 0.1) / 1000 / 3600 * 1e6, 6)  # one H100 at 2 USD/h and 0.1 USD/kWh, 1,000/s
    deployment_query = dict(dashboard.panel_queries(RULE_NAMES, operator_metric_names()))[
        "USD per million tokens per deployment"
    ]

    expectations = [
        rounded(RULE_NAMES.unpriced_replicas, [("ml.mix", "eu-de", 1), ("ml.n", "eu-de", 1)]),
        rounded(RULE_NAMES.usd_per_mtok, [("ml.b", "eu-de", per_mtok), ("ml.mix", "eu-fr", per_mtok)]),
        rounded(deployment_query, [("ml.b", None, 2 * per_mtok), ("ml.mix", None, per_mtok)]),
    ]
    promtool_passes(tmp_path / "unpriced_test.yaml", out, expectations)


def test_joules_per_token_divides_by_the_tokens_of_the_pods_with_dcgm_series_alone(tmp_path: Path) -> None:
    """ml.n serves 1,000 tokens/s on each of two H100 pods in eu-de, n-de-a drawing 700 W and n-de-b without
    DCGM series (no pod mapping, its exporter down, or new before its first scrape), and 1,000 tokens/s at
    350 W in eu-fr. eu-de's J/token divided n-de-a's energy by both pods' tokens: 0.35 for n-de-a's 0.7 (found
    in review). Now it is n-de-a's 0.7, and the dashboard's measured line weighs each region's J/token by the
    tokens it serves, (0.7 x 2,000 + 0.35 x 1,000) / 3,000, where it read eu-de's 700 W and eu-fr's 350 W over
    every token, 0.35. ml.quiet's measured pod generates nothing beside one without DCGM series: no J/token
    (the energy over the other pod's tokens was a figure), rather than +Inf."""
    from gridshift_dev import dashboard
    from gridshift_dev.chart import operator_metric_names

    pods = {  # pod -> (deployment, region, tokens/s, watts or None without DCGM series)
        "n-de-a": ("ml.n", "eu-de", 1000.0, 700.0),
        "n-de-b": ("ml.n", "eu-de", 1000.0, None),
        "n-fr": ("ml.n", "eu-fr", 1000.0, 350.0),
        "quiet-a": ("ml.quiet", "eu-de", 0.0, 100.0),
        "quiet-b": ("ml.quiet", "eu-de", 1000.0, None),
    }
    out = h100_pod_series(pods)
    queries: dict[str, str] = {}  # each panel's first query: the measured figure
    for title, expr in dashboard.panel_queries(RULE_NAMES, operator_metric_names()):
        queries.setdefault(title, expr)

    expectations = [
        rounded(RULE_NAMES.joules_per_token, [("ml.n", "eu-de", 0.7), ("ml.n", "eu-fr", 0.35)]),
        rounded(queries["J per token per deployment"], [("ml.n", None, round((0.7 * 2000 + 0.35 * 1000) / 3000, 6))]),
    ]
    promtool_passes(tmp_path / "unmeasured_test.yaml", out, expectations)


def test_the_measured_j_per_token_line_weighs_two_clusters_of_one_region_under_one_query_layer(tmp_path: Path) -> None:
    """Where several Prometheus servers evaluate the rules under one query layer (Thanos, Mimir), two clusters
    in one region give two rule series per deployment and region, told apart by an external label. The
    measured line paired J/token and tokens on deployment and region: a many-to-many error failed the whole
    panel (found in review). It pairs series with the same labels: (0.5 x 1,000 + 1.0 x 3,000) / 4,000."""
    from gridshift_dev import dashboard
    from gridshift_dev.chart import operator_metric_names

    deployment = LabelScheme().deployment_label
    out = []
    for cluster, joules, tokens in (("de-1", 0.5, 1000), ("de-2", 1.0, 3000)):
        rule_labels = labels(**{deployment: "ml.x", REGION_LABEL: "eu-de", "cluster": cluster})
        out.append({"series": RULE_NAMES.joules_per_token + rule_labels, "values": f"{joules:g}x{MINUTES}"})
        out.append({"series": RULE_NAMES.token_rate + rule_labels, "values": f"{tokens:g}x{MINUTES}"})
    measured = next(
        expr
        for title, expr in dashboard.panel_queries(RULE_NAMES, operator_metric_names())
        if title == "J per token per deployment"
    )
    promtool_passes(tmp_path / "two_clusters_test.yaml", out, [rounded(measured, [("ml.x", None, 0.875)])])
