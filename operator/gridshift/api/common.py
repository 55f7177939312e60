"""Types shared by several gridshift.dev kinds: conditions, references, selectors."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import ROUND_UP, Decimal, localcontext
from typing import Annotated, Any, Literal

from pydantic import Field
from pydantic.alias_generators import to_snake
from pydantic.config import JsonDict
from pydantic_core import PydanticCustomError

from gridshift.api.base import ApiModel, CrossFieldRule
from gridshift.api.conditions import ConditionType

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
"""A Kubernetes object name (RFC 1123 subdomain), at most 253 characters: Secrets, for instance."""
SECRET_KEY = r"^[-._a-zA-Z0-9]+$"
"""A key of a Secret's data, as the apiserver allows them."""
LABEL_VALUE = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
"""A non-empty Kubernetes label value (at most 63 characters, set apart)."""
LABEL_KEY = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
"""A Kubernetes label key: an optional DNS-subdomain prefix and `/`, then a name of at most 63 characters."""
NO_SPACE = r"[^\p{Z}\p{Cc}]"
r"""Any character but a Unicode separator or control character. Not `\S`: the apiserver's RE2 reads
`\s` as ASCII whitespace and pydantic's engine as Unicode whitespace, so a value with a no-break space
was admitted by the CRD and refused by the operator (dropped without a word); both engines read
`\p{Z}` and `\p{Cc}` alike."""

WHITE_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
"""Unicode White_Space, what CEL's trim() removes (cel-go: strings.TrimSpace, Go's unicode.IsSpace). Not
Python's str.isspace(), which also holds U+001C..U+001F (bidi separators, not White_Space): found in review,
a csvReplay column ending in '(direct)' then U+001F was admitted by the apiserver and refused by pydantic."""


def strip_white_space(text: str) -> str:
    """`text` without the Unicode White_Space around it (WHITE_SPACE): as CEL's trim() reads it, so admission's
    two checks (pydantic, CEL) and the CSV reader's header names agree on where a name ends."""
    return text.strip(WHITE_SPACE)


VLLM_OPTION_VALUE = rf"^[^-\p{{Z}}\p{{Cc}}]{NO_SPACE}*$"
"""A value the operator passes to vLLM after a flag of its own (--model, --revision): no space, and no
leading '-', which vLLM's argparse reads as the next flag (the replicas then crash-loop on a missing
value instead of admission naming the field). Hugging Face ids and git refs never start with '-'."""

