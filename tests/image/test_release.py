"""`make release` pins the packaged hub chart to the pushed image's digest, and only that."""

from __future__ import annotations

import pytest
import yaml

from gridshift_dev import release
from tests.chart.conftest import CHART_DIR

DIGEST = "sha256:" + "ab" * 32


def test_pinning_sets_repository_and_digest_and_keeps_everything_else() -> None:
    text = (CHART_DIR / "values.yaml").read_text()
    pinned = release.pin_image(text, "127.0.0.1:5000/gridshift/gridshift", DIGEST)
    before, after = yaml.safe_load(text), yaml.safe_load(pinned)
    assert after["image"] == {**before["image"], "repository": "127.0.0.1:5000/gridshift/gridshift", "digest": DIGEST}
    assert {k: v for k, v in after.items() if k != "image"} == {k: v for k, v in before.items() if k != "image"}
    assert len(pinned.splitlines()) == len(text.splitlines()), "comments and layout kept"


@pytest.mark.parametrize("digest", ["", "sha256:abc", "md5:" + "ab" * 16, DIGEST + "\n"])
def test_a_bad_digest_is_refused(digest: str) -> None:
    with pytest.raises(release.ReleaseError, match="--image-digest"):
        release.pin_image((CHART_DIR / "values.yaml").read_text(), "r/g", digest)


def test_values_without_an_image_map_are_refused() -> None:
    with pytest.raises(release.ReleaseError, match="no top-level `image:`"):
        release.pin_image("replicaCount: 1\n", "r/g", DIGEST)
