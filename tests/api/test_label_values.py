"""Label values derived from user-chosen names: valid for any name, and never one name's value for another.

The `gridshift.dev/deployment` value selects a deployment's replicas in every Service, NetworkPolicy,
PodDisruptionBudget and Deployment selector gridshift renders, and in its PromQL: two deployments with one
value would serve, evict and be measured as one.
"""

from __future__ import annotations

import re
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from gridshift.actuation.render import render_workload
from gridshift.api.labels import LABEL_VALUE_MAX, bounded_label_value, deployment_label_value
from tests.actuation.test_render import TARGET, example

VALID = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)?")


def test_a_name_spelling_another_names_bounded_value_gets_a_value_of_its_own() -> None:
    # Found in review: a 52-character name the CRD admits was, with its namespace, the digest form of a
    # 205-character name's value in the same namespace.
    long_name = "chat-" + "x" * 200
    bounded = deployment_label_value("ml-serving", long_name)
    spelled = bounded.removeprefix("ml-serving.")
    assert deployment_label_value("ml-serving", spelled) != bounded


def test_their_services_do_not_select_each_others_replicas() -> None:
    long_name = "chat-" + "x" * 200
    spelled = deployment_label_value("ml-serving", long_name).removeprefix("ml-serving.")
    a = render_workload(example().spec, replace(TARGET, deployment_name=long_name))
    b = render_workload(example().spec, replace(TARGET, deployment_name=spelled))
    service_a, pods_b = a[1], b[0]["spec"]["template"]["metadata"]["labels"]
    assert not all(pods_b.get(key) == value for key, value in service_a["spec"]["selector"].items())


def test_ordinary_names_keep_their_values() -> None:
    # Only a text shaped like a digest form changes: an upgrade does not relabel (nor re-select) the rest.
    for text in ("ml-serving.chat", "NVIDIA-H100-80GB-HBM3", "eu-west", "ns.chat-v2-0123456789abcde", "a" * 63):
        assert bounded_label_value(text) == text


@given(st.text(alphabet="abcdefxyz0123456789.-_", min_size=1, max_size=120))
def test_a_bounded_value_is_valid_and_no_other_texts_value(text: str) -> None:
    value = bounded_label_value(text)
    assert len(value) <= LABEL_VALUE_MAX and VALID.fullmatch(value), value
    if value != text:
        # `value` stands for `text`: given as a text itself, it must come out as something else.
        assert bounded_label_value(value) != value
