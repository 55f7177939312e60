"""The labels and annotations gridshift puts on member-cluster objects: part of its API, defined once.

Prometheus recording rules, dashboards, PodMonitors and the operator's own queries select replicas
by these labels, and the operator recognises its objects by the owner annotations. Label values
are limited to 63 characters by Kubernetes; every value derived from user-chosen names goes through
`bounded_label_value`, so that any name the CRDs admit gives a valid label (a deployment whose
labels the apiserver refused would otherwise never run).

Ownership: a member object is gridshift's only when it carries MANAGED_BY=gridshift *and* the owner
annotations naming an InferenceDeployment on the hub by namespace, name and UID. Labels can be set by
anyone with write access to a namespace; the operator never counts, changes or deletes an object
whose owner annotations do not name a live InferenceDeployment (see gridshift.actuation.members).
"""

from __future__ import annotations

import hashlib
import re

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "gridshift"
DEPLOYMENT = "gridshift.dev/deployment"
"""Label: the InferenceDeployment on the hub, `deployment_label_value(namespace, name)`."""
DEPLOYMENT_NAMESPACE = "gridshift.dev/deployment-namespace"
"""Label: the InferenceDeployment's namespace on the hub (a namespace name always fits a label value)."""
GPU_TYPE = "gridshift.dev/gpu-type"
CLUSTER = "gridshift.dev/cluster"
"""Label: the RegionalCluster the object was created for, `bounded_label_value(name)`."""
SPEC_HASH = "gridshift.dev/spec-hash"
"""Annotation: digest of the rendered pod template and settings (re-apply only when it changes)."""
VARIANT = "gridshift.dev/variant"
"""Annotation: the spec.variants build a member Deployment's replicas run ("" the model's own). Read back where
the plan has no option for the Deployment's cluster and GPU type, so that it is rendered as it runs."""
GENERATION = "gridshift.dev/generation"
"""Annotation: the InferenceDeployment's metadata.generation a member Deployment was last rendered from (on
the Deployment's metadata, not its pod template: a new value is no rollout). A value other than the spec's
generation is an edit not yet applied there, which takes the planned --max-num-seqs past its dead band."""
MAX_NUM_SEQS_SINCE = "gridshift.dev/max-num-seqs-since"
"""Annotation: when (RFC 3339, UTC, whole seconds) a member Deployment's --max-num-seqs was last rendered a new
value. On the Deployment's metadata, not its pod template (a new value is no rollout); read back so that an
operator restart does not reset service.actuate's rollout interval (OperatorSettings.max_num_seqs_interval_seconds).
"""
OWNER = "gridshift.dev/owner"
"""Annotation: `<namespace>/<name>` of the owning InferenceDeployment on the hub (unbounded, exact)."""
OWNER_UID = "gridshift.dev/owner-uid"
"""Annotation: metadata.uid of the owning InferenceDeployment on the hub."""
GPU_PRODUCT_NODE_LABEL = "nvidia.com/gpu.product"
GPU_RESOURCE = "nvidia.com/gpu"

LABEL_VALUE_MAX = 63
HASH_HEX_DIGITS = 16
"""64 bits of SHA-256: a collision between two names needs ~2^32 names, not the 65,536 of a 32-bit hash."""
_LABEL_VALUE_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_STEM_MAX = LABEL_VALUE_MAX - HASH_HEX_DIGITS - 1
_DIGEST_FORM = re.compile(rf"(?:.{{1,{_STEM_MAX}}}-)?[0-9a-f]{{{HASH_HEX_DIGITS}}}")
"""What `bounded_label_value` makes of a text it cannot use as it is: a stem and the digest, or the digest."""


def digest(text: str, hex_digits: int = HASH_HEX_DIGITS) -> str:
    """A stable hex digest of `text` (SHA-256, truncated)."""
    return hashlib.sha256(text.encode()).hexdigest()[:hex_digits]


def _valid(text: str) -> bool:
    """Whether `text` is a label value as it is."""
    return len(text) <= LABEL_VALUE_MAX and not _LABEL_VALUE_CHARS.search(text) and _ends_alphanumeric(text)


def bounded_label_value(text: str) -> str:
    """`text` itself when it is a valid label value, else a readable prefix of it plus a 64-bit digest.

    Valid: at most 63 characters of [A-Za-z0-9._-], beginning and ending with an alphanumeric. The
    digest is of the whole original text, so two texts sharing a long prefix stay distinct. A valid text
    that has the digest form's shape takes the digest form too: used as it is, it would be another text's
    value (found in review: `ns.chat-xxx...-<16 hex>`, a name the CRD admits, was the label of a 205-character
    name in the same namespace, and each deployment's Service and PodDisruptionBudget selected the other's pods).
    """
    if _valid(text) and not _DIGEST_FORM.fullmatch(text):
        return text
    stem = _LABEL_VALUE_CHARS.sub("-", text)[:_STEM_MAX].strip("._-")
    return f"{stem}-{digest(text)}" if stem else digest(text)


def deployment_label_value(namespace: str, name: str) -> str:
    """Value of the DEPLOYMENT label (and of the Prometheus label `gridshift_dev_deployment`).

    `<namespace>.<name>` of the InferenceDeployment on the hub (a dot: label values may not hold a
    slash), bounded to 63 characters for long names.
    """
    return bounded_label_value(f"{namespace}.{name}")


def deployment_label_values(namespace: str, name: str) -> tuple[str, ...]:
    """Every DEPLOYMENT label value a deployment's member objects may carry: today's, and the text itself where
    releases before 4 December 2026 used it as it was (a valid value shaped like the digest form, relabelled by
    docs/security.md row 53), so that deletion finds the objects they labelled."""
    today = deployment_label_value(namespace, name)
    text = f"{namespace}.{name}"
    return (today, text) if _valid(text) and text != today else (today,)


def owner_value(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def _ends_alphanumeric(text: str) -> bool:
    return bool(text) and text[0].isalnum() and text[-1].isalnum()