HTTP_URL = rf"^https?://[^/?#@\p{{Z}}\p{{Cc}}]+([/?#]{NO_SPACE}*)?$"
"""An http(s) URL without user:password@ (credentials belong in Secrets, and URLs reach logs)."""
REGION_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
CURRENCY_CODE = r"^[A-Z]{3}$"
# Conditions merge by type under server-side apply, as Kubernetes' own conditions do.
CONDITIONS_LIST_SCHEMA: JsonDict = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}
RegionName = Annotated[str, Field(min_length=1, max_length=63, pattern=REGION_NAME)]
GpuType = Annotated[str, Field(min_length=1, max_length=63, pattern=LABEL_VALUE)]
"""A value of the node label nvidia.com/gpu.product: it becomes a nodeSelector, so it must be a label value."""
LabelValue = Annotated[str, Field(max_length=63, pattern=r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")]
HttpUrl = Annotated[str, Field(min_length=8, max_length=2048, pattern=HTTP_URL)]
CREDENTIAL_QUERY = (
    r"(?i)^[^#]*[?&;]([^=&;#]*%[^=&;#]*=|([a-z0-9]+[-_.])*"
    r"([a-z]*(token|secret|passw(or)?d|credentials?)|(api|access|private|secret|subscription|client|app|auth)?key"
    r"|pwd|pass|sig(nature)?|auth(orization)?|bearer|jwt)([-_.]?v?[0-9]+)?[^=&;#a-z0-9]*=)"
)
"""A query parameter (before any #fragment) that carries a credential, in RE2 (CEL's `matches`, no look-ahead),
Python's and Go's JSON Schema `pattern` alike: a name ending in token, secret, password or credential(s), a key
(plain, or api/access/private/... key), pwd, pass, sig, signature, auth, authorization, bearer or jwt, with any
prefix words (x-api-key, subscription-key, api.key) and a version or punctuation suffix (access_token2,
api_token_v2, token[]; no backslash, which a CEL string would read as an escape); and any parameter whose name is
percent-encoded, which servers decode (api%5Fkey arrives as api_key) and this expression cannot. Found in review: an
httpJson url with ?apikey=... was admitted, where its own description sends credentials to headersSecretRef; then a
prometheusUrl's ?api_key=... was, and was even documented; then api%5Fkey, authorization, bearer, jwt, credentials
and the suffixed spellings passed. A pagination token (page_token) is refused too: the expression cannot tell it
from a credential. Other parameters (a proxy's tenant=, Thanos' partial_response=, dedup=) stay allowed."""


def credential_in_query(url: str) -> bool:
    """Whether `url`'s query string carries a credential (CREDENTIAL_QUERY)."""
    return re.search(CREDENTIAL_QUERY, url) is not None


def credential_query_message(field: str, readers: str, instead: str) -> str:
    """The refusal of a credential in `field`'s query string: who could read it there, and where it goes
    instead. It never quotes the URL (the credential is in it)."""
    return (
        f"{field} must not carry a credential in its query string (token, apiKey, key, secret, password...): "
        f"{readers} reads it; {instead}"
    )


def refuse_credential_query(url: str, message: str) -> str:
    """`url`, or a validation error with `message` (credential_query_message) if its query carries a credential."""
    if credential_in_query(url):
        raise PydanticCustomError("credential_in_query", message)
    return url


def credential_query_rule(field: str, instead: str, *, optional: bool = False) -> CrossFieldRule:
    """The rule of an object with the URL `field` (its wire name): a credential in its query string
    (CREDENTIAL_QUERY) is refused where the object is admitted (the CRD's CEL, `gridshift validate`), with a
    message naming `field` and saying where the credential goes `instead`. On the object, not on the field:
    the apiserver quotes a refused string field's value (`Invalid value: "<url>"`), an object's never.

    Admission only (CrossFieldRule.admission_only): a RegionalCluster stored before keeps working, and the
    apiserver ratchets the rule while the object is unchanged. An `optional` field sits on the spec, which
    every edit changes: its rule lets the stored value stay (oldSelf) while the rest of the spec changes."""
    attribute = to_snake(field)
    matches = f"self.{field}.matches('{CREDENTIAL_QUERY}')"
    if optional:
        kept = f"oldSelf.hasValue() && has(oldSelf.value().{field}) && oldSelf.value().{field} == self.{field}"
        cel = f"!has(self.{field}) || !{matches} || ({kept})"
    else:
        cel = f"!{matches}"

    def holds(obj: Any) -> bool:
        url = getattr(obj, attribute)
        return url is None or not credential_in_query(url)

    return CrossFieldRule(
        cel=cel,
        message=credential_query_message(field, "anyone who may read this RegionalCluster", instead),
        field=field,
        holds=holds,
        admission_only=True,
        optional_old_self=optional,
    )


PROMETHEUS_CREDENTIAL = (
    "gridshift has no Secret for a Prometheus credential: put a proxy before Prometheus that adds it (as a "
    "header) and give the proxy's URL; parameters that are not credentials (tenant=) stay allowed"
)
"""Where a Prometheus credential goes instead of a URL's query string (credential_query_message's `instead`)."""
Port = Annotated[int, Field(ge=1, le=65535)]
# Kubernetes resource.Quantity, e.g. "8", "500m", "64Gi".
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"

_NANO = Decimal("1e-9")
_QUANTITY_SUFFIX = {
    "m": Decimal("0.001"),
    **{suffix: Decimal(1000) ** (i + 1) for i, suffix in enumerate("kMGTPE")},
    **{f"{suffix}i": Decimal(1024) ** (i + 1) for i, suffix in enumerate("KMGTPE")},
}


def quantity_value(text: str) -> Decimal:
    """The value of a QUANTITY-shaped string, as the apiserver's CEL quantity() reads it (the pattern keeps
    every other shape out): exact, then rounded up to the nano as apimachinery's ParseQuantity does (so
    "1073741823.9999999999" is 1Gi to both, found in review). Not kubernetes.utils.parse_quantity: the api
    layer imports no cluster library (.importlinter, pure-core), and that one does not round."""
    number = text.rstrip("kKMGTPEim")
    suffix = text[len(number) :]
    with localcontext(prec=64):  # exact for the fields' 32 characters: no rounding but the nano's
        value = Decimal(number) * _QUANTITY_SUFFIX.get(suffix, Decimal(1))
        return value.quantize(_NANO, rounding=ROUND_UP)


class SecretKeyRef(ApiModel):
    """Points at one key of a Secret on the hub cluster."""

    name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN, description="Name of the Secret.")
    namespace: str | None = Field(
        default=None,
        min_length=1,
        max_length=63,
        pattern=DNS_LABEL,
        description="Namespace of the Secret. Defaults to the namespace the operator runs in.",
    )
    key: str = Field(min_length=1, max_length=253, pattern=SECRET_KEY, description="Key within the Secret's data.")


def _values_match_operator(requirement: LabelSelectorRequirement) -> bool:
    return (requirement.operator in ("In", "NotIn")) == bool(requirement.values)


class LabelSelectorRequirement(ApiModel):
    """A label selector requirement, as in Kubernetes' metav1.LabelSelectorRequirement."""

    cross_field_rules = (
        CrossFieldRule(
            cel="(self.operator == 'In' || self.operator == 'NotIn') == (size(self.values) > 0)",
            message="values must be set for In and NotIn, and empty for Exists and DoesNotExist",
            field="values",
            holds=_values_match_operator,
        ),
    )

    key: str = Field(
        min_length=1, max_length=317, pattern=LABEL_KEY, description="The label key the selector applies to."
    )
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(description="How the key relates to the values.")
    values: list[LabelValue] = Field(
        default_factory=list,
        max_length=64,
        description="Values for In and NotIn; must be empty for Exists and DoesNotExist.",
    )


def _label_keys_valid(selector: LabelSelector) -> bool:
    # fullmatch: with re.match, `$` also matches before a trailing newline, which CEL's RE2 refuses.
    return all(len(key) <= 317 and re.fullmatch(LABEL_KEY, key) for key in selector.match_labels)


class LabelSelector(ApiModel):
    """Selects RegionalClusters by their labels (matchLabels AND matchExpressions)."""

    cross_field_rules = (
        CrossFieldRule(
            # Map keys have no schema of their own in a CRD (no propertyNames): checked here.
            cel=f"self.matchLabels.all(k, size(k) <= 317 && k.matches(r'{LABEL_KEY}'))",
            message="matchLabels keys must be label keys ([prefix/]name, name at most 63 characters)",
            field="matchLabels",
            holds=_label_keys_valid,
        ),
    )

    match_labels: dict[str, LabelValue] = Field(
        default_factory=dict,
        max_length=64,
        description="Labels a cluster must carry, all of them.",
    )
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=list, max_length=32, description="Further requirements, all of them."
    )


