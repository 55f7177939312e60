"""`make release` pins the packaged hub chart to the pushed image's digest, and only that."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

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


def test_the_printed_install_command_names_the_namespace(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found in review: without --namespace the operator went to `default`, while the docs put the member
    # kubeconfig Secrets it reads in gridshift-system.
    published = release.Release(
        "127.0.0.1:5000/gridshift/gridshift",
        DIGEST,
        {"gridshift": Path("gridshift-0.1.0.tgz")},
        {"gridshift": "127.0.0.1:5000/charts/gridshift:0.1.0"},
    )
    monkeypatch.setattr(release, "release", lambda *_, **__: published)
    args = argparse.Namespace(registry="127.0.0.1:5000", helm=Path("helm"), plain_http=True)
    assert release.run(args) == 0
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("install: ")]
    command = shlex.split(line.removeprefix("install: "))
    assert command[:4] == ["helm", "install", "gridshift", "oci://127.0.0.1:5000/charts/gridshift"]
    assert command[command.index("--namespace") + 1] == "gridshift-system" and "--create-namespace" in command
