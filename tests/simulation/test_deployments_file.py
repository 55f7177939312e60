"""`gridshift simulate --deployments FILE`: InferenceDeployments (the operator's API) replace the built-in set."""

from __future__ import annotations

import contextlib
import io
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from gridshift.cli.main import UsageError, build_parser
from gridshift.simulation.data import SimulationInputError, shipped_trace
from gridshift.simulation.deployments_file import load_deployments
from gridshift.simulation.settings import SimulationSettings

EXAMPLE = Path(__file__).parent / "data" / "deployments.yaml"
TRACES = {"conv": shipped_trace("conv"), "code": shipped_trace("code")}


def test_the_example_file_gives_its_deployments_with_the_fields_the_operator_reads() -> None:
    setups = load_deployments(EXAMPLE, SimulationSettings(days=0.1), TRACES)
    assert [s.name for s in setups] == ["chat", "coder"]
    chat, coder = setups
    assert (chat.model, chat.home_market, chat.trace, chat.headroom) == (
        "meta-llama/Meta-Llama-3-8B-Instruct",
        "DE-LU",
        "conv",
        0.15,
    )
    assert (chat.ttft_p95_ms, chat.tpot_p95_ms, chat.peak_requests_per_second, chat.max_replicas) == (
        1000.0,
        50.0,
        44.0,
        32,
    )
    assert (coder.model, coder.home_market, coder.trace) == ("Qwen/Qwen3-8B", "US-CAL-CISO", "code")


def test_a_null_headroom_is_left_out_as_the_apiserver_stores_it(tmp_path: Path) -> None:
    # Found in review: `headroom: null` was replayed at the API's default 0.2 (the raw document has the key),
    # where the apiserver prunes the null and the replay reads a left-out headroom off the traffic.
    settings = SimulationSettings(days=0.1)
    read = {}
    for name, headroom in (("absent", ""), ("null", "headroom: null"), ("set", "headroom: 0.2")):
        path = tmp_path / f"{name}.yaml"
        path.write_text(EXAMPLE.read_text().replace("headroom: 0.15", headroom, 1))
        read[name] = load_deployments(path, settings, TRACES)[0].headroom
    assert read["absent"] != 0.2 and read["set"] == 0.2
    assert read["null"] == read["absent"]


def test_the_cli_replays_the_file_instead_of_the_built_in_set() -> None:
    args = build_parser().parse_args(
        ["simulate", "--deployments", str(EXAMPLE), "--days", "0.05", "--json", "--no-progress", "--jobs", "1"]
    )
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert args.handler(args) == 0
    document = json.loads(buffer.getvalue())
    assert [d["name"] for d in document["deployments"]] == ["chat", "coder"]


