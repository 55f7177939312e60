"""The member namespace of each hub namespace: a DNS label, and never shared by two hub namespaces."""

from __future__ import annotations

import re
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from gridshift.api.common import DNS_LABEL
from gridshift.api.regional_cluster import workload_namespace_for

NAMESPACES = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")
TEMPLATES = st.sampled_from(["gridshift-{namespace}", "{namespace}", "{namespace}-serving", "t0-{namespace}-x"])


def member_namespace(template: str, hub_namespace: str) -> str:
    return workload_namespace_for(SimpleNamespace(workload_namespace=template), hub_namespace)  # type: ignore[arg-type]


def test_a_long_namespaces_digest_form_is_not_another_namespaces_plain_form() -> None:
    # Found in review: the victim's 63-character namespace became `gridshift-team-b-xxx...-1203bbd0179aacea`
    # (62 characters: the cut ended in '-', stripped), which a 53-character hub namespace gave as it is.
    victim = "team-b-" + "x" * 56
    hashed = member_namespace("gridshift-{namespace}", victim)
    attacker = hashed.removeprefix("gridshift-")
    assert re.fullmatch(DNS_LABEL, attacker) and len(attacker) <= 63
    assert member_namespace("gridshift-{namespace}", attacker) != hashed


@settings(max_examples=300)
@given(template=TEMPLATES, a=NAMESPACES, b=NAMESPACES)
def test_no_two_hub_namespaces_share_a_member_namespace(template: str, a: str, b: str) -> None:
    first, second = member_namespace(template, a), member_namespace(template, b)
    assert len(first) <= 63 and re.fullmatch(DNS_LABEL, first)
    if a != b:
        assert first != second


@given(template=TEMPLATES, a=NAMESPACES)
def test_the_digest_form_of_one_is_never_the_plain_form_of_another(template: str, a: str) -> None:
    # Hashed forms are exactly 63 characters, plain ones shorter: the sets cannot meet (the property above
    # would need astronomically lucky draws to find a collision; this one checks the reason it holds).
    name = template.replace("{namespace}", a)
    assert (len(member_namespace(template, a)) == 63) == (len(name) >= 63)
