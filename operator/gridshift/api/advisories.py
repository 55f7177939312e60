"""What the chart's admission policies warn about, never refuse (charts/gridshift/templates/admissionpolicy.yaml),
in the same words, for `gridshift validate`: an engine image that is not pinned, and a feed settings block that
its feed's `type` does not name (kept, and ignored).

The policies are CEL in the chart; this is their twin, as the pydantic rules are the CRDs' (tests/chart
compares both on a real kube-apiserver)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel

from gridshift.api.carbon import CarbonFeedSpec, CarbonFeedType
from gridshift.api.inference_deployment import InferenceDeployment
from gridshift.api.regional_cluster import PriceFeedSpec, PriceFeedType, RegionalCluster


def unpinned_image(image: str, require_digest: bool = True) -> str | None:
    """The warning about `spec.engine.image`, None when it is pinned (a digest; or a version tag when digests
    are not required). A registry's port is not a tag: only the last path segment is read."""
    if "@sha256:" in image:
        return None
    last = image.split("@")[0].split("/")[-1]
    tag = last.split(":")[1] if ":" in last else ""
    if tag in ("", "latest"):
        return (
            f"spec.engine.image {image} is not pinned: with no tag or :latest every pull may bring a different "
            "vLLM build to each region; pin a digest (image@sha256:...) or at least a version tag"
        )
    if require_digest:
        return (
            f"spec.engine.image {image} is pinned by tag only: a tag can be re-pushed; add its digest "
            "(image@sha256:...) so every region runs the same build"
        )
    return None


def ignored_settings(path: str, feed: PriceFeedSpec | CarbonFeedSpec, types: type[StrEnum]) -> list[str]:
    """A warning for each settings block of `feed` other than the one its `type` names: the operator never
    reads it. Admission keeps it (a refusal broke `kubectl patch --type=merge` switching `type`, which leaves
    the old block), so the user is told instead."""
    by_wire_name = {info.alias or name: name for name, info in type(feed).model_fields.items()}
    return [
        f"{path}.{kind.value} is set but ignored: type is {feed.type.value}"
        for kind in types
        if kind is not feed.type and getattr(feed, by_wire_name[kind.value]) is not None
    ]


def admission_warnings(parsed: BaseModel) -> list[str]:
    """The chart's admission policies' warnings (default values) for one parsed resource."""
    if isinstance(parsed, InferenceDeployment):
        image = unpinned_image(parsed.spec.engine.image)
        return [] if image is None else [image]
    if isinstance(parsed, RegionalCluster):
        spec = parsed.spec
        warnings = ignored_settings("spec.priceFeed", spec.price_feed, PriceFeedType)
        if spec.carbon_feed is not None:
            warnings += ignored_settings("spec.carbonFeed", spec.carbon_feed, CarbonFeedType)
        return warnings
    return []