def test_the_json_gives_a_small_peak_rate_in_significant_digits(tmp_path: Path) -> None:
    # Found in review: rounded to 3 places, a peak of 0.0001 req/s read 0.0 in the JSON.
    path = tmp_path / "d.yaml"
    path.write_text(EXAMPLE.read_text().replace("requestsPerSecond: 44", "requestsPerSecond: 0.000123456789", 1))
    args = build_parser().parse_args(
        ["simulate", "--deployments", str(path), "--days", "0.05", "--json", "--no-progress", "--jobs", "1"]
    )
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert args.handler(args) == 0
    peaks = [d["peak_requests_per_second"] for d in json.loads(buffer.getvalue())["deployments"]]
    assert peaks == [0.000123, 20.0]


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (
            ("ttftP95Ms: 1000", "ttftP95Ms: -3"),
            "document 1: InferenceDeployment ml-serving/chat is invalid:\n  spec.slo.ttftP95Ms",
        ),
        (("requestsPerSecond: 44", "requestsPerSecond: 0"), "document 1: spec.demand.requestsPerSecond"),
        (("preferredRegions: [de-lu]", "preferredRegions: [eu-fr]"), "spec.placement.preferredRegions[0]: 'eu-fr'"),
        (
            ("gridshift.dev/simulate-trace: code", "gridshift.dev/simulate-trace: chat2"),
            "document 2: metadata.annotations",
        ),
        (("gpuTypes: [NVIDIA-H100-80GB-HBM3]", "gpuTypes: [NVIDIA-A100-80GB]"), "spec.replica.gpuTypes[0]"),
        (("kind: InferenceDeployment", "kind: RegionalCluster"), "kind must be InferenceDeployment"),
    ],
)
def test_a_bad_field_is_refused_naming_file_document_and_field(
    edit: tuple[str, str], field: str, tmp_path: Path
) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(EXAMPLE.read_text().replace(*edit, 1))
    with pytest.raises(SimulationInputError) as caught:
        load_deployments(path, SimulationSettings(days=0.1), TRACES)
    assert f"--deployments: {path}" in str(caught.value)
    assert field in str(caught.value)


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (
            ("requestsPerSecond: 44", "requestsPerSecond: 100000"),
            r"spec\.demand\.requestsPerSecond, spec\.capacity\.maxReplicas: deployment chat: its peak needs \d+ "
            r"replicas, above maxReplicas 32",
        ),
        (
            ("gpusPerReplica: 1", "gpusPerReplica: 8"),
            r"spec\.model\.source, spec\.replica\.gpusPerReplica: deployment chat: no GPU profile for .* x8",
        ),
        (
            ("ttftP95Ms: 1000", "ttftP95Ms: 1"),
            r"spec\.slo\.ttftP95Ms, spec\.slo\.tpotP95Ms: deployment chat: .* cannot meet TTFT 1\.0 ms",
        ),
    ],
)
def test_what_the_replay_cannot_derive_names_the_file_document_and_fields(
    edit: tuple[str, str], named: str, tmp_path: Path
) -> None:
    # Found in review: "error: deployment chat: its peak needs 11375 replicas, above maxReplicas 32", naming
    # neither the file nor the fields to change, where validation errors name both.
    path = tmp_path / "d.yaml"
    path.write_text(EXAMPLE.read_text().replace(*edit, 1))
    args = build_parser().parse_args(["simulate", "--deployments", str(path), "--days", "0.05", "--no-progress"])
    with pytest.raises(UsageError, match=rf"^--deployments: {re.escape(str(path))} document 1: {named}"):
        args.handler(args)


def test_a_max_replicas_at_the_slo_peak_is_replayed_though_the_per_minute_floor_asks_more(tmp_path: Path) -> None:
    # Found in regression review: a refusal added for an impossible --minute-miss compared the floor's count at the
    # peak with maxReplicas, and refused (under the default floor, no flag given) a file that replayed before; the
    # sizing holds its counts to maxReplicas, and only a fleet too small for them is refused (runner).
    from gridshift.cli.simulate import price_csv_parser
    from gridshift.profiles_catalog import default_performance_models
    from gridshift.simulation.data import load_prices
    from gridshift.simulation.runner import prepare_replay

    settings = SimulationSettings(days=1.0)
    prices = load_prices(
        [], fx_to_usd=settings.fx_to_usd, markets=list(settings.markets), parser=price_csv_parser(), timezone=None
    )
    settings = replace(settings, markets=tuple(p.market for p in prices))
    models = default_performance_models()
    chat = prepare_replay(settings, TRACES, prices, models, load_deployments(EXAMPLE, settings, TRACES)).deployments[0]
    peak = int(chat.needed.max())
    assert chat.minute_capacity_rps is not None and chat.rate_rps.max() / chat.minute_capacity_rps > peak
    path = tmp_path / "d.yaml"
    path.write_text(EXAMPLE.read_text().replace("maxReplicas: 32", f"maxReplicas: {peak}", 1))
    replay = prepare_replay(settings, TRACES, prices, models, load_deployments(path, settings, TRACES))
    assert replay.deployments[0].setup.max_replicas == peak


def test_neither_a_count_nor_a_file_is_a_usage_error() -> None:
    from gridshift.cli.simulate import build_settings

    args = build_parser().parse_args(["simulate", "--deployments", "no-such.yaml"])
    with pytest.raises(UsageError, match="neither a number of deployments nor a YAML file"):
        build_settings(args)


def test_a_file_that_is_not_utf8_is_refused_naming_the_flag_and_the_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(EXAMPLE.read_text().replace("chat", "chät", 1).encode("latin-1"))
    with pytest.raises(SimulationInputError, match=rf"--deployments: {path} is not UTF-8 text"):
        load_deployments(path, SimulationSettings(days=0.1), TRACES)


