"""The Grafana dashboard (charts/gridshift/files/dashboards/gridshift.json): shipped as a labelled
ConfigMap when asked, every panel's PromQL accepted by `promtool`, and every query returning data
from a real Prometheus that scrapes the simulated world's vLLM and DCGM exporters and a real
operator service's metrics, with the chart's recording rules loaded. A renamed metric or label fails
here (or in the dashboard's generation) instead of leaving an empty panel."""

from __future__ import annotations

import importlib
import json
import math
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e.world.fleet import LoadSpec
from e2e.world.kube import FakeClusterReader, NodeInfo, PodInfo
from e2e.world.labels import DEPLOYMENT, DEPLOYMENT_NAMESPACE, MANAGED_BY, MANAGED_BY_VALUE
from e2e.world.prometheus import scrape_configs
from e2e.world.world import World, WorldSettings
from prometheus_client import start_http_server

from gridshift_dev import dashboard
from gridshift_dev.chart import RULE_NAMES, operator_metric_names
from tests.service.harness import H100, ServiceHarness, deployment_body

from .conftest import CHART_DIR, Helm

DASHBOARD = CHART_DIR / "files" / "dashboards" / "gridshift.json"
RULES = CHART_DIR / "files" / "prometheus" / "gridshift.rules.yaml"
PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus") or ("/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None)
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool missing (make system-deps installs Debian's)")


def panel_queries(deployment_regex: str = dashboard.ALL_DEPLOYMENTS) -> list[tuple[str, str]]:
    return dashboard.panel_queries(RULE_NAMES, operator_metric_names(), deployment_regex)


def shipped() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def test_the_configmap_is_shipped_only_when_asked_with_the_sidecar_label(helm: Helm) -> None:
    assert not [o for o in helm.render() if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-dashboard")]
    objects = helm.render(
        "--set", "dashboards.enabled=true", "--set", "dashboards.namespace=monitoring",
        "--set", "dashboards.annotations.grafana_folder=gridshift", "--set", "commonLabels.team=ml-platform",
    )  # fmt: skip
    (configmap,) = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-dashboard")]
    meta = configmap["metadata"]
    assert meta["namespace"] == "monitoring"
    assert meta["labels"]["grafana_dashboard"] == "1" and meta["labels"]["team"] == "ml-platform"
    assert meta["annotations"]["grafana_folder"] == "gridshift"
    assert json.loads(configmap["data"]["gridshift.json"]) == shipped()


def test_the_dashboard_has_the_panels_the_issue_asks_for_laid_out_without_overlap() -> None:
    board = shipped()
    titles = [p["title"] for p in board["panels"]]
    for wanted in ("price", "Replicas per region", "USD per million tokens", "J per token", "Decisions"):
        assert any(wanted in title for title in titles), wanted
    cells = set()
    for panel in board["panels"]:
        assert panel["targets"] and all(t["expr"] and t["refId"] for t in panel["targets"]), panel["title"]
        pos = panel["gridPos"]
        area = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not cells & area, f"{panel['title']} overlaps another panel"
        cells |= area
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"])
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert set(variables) == {"datasource", "deployment"} and variables["deployment"]["allValue"] == ".*"
    # The shipped JSON holds exactly the generated queries.
    assert [(p["title"], t["expr"].replace("$deployment", ".*")) for p in board["panels"] for t in p["targets"]] == (
        panel_queries()
    )


def test_counts_are_drawn_as_counts_on_their_own_axis() -> None:
    """Found in review: the Planning cycle panel (unit s) drew its error counts as seconds on the duration's
    axis. Each series' unit as Grafana resolves it: the panel's, or an override whose regex matches the
    series' name (its legend, with a label value in place of each {{label}})."""
    counter = re.compile(r"increase\(\w+_total\b")
    for panel in shipped()["panels"]:
        config = panel["fieldConfig"]
        for target in panel["targets"]:
            name = re.sub(r"\{\{\s*\w+\s*\}\}", "ml.chat", target["legendFormat"])
            field = {"unit": config["defaults"]["unit"], "custom.axisPlacement": "auto"}
            for override in config["overrides"]:
                if override["matcher"]["id"] == "byRegexp" and re.fullmatch(override["matcher"]["options"], name):
                    field |= {p["id"]: p["value"] for p in override["properties"]}
            if counter.search(target["expr"]):
                assert field["unit"] == "short", f"{panel['title']}: {name} is a count, not {field['unit']}"
                if config["defaults"]["unit"] != "short":
                    assert field["custom.axisPlacement"] == "right", f"{panel['title']}: {name} on the left axis"
            else:
                assert field["unit"] == config["defaults"]["unit"], f"{panel['title']}: {name}"


@needs_promtool
def test_every_panel_query_passes_promtool(tmp_path: Path) -> None:
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}:check", "expr": expr}
                    for i, (_, expr) in enumerate(panel_queries("ml.chat|ml.code"))
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump(rules))
    proc = subprocess.run([str(PROMTOOL), "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(rules['groups'][0]['rules'])} rules found" in proc.stdout


@needs_promtool
def test_predicted_joules_per_token_weighs_each_region_by_its_tokens(tmp_path: Path) -> None:
    """Found in review: the predicted line was `max by (deployment)` of the per-region prediction, the worst
    region. ml.chat serves 1,000 tokens/s in eu-de at 300 W (0.3 J/token predicted) and 1,000 in us-tx at
    900 W (0.9): measured and predicted both read 0.6 J/token, the total energy over the total tokens
    (status.cost.joulesPerToken). The prediction is exported by two operator replicas' scrapes alike."""
    pod = 'namespace="gw", gridshift_dev_deployment="ml.chat", job="vllm"'
    regions = {"eu-de": ("a", "H100", 300, 0.3), "us-tx": ("b", "A100", 900, 0.9)}
    series = []
    for region, (name, gpu, watts, predicted) in regions.items():
        vllm = f'{pod}, pod="{name}", region="{region}", gridshift_dev_gpu_type="{gpu}"'
        dcgm = f'namespace="gw", pod="{name}", region="{region}", gpu="0", job="dcgm"'
        series += [
            {"series": f"vllm:num_requests_running{{{vllm}}}", "values": "4x40"},
            {"series": f"vllm:generation_tokens_total{{{vllm}}}", "values": "0+60000x40"},
            {"series": f"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{{{dcgm}}}", "values": f"0+{watts * 60_000}x40"},
            {"series": f"DCGM_FI_DEV_POWER_USAGE{{{dcgm}}}", "values": f"{watts}x40"},
            *(
                {
                    "series": f'gridshift_deployment_predicted_joules_per_token{{job="gridshift", '
                    f'instance="{instance}", gridshift_dev_deployment="ml.chat", region="{region}"}}',
                    "values": f"{predicted}x40",
                }
                for instance in ("10.0.0.5:8080", "10.0.0.6:8080")
            ),
        ]
    panel = next(p for p in dashboard.panels(RULE_NAMES, operator_metric_names()) if p.title.startswith("J per token"))
    queries = {q.legend: q.expr.replace("$deployment", "ml.chat") for q in panel.queries}
    assert set(queries) == {"{{gridshift_dev_deployment}} measured", "{{gridshift_dev_deployment}} predicted"}
    test = {
        "interval": "1m",
        "input_series": series,
        "promql_expr_test": [
            {
                "expr": f"round(({expr}) * 1000) / 1000",
                "eval_time": "30m",
                "exp_samples": [{"labels": '{gridshift_dev_deployment="ml.chat"}', "value": 0.6}],
            }
            for expr in queries.values()
        ],
    }
    test_file = tmp_path / "joules_test.yaml"
    test_file.write_text(yaml.safe_dump({"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": [test]}))
    proc = subprocess.run(
        [str(PROMTOOL), "test", "rules", str(test_file)], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_query_reading_a_metric_the_operator_does_not_export_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dashboard, "_operator_names_in", lambda expr: ["gridshift_energy_price_usd_per_mwh"])
    with pytest.raises(ValueError, match="gridshift_energy_price_usd_per_mwh, which the operator does not export"):
        dashboard.panels(RULE_NAMES, operator_metric_names())


def _pod(name: str, node: str = "gpu-0") -> PodInfo:
    labels = {MANAGED_BY: MANAGED_BY_VALUE, DEPLOYMENT: "chat", DEPLOYMENT_NAMESPACE: "ml"}
    return PodInfo("gridshift-workloads", name, f"uid-{name}", node, labels, 1, True, True, "2024-06-03T00:00:00Z",
                   "chat", 256)  # fmt: skip


@pytest.fixture
def served() -> Iterator[Callable[[Any], str]]:
    """Serves registries over HTTP as the operator does (prometheus_client), on free ports."""
    servers: list[Any] = []
    free_ports = importlib.import_module("gscluster.planes").free_ports

    def serve(registry: Any) -> str:
        (port,) = free_ports(1)
        server, _ = start_http_server(port, addr="127.0.0.1", registry=registry)
        servers.append(server)
        return f"127.0.0.1:{port}"

    yield serve
    for server in servers:
        server.shutdown()


def finite(sample: dict[str, Any]) -> bool:
    return math.isfinite(float(sample["value"][1]))


def instant(url: str, expr: str) -> list[dict[str, Any]]:
    """`promtool query instant`: the query as Grafana's Prometheus data source sends it."""
    proc = subprocess.run(
        [str(PROMTOOL), "query", "instant", "-o", "json", url, expr], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, f"{expr}: {proc.stderr}"
    result: list[dict[str, Any]] = json.loads(proc.stdout)
    return result


@needs_promtool
@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus missing (make system-deps installs Debian's)")
def test_every_panel_returns_data_from_the_worlds_prometheus(tmp_path: Path, served: Callable[[Any], str]) -> None:
    """The world serves ml/chat from two eu-de replicas and one in eu-fr (vLLM and DCGM exporters); a real
    OperatorService plans the same deployment over fake members (one unreachable, so cycles count errors)
    and exports its metrics; Debian's Prometheus scrapes both every second with the chart's recording rules
    (evaluated every second here). Every panel query must return finite data."""
    operator = ServiceHarness(["eu-de", "eu-fr", "us-tx"])
    operator.add(deployment_body("chat", rps=12.0))
    operator.cycle()
    operator.members["us-tx"].reachable = False
    operator.cycle(advance=timedelta(minutes=5))
    regions = {
        name: FakeClusterReader(name, nodes=[NodeInfo("gpu-0", H100, 8)]) for name in ("eu-de", "eu-fr")
    }  # fmt: skip
    for name in ("chat-a", "chat-b"):
        regions["eu-de"].add_pod(_pod(name))
    regions["eu-fr"].add_pod(_pod("chat-fr"))
    fast = yaml.safe_load(RULES.read_text())
    for group in fast["groups"]:
        group["interval"] = "1s"
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(fast))
    start = importlib.import_module("gscluster.prometheus").start_prometheus
    with World(WorldSettings(speed=180, default_load=LoadSpec(rate_per_s=8.0)), readers=regions) as world:
        prometheus = start(
            {"gridshift": [served(operator.service.metrics.registry)]},
            scrape_interval="1s",
            extra_scrape_configs=scrape_configs(world.endpoints()["exporters"]),
            rule_files=[rules],
        )
        try:
            queries = panel_queries()
            missing = [expr for _, expr in queries]
            deadline = time.monotonic() + 120
            answers: dict[str, list[dict[str, Any]]] = {}
            while missing and time.monotonic() < deadline:
                operator.cycle()  # decisions and cycle durations keep coming, as from a running operator
                for expr in list(missing):
                    answer = instant(prometheus.url, expr)
                    if answer and all(finite(sample) for sample in answer):  # NaN: e.g. no cycle in the window yet
                        answers[expr] = answer
                        missing.remove(expr)
                time.sleep(1)
            assert not missing, f"panel queries without data after 120 s: {missing}"
            # Rates over a window that opened with the first scrapes read low at first (replicas warming
            # up, the simulation trailing a loaded machine): the cost per token settles within a minute.
            usd_per_mtok = next(e for t, e in queries if t == "USD per million tokens per deployment")
            settle = time.monotonic() + 90
            while time.monotonic() < settle and not 0 < float(answers[usd_per_mtok][0]["value"][1]) < 100:
                time.sleep(2)
                answers[usd_per_mtok] = instant(prometheus.url, usd_per_mtok) or answers[usd_per_mtok]
        finally:
            prometheus.stop()
    assert all(finite(sample) for answer in answers.values() for sample in answer)
    by_panel = {expr: title for title, expr in queries}
    price = next(a for e, a in answers.items() if by_panel[e] == "Electricity price per region")
    assert {s["metric"]["region"] for s in price} == {"eu-de", "eu-fr", "us-tx"}
    usd_per_mtok = next(a for e, a in answers.items() if by_panel[e] == "USD per million tokens per deployment")
    assert [s["metric"]["gridshift_dev_deployment"] for s in usd_per_mtok] == ["ml.chat"]
    assert 0 < float(usd_per_mtok[0]["value"][1]) < 100, "USD/Mtok of an 8B model on H100s at 2 USD per GPU-hour"


def test_the_decisions_panel_names_no_reason_the_operator_never_counts() -> None:
    # Found in review: the panel said "NoChange is most cycles", a series gridshift_decisions_total never has.
    import re

    from gridshift.service.report import DECISION_EVENTS, QUIET_DECISIONS

    panel = next(p for p in dashboard.panels(RULE_NAMES, operator_metric_names()) if p.title == "Decisions per hour")
    counted, named = (
        {str(r) for r in DECISION_EVENTS},
        set(re.findall(r"\b[A-Z][a-z]+(?:[A-Z][a-z]+)+\b", panel.description)),
    )
    assert named <= counted | QUIET_DECISIONS, named
    for quiet in named & QUIET_DECISIONS:
        assert re.search(rf"{quiet}[^.]*\bnot counted", panel.description), panel.description