CONDITION_TYPE = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
"""metav1.Condition's type pattern: a CamelCase name, optionally prefixed by a DNS subdomain and `/`."""
CONDITION_REASON = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
"""metav1.Condition's reason pattern: CamelCase (gridshift.api.conditions lists the reasons of each type)."""
MAX_CONDITIONS = 16
"""A bound on status.conditions, so that the CEL rule over them has a cost the apiserver accepts."""


CONDITION_MESSAGE_MAX = 32768
"""Longest condition message, as metav1.Condition allows."""


class Condition(ApiModel):
    """A status condition, following Kubernetes' metav1.Condition conventions (reason and time required)."""

    type: str = Field(
        min_length=1, max_length=316, pattern=CONDITION_TYPE, description="Condition type, e.g. Ready or SLOAtRisk."
    )
    status: Literal["True", "False", "Unknown"] = Field(description="Whether the condition holds.")
    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=CONDITION_REASON,
        description="CamelCase reason for the condition's status, for machines; docs/status.md lists them per type.",
    )
    message: str = Field(default="", max_length=CONDITION_MESSAGE_MAX, description="Human-readable details.")
    last_transition_time: datetime = Field(description="When the status last changed (RFC 3339).")
    observed_generation: int | None = Field(
        default=None, ge=0, description="The spec generation this condition was computed from."
    )


def conditions_field(conditions: tuple[ConditionType, ...]) -> Any:
    """The `conditions` list of a status: a map keyed by type (server-side apply merges by type), bounded;
    its description lists the condition types of `conditions` (gridshift.api.conditions)."""
    return Field(
        default_factory=list,
        max_length=MAX_CONDITIONS,
        json_schema_extra=CONDITIONS_LIST_SCHEMA,
        description=f"{', '.join(c.type for c in conditions)} (docs/status.md).",
    )