def test_fields_at_values_that_change_nothing_are_replayed(tmp_path: Path) -> None:
    # Self-review: an empty clusterSelector (it matches every cluster) was refused like one that selects.
    path = tmp_path / "d.yaml"
    path.write_text(
        "apiVersion: gridshift.dev/v1alpha1\nkind: InferenceDeployment\nmetadata: {name: chat, namespace: ml}\n"
        "spec:\n  model: {servedName: chat, source: meta-llama/Meta-Llama-3-8B-Instruct}\n"
        "  replica: {gpuTypes: [NVIDIA-H100-80GB-HBM3]}\n  slo: {ttftP95Ms: 1000, tpotP95Ms: 50}\n"
        "  demand: {requestsPerSecond: 20}\n  placement: {clusterSelector: {}, allowedRegions: []}\n"
        "  capacity: {minRegions: 1, minReplicas: 1}\n  migration: {mode: Auto}\n"
    )
    assert [s.name for s in load_deployments(path, SimulationSettings(days=0.1), TRACES)] == ["chat"]


@pytest.mark.parametrize(
    ("added", "field"),
    [
        ("  placement:\n    allowedRegions: [de-lu]", "spec.placement.allowedRegions"),
        ("  placement:\n    forbiddenRegions: [us-tex-erco]", "spec.placement.forbiddenRegions"),
        ("  placement:\n    clusterSelector: {matchLabels: {tier: a}}", "spec.placement.clusterSelector"),
        ("  capacity:\n    minReplicas: 0", "spec.capacity.minReplicas"),
        ("  capacity:\n    minRegions: 2", "spec.capacity.minRegions"),
        ("  migration:\n    mode: Advisory", "spec.migration.mode"),
        ("  carbon:\n    maxGramsPerKwh: 300", "spec.carbon.maxGramsPerKwh"),
        # Found in review: accepted and dropped, the deployment replayed without its carbon price.
        ("  carbon:\n    priceUsdPerTonne: 500", "spec.carbon.priceUsdPerTonne"),
    ],
)
def test_what_the_replay_does_not_model_is_refused_naming_the_field(added: str, field: str, tmp_path: Path) -> None:
    # Found in review: a deployment allowed only in DE-LU was moved to Texas by the replay, and the "savings"
    # of a placement its CR forbids were reported (0.40 USD against 1.67 USD in DE-LU alone), without a word;
    # minReplicas 0 was raised to 1 the same way.
    path = tmp_path / "d.yaml"
    path.write_text(
        "apiVersion: gridshift.dev/v1alpha1\nkind: InferenceDeployment\nmetadata: {name: chat, namespace: ml}\n"
        "spec:\n  model: {servedName: chat, source: meta-llama/Meta-Llama-3-8B-Instruct}\n"
        "  replica: {gpuTypes: [NVIDIA-H100-80GB-HBM3]}\n  slo: {ttftP95Ms: 1000, tpotP95Ms: 50}\n"
        f"  demand: {{requestsPerSecond: 20}}\n{added}\n"
    )
    with pytest.raises(SimulationInputError, match=rf"document 1: {field}: the replay does not model"):
        load_deployments(path, SimulationSettings(days=0.1), TRACES)


@pytest.mark.parametrize("value", ["\u00b2", "\u0663", "\uff15"])
def test_a_count_of_other_digits_is_a_usage_error_not_a_traceback(value: str) -> None:
    # Review: str.isdigit holds for "²", which int() refuses: a traceback.
    from gridshift.cli.simulate import build_settings

    args = build_parser().parse_args(["simulate", "--deployments", value])
    with pytest.raises(UsageError, match="--deployments"):
        build_settings(args)


