"""The operator image (`make image`) is what the chart expects, carries the runtime dependencies only,
and is reproducible; the Containerfile and the lock agree with the recipe. The image itself runs the
operator in tests/e2e/test_image_install.py."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

from gridshift_dev import image
from tests.chart.conftest import CHART_DIR, Helm
from tests.conftest import REPO_ROOT

OPTIONAL_DISTRIBUTIONS = {"matplotlib", "nvidia-ml-py", "contourpy", "kiwisolver", "pillow", "fonttools"}
"""matplotlib and its own dependencies, NVML: extras the operator never needs."""


def values() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    return loaded


def image_config(info: image.ImageInfo) -> dict[str, Any]:
    _, _, config = image.read_manifest(Path(info.layout), info.tag)
    return config


def chart_container(helm: Helm) -> dict[str, Any]:
    deployment = next(o for o in yaml.safe_load_all(helm.template().stdout) if o and o["kind"] == "Deployment")
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


@pytest.mark.image
def test_image_config_is_what_the_chart_runs(operator_image: image.ImageInfo, helm: Helm) -> None:
    config = image_config(operator_image)["config"]
    chart = values()
    container = chart_container(helm)
    pod = chart["podSecurityContext"]
    assert config["User"] == f"{pod['runAsUser']}:{pod['runAsGroup']}" == "65532:65532"
    assert config["Entrypoint"] == chart["command"] == container["command"]
    # The image's default arguments are the chart's with default values, so `podman run IMAGE` acts as the pod.
    assert config["Cmd"] == container["args"]
    ports = {f"{chart['operator'][key]}/tcp" for key in ("probePort", "metricsPort")}
    assert set(config["ExposedPorts"]) == ports == {f"{p['containerPort']}/tcp" for p in container["ports"]}
    env = dict(entry.split("=", 1) for entry in config["Env"])
    assert env["PATH"].startswith(f"{image.VENV}/bin:")
    assert env["PYTHONDONTWRITEBYTECODE"] == "1", "the root filesystem is read-only in the pod"
    chart_yaml = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == chart_yaml["appVersion"] == operator_image.tag
    assert labels["org.opencontainers.image.revision"].split("-")[0] == operator_image.revision.split("-")[0]


@pytest.mark.image
def test_the_image_carries_the_locked_runtime_wheels_only(operator_image: image.ImageInfo) -> None:
    installed = {name.lower(): version for name, version in operator_image.python_packages.items()}
    locked = {pin.name.lower(): pin.version for pin in image.read_lock()}
    assert installed.pop("gridshift") == image.project_version()
    assert installed == locked
    assert not OPTIONAL_DISTRIBUTIONS & set(installed)
    assert not {"pip", "setuptools"} & set(installed), "no installer in the runtime"
    assert operator_image.debian_packages["python3"].startswith(image.PYTHON_VERSION)
    assert {"libstdc++6", "ca-certificates"} <= set(operator_image.debian_packages)
    assert not {"apt", "perl", "python3-pip"} & set(operator_image.debian_packages)


@pytest.mark.image
def test_the_build_is_reproducible_and_reports_its_size(operator_image: image.ImageInfo, tmp_path: Path) -> None:
    again = image.build(out=tmp_path / "again")
    assert again.digest == operator_image.digest, "the same tree and cached layers must give the same manifest"
    recorded = json.loads((Path(operator_image.layout).parent / "image.json").read_text())
    assert recorded["digest"] == operator_image.digest
    assert 50 * 2**20 < recorded["compressed_bytes"] < 250 * 2**20
    assert [layer["created_by"].split(":")[0].split(" ")[0] for layer in recorded["layers"]] == [
        "mmdebstrap",
        image.VENV,
        "gridshift",
    ]
    assert again.seconds["base"] < 5 and again.seconds["deps"] < 5, "cached layers are reused"


def test_the_lock_satisfies_the_runtime_dependencies() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    pins = {pin.name.lower().replace("_", "-"): pin.version for pin in image.read_lock()}
    for line in project["dependencies"]:
        requirement = Requirement(line)
        name = requirement.name.lower().replace("_", "-")
        assert name in pins, f"{name} is a runtime dependency but requirements-image.txt does not pin it"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements-image.txt pins {name}=={pins[name]}, outside pyproject's {requirement.specifier}: "
            "run `make image-lock`"
        )
    assert not OPTIONAL_DISTRIBUTIONS & set(pins)


def test_a_malformed_lock_line_is_named(tmp_path: Path) -> None:
    lock = tmp_path / "lock.txt"
    lock.write_text("kopf==1.0\n")
    with pytest.raises(image.ImageBuildError, match=r"kopf==1\.0"):
        image.read_lock(lock)


def containerfile_instructions() -> list[tuple[str, str]]:
    text = (REPO_ROOT / "Containerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def test_the_containerfile_builds_what_make_image_builds() -> None:
    instructions = containerfile_instructions()
    final = instructions[max(i for i, (k, _) in enumerate(instructions) if k == "FROM") :]
    args = dict(rest.split("=", 1) for keyword, rest in instructions if keyword == "ARG")
    assert args["DEBIAN"].endswith(f"debian:{image.DEBIAN_SUITE}-slim")
    runs = " ".join(rest for keyword, rest in final if keyword == "RUN")
    installed = re.search(r"--no-install-recommends ([a-z0-9+. -]+?) &&", runs)
    assert installed is not None and set(installed[1].split()) == set(image.DEBIAN_PACKAGES)
    assert f"{image.USER_NAME}:x:{image.USER_ID}:{image.USER_ID}:" in runs
    single = {keyword: rest for keyword, rest in final}
    assert single["USER"] == f"{image.USER_ID}:{image.USER_ID}"
    assert json.loads(single["ENTRYPOINT"]) == list(image.ENTRYPOINT)
    assert json.loads(single["CMD"]) == list(image.DEFAULT_ARGS)
    assert set(single["EXPOSE"].split()) == {f"{image.PROBE_PORT}/tcp", f"{image.METRICS_PORT}/tcp"}
    assert {rest for keyword, rest in final if keyword == "ENV"} == set(image.ENV)
    build_runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    assert "--require-hashes" in build_runs and "requirements-image.txt" in build_runs
    assert any(keyword == "COPY" and rest.startswith("operator/gridshift ") for keyword, rest in instructions)
