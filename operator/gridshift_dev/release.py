"""`python -m gridshift_dev release --registry HOST[:PORT]` (`make release`): publish to an OCI registry.

1. the image that `make image` built (`build/image/image.json`) is copied with `skopeo copy` from
   its OCI layout to `REGISTRY/gridshift/gridshift:VERSION`; the registry must answer with the
   digest of the built manifest (nothing re-encoded on the way);
2. the hub chart is packaged with its values pinned to that image **by digest**
   (`image.repository` = the pushed repository, `image.digest` = the digest), so every install of
   this chart version runs exactly those bytes, and the member chart is packaged as it is;
3. both charts are pushed with `helm push` to `oci://REGISTRY/charts`.

`tests/e2e/test_image_install.py` runs this against Debian's `docker-registry` on 127.0.0.1 and
installs the result with `helm install oci://...` on the real hub.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
CHARTS = REPO_ROOT / "charts"
HUB_CHART = "gridshift"
MEMBER_CHART = "gridshift-member"
IMAGE_INFO = REPO_ROOT / "build" / "image" / "image.json"
CHART_OUT = REPO_ROOT / "build" / "charts"


class ReleaseError(RuntimeError):
    """A step of the release failed; the message names it and the tool's output."""


def _run(cmd: list[str], what: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise ReleaseError(f"{what} failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr.strip()[-2000:]}")
    return proc.stdout


def pin_image(values_text: str, repository: str, digest: str) -> str:
    """values.yaml with `image.repository` and `image.digest` set, comments and layout kept."""
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        raise ReleaseError(f"--image-digest: expected sha256:<64 hex>, got {digest!r}")
    block = re.search(r"^image:\n((?:[ ]+.*\n|[ ]*#.*\n|\n)+)", values_text, re.M)
    if block is None:
        raise ReleaseError("values.yaml has no top-level `image:` map")
    body = block[1]
    for key, value in (("repository", repository), ("digest", digest)):
        body, count = re.subn(rf"^(  {key}:) .*$", rf"\g<1> {value}", body, count=1, flags=re.M)
        if count != 1:
            raise ReleaseError(f"values.yaml: no `image.{key}:` line to pin")
    return values_text[: block.start(1)] + body + values_text[block.end(1) :]


def package_chart(
    helm: Path, chart: Path, out: Path, *, image_repository: str | None = None, image_digest: str | None = None
) -> Path:
    """`helm package` of a copy of `chart` (values pinned to the image when given); the .tgz path."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / chart.name
        shutil.copytree(chart, copy)
        if image_repository and image_digest:
            values = copy / "values.yaml"
            values.write_text(pin_image(values.read_text(), image_repository, image_digest))
        stdout = _run([str(helm), "package", str(copy), "--destination", str(out)], f"helm package {chart.name}")
    match = re.search(r"saved it to: (\S+\.tgz)", stdout)
    if match is None:
        raise ReleaseError(f"helm package {chart.name}: no package path in {stdout!r}")
    return Path(match[1])


def push_image(layout_reference: str, target: str, *, tls_verify: bool) -> str:
    """`skopeo copy oci:LAYOUT:TAG docker://TARGET`; the digest the registry stored."""
    with tempfile.TemporaryDirectory() as scratch:
        digest_file = Path(scratch) / "digest"
        _run(
            [
                "skopeo", "copy", "--quiet", f"--dest-tls-verify={str(tls_verify).lower()}",
                "--digestfile", str(digest_file), f"oci:{layout_reference}", f"docker://{target}",
            ],
            f"skopeo copy to {target}",
        )  # fmt: skip
        return digest_file.read_text().strip()


def push_chart(helm: Path, package: Path, registry: str, *, plain_http: bool, env: dict[str, str] | None = None) -> str:
    """`helm push` to oci://REGISTRY/charts; the chart's OCI reference."""
    flags = ["--plain-http"] if plain_http else []
    output = _run([str(helm), "push", str(package), f"oci://{registry}/charts", *flags], "helm push", env)
    match = re.search(r"^Pushed: (\S+)", output + "\n", re.M)
    return match[1] if match else f"{registry}/charts/{package.name.rsplit('-', 1)[0]}"


@dataclass(frozen=True)
class Release:
    image: str
    digest: str
    charts: dict[str, Path]
    chart_references: dict[str, str]

    @property
    def pinned_image(self) -> str:
        return f"{self.image}@{self.digest}"


def release(
    registry: str,
    helm: Path,
    *,
    image_info: Path = IMAGE_INFO,
    out: Path = CHART_OUT,
    plain_http: bool = False,
    helm_env: dict[str, str] | None = None,
) -> Release:
    if not image_info.exists():
        raise ReleaseError(f"{image_info} is missing: run `make image` first")
    info: dict[str, Any] = json.loads(image_info.read_text())
    repository = f"{registry}/{info['name']}"
    digest = push_image(f"{info['layout']}:{info['tag']}", f"{repository}:{info['tag']}", tls_verify=not plain_http)
    if digest != info["digest"]:
        raise ReleaseError(f"the registry stored {digest}, but the built manifest is {info['digest']}")
    charts = {
        HUB_CHART: package_chart(helm, CHARTS / HUB_CHART, out, image_repository=repository, image_digest=digest),
        MEMBER_CHART: package_chart(helm, CHARTS / MEMBER_CHART, out),
    }
    references = {
        name: push_chart(helm, tgz, registry, plain_http=plain_http, env=helm_env) for name, tgz in charts.items()
    }
    return Release(repository, digest, charts, references)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "release",
        help="push the built image and the charts (pinned to its digest) to an OCI registry",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--registry", required=True, help="HOST[:PORT] of the registry, e.g. 127.0.0.1:5000")
    parser.add_argument("--helm", type=Path, default=Path(shutil.which("helm") or "helm"), help="helm binary")
    parser.add_argument("--plain-http", action="store_true", help="the registry speaks HTTP (a local test registry)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        result = release(args.registry, args.helm, plain_http=args.plain_http)
    except ReleaseError as error:
        print(f"release: error: {error}", file=sys.stderr)
        return 1
    print(f"image  {result.pinned_image}")
    for name, reference in result.chart_references.items():
        print(f"chart  oci://{reference}  ({result.charts[name].name})")
    # Found in review: printed without a namespace, the operator went to `default`, while the docs put the
    # member kubeconfig Secrets it reads in gridshift-system.
    print(
        f"install: helm install gridshift oci://{args.registry}/charts/{HUB_CHART} --version <chart version> "
        "--namespace gridshift-system --create-namespace"
    )
    return 0