def test_request_classes_are_refused_the_trace_gives_the_sizes(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(
        "apiVersion: gridshift.dev/v1alpha1\nkind: InferenceDeployment\nmetadata: {name: chat, namespace: ml}\n"
        "spec:\n  model: {servedName: chat, source: meta-llama/Meta-Llama-3-8B-Instruct}\n"
        "  replica: {gpuTypes: [NVIDIA-H100-80GB-HBM3]}\n  slo: {ttftP95Ms: 1000, tpotP95Ms: 50}\n"
        "  demand:\n    requestsPerSecond: 20\n    requestClasses:\n"
        "    - {name: long, share: 1.0, promptTokens: 30000, outputTokens: 200}\n"
    )
    with pytest.raises(SimulationInputError, match=r"document 1: spec\.demand\.requestClasses: the replay does not"):
        load_deployments(path, SimulationSettings(days=0.1), TRACES)


def _chat(namespace: str | None, rate: int = 20) -> str:
    where = f", namespace: {namespace}" if namespace else ""
    return (
        f"apiVersion: gridshift.dev/v1alpha1\nkind: InferenceDeployment\nmetadata: {{name: chat{where}}}\n"
        "spec:\n  model: {servedName: chat, source: meta-llama/Meta-Llama-3-8B-Instruct}\n"
        f"  replica: {{gpuTypes: [NVIDIA-H100-80GB-HBM3]}}\n  slo: {{ttftP95Ms: 1000, tpotP95Ms: 50}}\n"
        f"  demand: {{requestsPerSecond: {rate}}}\n"
    )


def test_one_name_in_two_namespaces_is_two_deployments_shown_as_namespace_and_name(tmp_path: Path) -> None:
    # Found in review: two InferenceDeployments named chat in different namespaces (different objects) were
    # refused as "metadata.name repeats: ['chat', 'chat']".
    path = tmp_path / "d.yaml"
    path.write_text(_chat("team-a") + "---\n" + _chat("team-b", rate=30) + "---\n" + EXAMPLE.read_text())
    setups = load_deployments(path, SimulationSettings(days=0.1), TRACES)
    assert [(s.name, s.peak_requests_per_second) for s in setups] == [
        ("team-a/chat", 20.0),
        ("team-b/chat", 30.0),
        ("ml-serving/chat", 44.0),
        ("coder", 20.0),
    ]
    args = build_parser().parse_args(
        ["simulate", "--deployments", str(path), "--days", "0.05", "--json", "--no-progress", "--jobs", "1"]
    )
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert args.handler(args) == 0
    names = ["team-a/chat", "team-b/chat", "ml-serving/chat", "coder"]
    assert [d["name"] for d in json.loads(buffer.getvalue())["deployments"]] == names


@pytest.mark.parametrize(
    ("namespaces", "named"),
    [
        (["team-a", "team-a"], "document 2: InferenceDeployment team-a/chat is also document 1"),
        ([None, None], "document 2: InferenceDeployment chat is also document 1"),
        # Found in review: no namespace and `default` were two deployments; kubectl apply makes them one.
        ([None, "default"], "document 2: InferenceDeployment default/chat is also document 1"),
    ],
)
def test_one_name_twice_in_one_namespace_is_refused_naming_both(
    namespaces: list[str | None], named: str, tmp_path: Path
) -> None:
    path = tmp_path / "d.yaml"
    path.write_text("---\n".join(_chat(namespace) for namespace in namespaces))
    with pytest.raises(SimulationInputError, match=r"metadata\.name repeats in one namespace") as caught:
        load_deployments(path, SimulationSettings(days=0.1), TRACES)
    assert named in str(caught.value)


def test_a_kind_list_is_read_item_by_item_as_gridshift_validate_reads_it(tmp_path: Path) -> None:
    # Found in review: the `kind: List` that `kubectl get idep -o yaml` writes, which gridshift validate accepts,
    # was refused ("kind must be InferenceDeployment").
    import yaml

    items = list(yaml.safe_load_all(EXAMPLE.read_text()))
    path = tmp_path / "list.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
    assert [s.name for s in load_deployments(path, SimulationSettings(days=0.1), TRACES)] == ["chat", "coder"]
    items[1]["spec"]["slo"]["ttftP95Ms"] = -3
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
    with pytest.raises(
        SimulationInputError, match=rf"(?s)--deployments: {path} document 1 item 2: .*spec\.slo\.ttftP95Ms"
    ):
        load_deployments(path, SimulationSettings(days=0.1), TRACES)
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [items[0], "chat"]}))
    with pytest.raises(SimulationInputError, match=rf"{path} document 1 item 2 is not a mapping"):
        load_deployments(path, SimulationSettings(days=0.1), TRACES)
