"""`python -m gridshift_dev image` (`make image`): the operator's OCI image, built without a container engine.

Three layers, each cached under `~/.cache/gridshift/image/` by what goes into it, so an edit of the
operator's code rebuilds only the last one (seconds):

1. **base**: Debian bookworm (`essential` variant, merged /usr) with `python3`, `ca-certificates` and
   `libstdc++6` from Debian's archive and security updates, made by `mmdebstrap`; documentation and locales
   left out; the user `nonroot` (UID/GID 65532) added. Rebuilt when the recipe changes or after
   `BASE_MAX_AGE_DAYS`, so security updates arrive without a cache wipe.
2. **deps**: a virtualenv `/opt/gridshift` (no pip in it) with the operator's runtime dependencies
   exactly as `requirements-image.txt` pins them, hashes checked: wheels downloaded on the host,
   installed by the image's own Python inside a chroot of the base.
3. **app**: the project's wheel (`gridshift` only; `gridshift_dev` and the optional extras stay out),
   installed the same way into a hard-linked copy of the deps tree; the files its RECORD lists form
   the layer.

`umoci` writes the layers and the image configuration into an OCI image layout
(`build/image/oci`, tag = the project version); `build/image/image.json` records the manifest
digest, sizes and build times. Why these tools: no Docker engine here; buildah would need a
container runtime and storage driver for every `RUN`, while mmdebstrap builds a Debian root
filesystem from packages alone and umoci edits an image layout on disk, both from Debian. The
steps use `chroot`, so the build runs as root (CI and this machine are; elsewhere use the
`Containerfile` with a container engine).

The image's configuration is the chart's: user 65532, entrypoint `kopf run` (values `command`),
the chart's fixed arguments as the default command, the probe and metrics ports exposed;
`tests/image/test_image_config.py` checks each against `charts/gridshift/values.yaml`.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_ROOT = Path(os.environ.get("GRIDSHIFT_CACHE", Path.home() / ".cache" / "gridshift")) / "image"
LOCK_FILE = REPO_ROOT / "requirements-image.txt"
OUT_DIR = REPO_ROOT / "build" / "image"

RECIPE_VERSION = "1"
"""Bump when the build steps change: every cached layer is rebuilt."""
DEBIAN_SUITE = "bookworm"
DEBIAN_SOURCES = (
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
)
DEBIAN_PACKAGES = ("python3", "ca-certificates", "libstdc++6")
"""libstdc++6: the C++ runtime that manylinux wheels (numpy, scipy's HiGHS) link against."""
DPKG_EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*", "/usr/share/locale/*")
DPKG_INCLUDES = ("/usr/share/doc/*/copyright",)
"""Licences stay in the image; the rest of the documentation does not."""
BASE_MAX_AGE_DAYS = float(os.environ.get("GRIDSHIFT_IMAGE_BASE_MAX_AGE_DAYS", "7"))
PYTHON_VERSION = "3.11"
"""bookworm's python3; the wheels of requirements-image.txt are resolved for it."""
WHEEL_PLATFORMS = (
    *(f"manylinux_2_{minor}_x86_64" for minor in range(36, 4, -1)),
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
)
"""Wheel platforms bookworm's glibc 2.36 runs (pip does not widen a --platform by itself)."""
BUILD_PIP = "pip>=24.1"
"""Runs from its wheel inside the chroot to install the locked wheels; never part of the image."""

USER_ID = 65532
USER_NAME = "nonroot"
VENV = "/opt/gridshift"
IMAGE_NAME = "gridshift/gridshift"
ENTRYPOINT = ("kopf", "run")
"""The chart's values `command`."""
PROBE_PORT = 8080
METRICS_PORT = 9090
DEFAULT_ARGS = (
    "-m",
    "gridshift.shell.handlers",
    "--all-namespaces",
    "--standalone",
)
"""The chart's fixed arguments with the default probe port (templates/deployment.yaml)."""
ENV = (
    f"PATH={VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "PYTHONUNBUFFERED=1",
    # The root filesystem is read-only in the pod; bytecode is compiled at build time.
    "PYTHONDONTWRITEBYTECODE=1",
    "HOME=/home/nonroot",
)
SOURCE_URL = "https://github.com/gridshift/gridshift"


def _log(message: str) -> None:
    print(f"[image {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class ImageBuildError(RuntimeError):
    """A step of the build failed; the message names it and the end of its output."""


def _run(cmd: Sequence[str], *, what: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, env=env, cwd=cwd, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise ImageBuildError(f"{what} failed ({proc.returncode}): {' '.join(cmd)}\n{tail}")
    return proc.stdout


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def project_version(repo: Path = REPO_ROOT) -> str:
    version: str = tomllib.loads((repo / "pyproject.toml").read_text())["project"]["version"]
    return version


def runtime_requirements(repo: Path = REPO_ROOT) -> list[str]:
    """The operator's runtime dependencies as pyproject.toml lists them."""
    requirements: list[str] = tomllib.loads((repo / "pyproject.toml").read_text())["project"]["dependencies"]
    return requirements


def check_tools() -> None:
    """Root and the Debian tools the build runs, or an error saying how to get them."""
    if os.geteuid() != 0:
        raise ImageBuildError(
            "make image runs chroot and mmdebstrap in root mode: run it as root (sudo make image), "
            "or build the Containerfile with a container engine"
        )
    missing = [tool for tool in ("mmdebstrap", "umoci", "tar") if shutil.which(tool) is None]
    if missing:
        raise ImageBuildError(
            f"missing {', '.join(missing)}: apt-get install mmdebstrap umoci (make image-deps installs them)"
        )


# ---------------------------------------------------------------- 1. base


@dataclass(frozen=True)
class Base:
    tar: Path
    key: str
    packages: dict[str, str]
    built: float


def base_recipe() -> dict[str, Any]:
    return {
        "recipe": RECIPE_VERSION,
        "suite": DEBIAN_SUITE,
        "sources": DEBIAN_SOURCES,
        "packages": DEBIAN_PACKAGES,
        "excludes": DPKG_EXCLUDES,
        "includes": DPKG_INCLUDES,
        "user": [USER_NAME, USER_ID],
    }


def _packages_in(tar: Path) -> dict[str, str]:
    """Package -> version, read from the dpkg status file inside the base tarball."""
    status = _run(["tar", "-xOf", str(tar), "./var/lib/dpkg/status"], what="reading the base's dpkg status")
    packages: dict[str, str] = {}
    for stanza in status.split("\n\n"):
        fields = dict(re.findall(r"^(Package|Version): (.+)$", stanza, re.M))
        if "Package" in fields:
            packages[fields["Package"]] = fields.get("Version", "")
    return packages


def ensure_base(refresh: bool = False) -> Base:
    key = _key(base_recipe())
    folder = CACHE_ROOT / f"base-{key}"
    tar = folder / "base.tar"
    meta = folder / "base.json"
    if tar.exists() and meta.exists() and not refresh:
        recorded = json.loads(meta.read_text())
        age_days = (time.time() - recorded["built"]) / 86400
        if age_days < BASE_MAX_AGE_DAYS:
            _log(f"base {key}: cached ({age_days:.1f} days old; rebuilt after {BASE_MAX_AGE_DAYS:g})")
            return Base(tar, key, recorded["packages"], recorded["built"])
        _log(f"base {key}: {age_days:.1f} days old, rebuilding for Debian's security updates")
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    _log(f"base {key}: mmdebstrap {DEBIAN_SUITE} with {', '.join(DEBIAN_PACKAGES)} (about a minute)")
    user_hook = (
        f'echo "{USER_NAME}:x:{USER_ID}:{USER_ID}:{USER_NAME}:/home/{USER_NAME}:/usr/sbin/nologin" >> "$1/etc/passwd"'
        f' && echo "{USER_NAME}:x:{USER_ID}:" >> "$1/etc/group"'
        f' && echo "{USER_NAME}:!*:19000::::::" >> "$1/etc/shadow"'
        f' && mkdir -p "$1/home/{USER_NAME}" && chown {USER_ID}:{USER_ID} "$1/home/{USER_NAME}"'
    )
    partial = folder / "base.tar.partial"
    cmd = [
        "mmdebstrap",
        "--mode=root",
        "--variant=essential",
        f"--include={','.join(DEBIAN_PACKAGES)}",
        "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
        *(f"--dpkgopt=path-exclude={path}" for path in DPKG_EXCLUDES),
        *(f"--dpkgopt=path-include={path}" for path in DPKG_INCLUDES),
        f"--customize-hook={user_hook}",
        # Logs and caches of the install itself are not part of anybody's runtime.
        '--customize-hook=rm -rf "$1"/var/log/* "$1"/var/cache/debconf/*-old "$1"/var/lib/dpkg/*-old',
        "--format=tar",
        DEBIAN_SUITE,
        str(partial),
        *DEBIAN_SOURCES,
    ]
    env = dict(os.environ, SOURCE_DATE_EPOCH="1704067200")  # 2024-01-01: file times of the generated files
    _run(cmd, what="mmdebstrap", env=env)
    os.replace(partial, tar)
    packages = _packages_in(tar)
    built = time.time()
    meta.write_text(
        json.dumps({"key": key, "built": built, "packages": packages, "recipe": base_recipe()}, indent=1) + "\n"
    )
    _log(
        f"base {key}: {len(packages)} packages, {tar.stat().st_size / 2**20:.0f} MiB, {time.monotonic() - started:.0f}s"
    )
    return Base(tar, key, packages, built)


# ---------------------------------------------------------------- 2. deps


@dataclass(frozen=True)
class LockedRequirement:
    name: str
    version: str
    sha256: str


def read_lock(path: Path = LOCK_FILE) -> list[LockedRequirement]:
    """The pins of requirements-image.txt (`name==version --hash=sha256:...`)."""
    text = path.read_text().replace("\\\n", " ")
    pins = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)\s+--hash=sha256:([0-9a-f]{64})", line)
        if match is None:
            raise ImageBuildError(f"{path}: not a pinned requirement with one sha256 hash: {line!r}")
        pins.append(LockedRequirement(*match.groups()))
    return pins


def _platform_flags() -> list[str]:
    flags = ["--only-binary=:all:", "--python-version", PYTHON_VERSION, "--implementation", "cp"]
    flags += ["--abi", "cp" + PYTHON_VERSION.replace(".", "")]
    for platform in WHEEL_PLATFORMS:
        flags += ["--platform", platform]
    return flags


def write_lock(repo: Path = REPO_ROOT, path: Path = LOCK_FILE) -> list[LockedRequirement]:
    """Resolve the runtime dependencies for the image's Python and platform; pin each wheel by hash."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet"]
        cmd += ["--report", str(report), "--target", str(Path(scratch) / "never"), *_platform_flags()]
        _run([*cmd, *runtime_requirements(repo)], what="resolving the runtime dependencies")
        installs = json.loads(report.read_text())["install"]
    pins = []
    for item in installs:
        hashes = item["download_info"].get("archive_info", {}).get("hashes", {})
        if "sha256" not in hashes:
            raise ImageBuildError(f"{item['metadata']['name']}: the index gave no sha256 for its wheel")
        pins.append(LockedRequirement(item["metadata"]["name"], item["metadata"]["version"], hashes["sha256"]))
    pins.sort(key=lambda pin: pin.name.lower())
    header = (
        "# Runtime dependencies of the operator image, pinned with the hash of each wheel.\n"
        f"# Generated by `make image-lock` (python -m gridshift_dev image --lock) for CPython {PYTHON_VERSION}\n"
        "# on manylinux x86_64 (Debian bookworm) from pyproject.toml's [project] dependencies; do not edit.\n"
    )
    lines = [f"{pin.name}=={pin.version} \\\n    --hash=sha256:{pin.sha256}" for pin in pins]
    path.write_text(header + "\n".join(lines) + "\n")
    return pins


@dataclass(frozen=True)
class Deps:
    layout: Path
    rootfs: Path
    key: str


def _umoci(*args: str, what: str) -> str:
    return _run(["umoci", *args], what=what)


def _history(created: str, created_by: str) -> list[str]:
    return [f"--history.created={created}", f"--history.created_by={created_by}", "--history.author=gridshift"]


def _chroot_pip(rootfs: Path, python: str, *args: str) -> None:
    """Run pip from its wheel with `python` inside the chroot, offline, against /tmp/wheels."""
    pip_wheel = next((rootfs / "tmp" / "wheels").glob("pip-*.whl"))
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        # pyc files in checked-hash mode (py_compile honours it): the same bytes every build, valid
        # whatever the files' times.
        "SOURCE_DATE_EPOCH": "1704067200",
        "PIP_NO_CACHE_DIR": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_ROOT_USER_ACTION": "ignore",
    }
    cmd = ["chroot", str(rootfs), python, f"/tmp/wheels/{pip_wheel.name}/pip", "install", "--no-index"]
    cmd += ["--find-links", "/tmp/wheels", "--no-warn-script-location", *args]
    _run(cmd, what="pip install in the image's root filesystem", env=env)


def _download_wheels(pins: list[LockedRequirement], lock: Path, into: Path) -> None:
    into.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--require-hashes", "--dest", str(into)]
    _run([*cmd, *_platform_flags(), "-r", str(lock)], what="downloading the locked wheels")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "--dest",
            str(into),
            BUILD_PIP,
        ],
        what="downloading pip (the installer, not installed)",
    )
    _log(f"deps: {len(pins)} wheels, {sum(p.stat().st_size for p in into.glob('*.whl')) / 2**20:.0f} MiB downloaded")


def ensure_deps(base: Base, lock: Path = LOCK_FILE) -> Deps:
    pins = read_lock(lock)
    key = _key(RECIPE_VERSION, base.key, base.built, [asdict(pin) for pin in pins], BUILD_PIP, VENV)
    folder = CACHE_ROOT / f"deps-{key}"
    done = folder / "done.json"
    if done.exists():
        _log(f"deps {key}: cached ({len(pins)} locked wheels)")
        return Deps(folder / "oci", folder / "rootfs", key)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    started = time.monotonic()
    rootfs = folder / "rootfs"
    rootfs.mkdir()
    _log(f"deps {key}: unpacking the base, installing {len(pins)} locked wheels into {VENV}")
    _run(["tar", "-xf", str(base.tar), "-C", str(rootfs), "--numeric-owner"], what="unpacking the base")
    _download_wheels(pins, lock, folder / "wheels")
    wheels = rootfs / "tmp" / "wheels"
    shutil.copytree(folder / "wheels", wheels)
    shutil.copy(lock, wheels / "requirements.txt")
    _run(["chroot", str(rootfs), "/usr/bin/python3", "-m", "venv", "--without-pip", VENV], what="python3 -m venv")
    venv_version = re.search(r"^version = (\S+)", (rootfs / VENV.lstrip("/") / "pyvenv.cfg").read_text(), re.M)
    if venv_version is None or not venv_version[1].startswith(PYTHON_VERSION + "."):
        raise ImageBuildError(
            f"{DEBIAN_SUITE}'s python3 is {venv_version and venv_version[1]}; the lock is for {PYTHON_VERSION}"
        )
    _chroot_pip(
        rootfs,
        f"{VENV}/bin/python",
        "--require-hashes",
        "--no-deps",
        "--only-binary=:all:",
        "-r",
        "/tmp/wheels/requirements.txt",
    )
    shutil.rmtree(wheels)
    _clamp_times(rootfs / VENV.lstrip("/"), 1704067200)
    layout = folder / "oci"
    created = datetime.fromtimestamp(base.built, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    _umoci("init", "--layout", str(layout), what="umoci init")
    _umoci("new", "--image", f"{layout}:deps", what="umoci new")
    base_history = _history(created, f"mmdebstrap {DEBIAN_SUITE}: {', '.join(DEBIAN_PACKAGES)}")
    _umoci(
        "raw", "add-layer", "--image", f"{layout}:deps", *base_history,
        str(base.tar),
        what="umoci raw add-layer (base)",
    )  # fmt: skip
    _umoci(
        "insert", "--image", f"{layout}:deps", *_history(created, f"{VENV}: {len(pins)} locked runtime wheels"),
        str(rootfs / VENV.lstrip("/")), VENV,
        what="umoci insert (deps)",
    )  # fmt: skip
    done.write_text(json.dumps({"key": key, "seconds": round(time.monotonic() - started, 1)}) + "\n")
    _log(f"deps {key}: done in {time.monotonic() - started:.0f}s")
    return Deps(layout, rootfs, key)


# ---------------------------------------------------------------- 3. app


WHEEL_SOURCES = ("operator/gridshift", "pyproject.toml", "README.md")


def source_key(repo: Path = REPO_ROOT) -> str:
    """A digest of everything the wheel is built from."""
    digest = hashlib.sha256()
    for top in WHEEL_SOURCES:
        root = repo / top
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in paths:
            if "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            digest.update(str(path.relative_to(repo)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def build_wheel(repo: Path = REPO_ROOT) -> Path:
    key = source_key(repo)
    folder = CACHE_ROOT / f"wheel-{key}"
    wheels = sorted(folder.glob("gridshift-*.whl"))
    if wheels:
        _log(f"wheel {key}: cached")
        return wheels[0]
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        # A copy, so the build's egg-info and build/ folders never land in the working tree.
        source = Path(scratch) / "src"
        for top in WHEEL_SOURCES:
            target = source / top
            if (repo / top).is_dir():
                shutil.copytree(repo / top, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(repo / top, target)
        out = Path(scratch) / "dist"
        cmd = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(source)]
        _run(cmd, what="building the gridshift wheel")
        built = sorted(out.glob("gridshift-*.whl"))
        if len(built) != 1:
            raise ImageBuildError(f"pip wheel made {[p.name for p in built]}, expected one gridshift wheel")
        folder.mkdir(parents=True, exist_ok=True)
        wheel = folder / built[0].name
        shutil.copy(built[0], wheel)
    _log(f"wheel {key}: {wheel.name} in {time.monotonic() - started:.0f}s")
    return wheel


@contextlib.contextmanager
def _scratch_tree(rootfs: Path) -> Iterator[Path]:
    """A hard-linked copy of `rootfs` (pip only adds files, and replaces rather than rewrites, so the
    cached tree is never changed through a shared inode)."""
    scratch = Path(tempfile.mkdtemp(prefix="app-", dir=CACHE_ROOT))
    tree = scratch / "rootfs"
    try:
        _run(["cp", "-al", str(rootfs), str(tree)], what="hard-linked copy of the deps tree")
        yield tree
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _installed_files(tree: Path) -> list[Path]:
    """The files of the gridshift distribution in the tree's venv, from its RECORD, as absolute paths."""
    site = tree / VENV.lstrip("/") / "lib" / f"python{PYTHON_VERSION}" / "site-packages"
    records = list(site.glob("gridshift-*.dist-info/RECORD"))
    if len(records) != 1:
        raise ImageBuildError(f"expected one gridshift RECORD in {site}, found {records}")
    files = []
    for line in records[0].read_text().splitlines():
        relative = line.rsplit(",", 2)[0]
        if relative:
            files.append((site / relative).resolve())
    return files


def _git(*args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else ""


@dataclass
class ImageInfo:
    """What `make image` built: written to build/image/image.json."""

    layout: str
    tag: str
    name: str
    digest: str
    config_digest: str
    compressed_bytes: int
    uncompressed_bytes: int
    layers: list[dict[str, Any]]
    revision: str
    created: str
    base_key: str
    deps_key: str
    debian_packages: dict[str, str]
    python_packages: dict[str, str]
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def reference(self) -> str:
        return f"{self.layout}:{self.tag}"


def _blob(layout: Path, digest: str) -> Path:
    algorithm, hexdigest = digest.split(":", 1)
    return layout / "blobs" / algorithm / hexdigest


def read_manifest(layout: Path, tag: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(manifest digest, manifest, config) of `tag` in an OCI image layout."""
    index = json.loads((layout / "index.json").read_text())
    for entry in index["manifests"]:
        if entry.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
            manifest = json.loads(_blob(layout, entry["digest"]).read_text())
            config = json.loads(_blob(layout, manifest["config"]["digest"]).read_text())
            return str(entry["digest"]), manifest, config
    raise ImageBuildError(f"no tag {tag!r} in {layout}")


def _copy_layout(source: Path, target: Path) -> None:
    """An OCI layout copy whose blobs are hard links (content-addressed, never rewritten) and whose
    index is a file of its own (umoci rewrites it)."""
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    _run(["cp", "-al", str(source), str(target)], what="copying the deps layout")
    for name in ("index.json", "oci-layout"):
        copy = (target / name).read_bytes()
        (target / name).unlink()
        (target / name).write_bytes(copy)


def _config_flags(version: str, revision: str, created: str) -> list[str]:
    """umoci config's flags: the user, entrypoint, ports, environment and OCI labels of the image."""
    labels = {
        "org.opencontainers.image.title": "gridshift",
        "org.opencontainers.image.description": "gridshift operator: vLLM replicas placed across regions by $/token",
        "org.opencontainers.image.version": version,
        "org.opencontainers.image.revision": revision,
        "org.opencontainers.image.source": SOURCE_URL,
        "org.opencontainers.image.licenses": "Apache-2.0",
        "org.opencontainers.image.created": created,
        "org.opencontainers.image.base.name": f"debian:{DEBIAN_SUITE} (mmdebstrap essential)",
    }
    config_flags = [f"--config.user={USER_ID}:{USER_ID}", f"--config.workingdir=/home/{USER_NAME}"]
    config_flags += [f"--config.entrypoint={part}" for part in ENTRYPOINT]
    config_flags += [f"--config.cmd={part}" for part in DEFAULT_ARGS]
    config_flags += [f"--config.exposedports={port}/tcp" for port in (PROBE_PORT, METRICS_PORT)]
    config_flags += [f"--config.env={entry}" for entry in ENV]
    config_flags += [f"--config.label={name}={value}" for name, value in labels.items()]
    config_flags += [f"--created={created}", "--author=gridshift", "--no-history"]
    return config_flags


def assemble(base: Base, deps: Deps, wheel: Path, out: Path = OUT_DIR) -> ImageInfo:
    version = project_version()
    tag = version
    layout = out / "oci"
    revision = _git("rev-parse", "HEAD") or "unknown"
    if _git("status", "--porcelain", "--", *WHEEL_SOURCES):
        revision += "-dirty"  # built from uncommitted changes: the label must not claim the commit
    commit_time = _git("log", "-1", "--format=%ct")
    created = datetime.fromtimestamp(int(commit_time) if commit_time else time.time(), UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    started = time.monotonic()
    _copy_layout(deps.layout, layout)
    with _scratch_tree(deps.rootfs) as tree:
        wheels = tree / "tmp" / "wheels"
        wheels.mkdir(parents=True)
        shutil.copy(wheel, wheels / wheel.name)
        pip_wheel = sorted((deps.rootfs.parent / "wheels").glob("pip-*.whl"))[-1]
        shutil.copy(pip_wheel, wheels / pip_wheel.name)
        _chroot_pip(tree, f"{VENV}/bin/python", "--no-deps", f"/tmp/wheels/{wheel.name}")
        shutil.rmtree(wheels)
        _smoke_test(tree)
        stage = tree.parent / "stage"
        for path in _installed_files(tree):
            relative = path.relative_to(tree)
            (stage / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, stage / relative, follow_symlinks=False)
        python_packages = _python_packages(tree)
        app_bytes = _tree_bytes(stage)
        _clamp_times(stage, int(commit_time) if commit_time else 1704067200)
        app_history = _history(created, f"gridshift {version} ({wheel.name})")
        _umoci(
            "insert", "--image", f"{layout}:deps", "--tag", tag, *app_history,
            str(stage / VENV.lstrip("/")), VENV,
            what="umoci insert (app)",
        )  # fmt: skip
    config_flags = _config_flags(version, revision, created)
    _umoci("config", "--image", f"{layout}:{tag}", *config_flags, what="umoci config")
    _umoci("tag", "--image", f"{layout}:{tag}", "latest", what="umoci tag")
    _umoci("rm", "--image", f"{layout}:deps", what="umoci rm")
    _umoci("gc", "--layout", str(layout), what="umoci gc")
    digest, manifest, config = read_manifest(layout, tag)
    layers = [
        {"digest": layer["digest"], "bytes": layer["size"], "created_by": history.get("created_by", "")}
        for layer, history in zip(
            manifest["layers"], [h for h in config.get("history", []) if not h.get("empty_layer")], strict=False
        )
    ]
    info = ImageInfo(
        layout=str(layout),
        tag=tag,
        name=IMAGE_NAME,
        digest=digest,
        config_digest=manifest["config"]["digest"],
        compressed_bytes=sum(layer["size"] for layer in manifest["layers"]),
        uncompressed_bytes=_tree_bytes(deps.rootfs) + app_bytes,
        layers=layers,
        revision=revision,
        created=created,
        base_key=base.key,
        deps_key=deps.key,
        debian_packages=base.packages,
        python_packages=python_packages,
    )
    info.seconds["app"] = round(time.monotonic() - started, 1)
    return info


SMOKE_IMPORTS = ("gridshift.shell.handlers", "gridshift.service.wiring", "scipy.optimize", "numpy", "kopf")


def _smoke_test(tree: Path) -> None:
    """Import what the operator imports, as its user, in the finished tree: a shared library the
    wheels expect from the OS (libstdc++ for numpy) shows up here, not in a pod."""
    code = f"import {', '.join(SMOKE_IMPORTS)}; from scipy.optimize import milp; print('ok')"
    cmd = ["chroot", f"--userspec={USER_ID}:{USER_ID}", str(tree), f"{VENV}/bin/python", "-c", code]
    _run(
        cmd,
        what="importing the operator in the image",
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": f"/home/{USER_NAME}"},
    )


def _python_packages(tree: Path) -> dict[str, str]:
    site = tree / VENV.lstrip("/") / "lib" / f"python{PYTHON_VERSION}" / "site-packages"
    packages = {}
    for metadata in site.glob("*.dist-info/METADATA"):
        fields = dict(re.findall(r"^(Name|Version): (.+)$", metadata.read_text(errors="replace"), re.M))
        packages[fields["Name"]] = fields["Version"]
    return dict(sorted(packages.items(), key=lambda item: item[0].lower()))


def _clamp_times(root: Path, epoch: int) -> None:
    """Every file and folder of `root` dated `epoch` (the commit's time): the same tree, the same layer."""
    for directory, folders, files in os.walk(root):
        for name in [*folders, *files]:
            os.utime(os.path.join(directory, name), (epoch, epoch), follow_symlinks=False)
    os.utime(root, (epoch, epoch))


def _tree_bytes(root: Path) -> int:
    total = 0
    for directory, _, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(directory, name)).st_size
    return total


@contextlib.contextmanager
def _cache_lock() -> Iterator[None]:
    """One build at a time per cache (parallel test sessions share the cached layers)."""
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    with (CACHE_ROOT / ".build.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _log(f"another build holds {CACHE_ROOT / '.build.lock'}; waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def build(refresh_base: bool = False, out: Path = OUT_DIR) -> ImageInfo:
    check_tools()
    with _cache_lock():
        return _build(refresh_base, out)


def _build(refresh_base: bool, out: Path) -> ImageInfo:
    started = time.monotonic()
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    base = ensure_base(refresh_base)
    timings["base"] = round(time.monotonic() - t0, 1)
    t0 = time.monotonic()
    deps = ensure_deps(base)
    timings["deps"] = round(time.monotonic() - t0, 1)
    t0 = time.monotonic()
    wheel = build_wheel()
    timings["wheel"] = round(time.monotonic() - t0, 1)
    info = assemble(base, deps, wheel, out)
    info.seconds.update(timings)
    info.seconds["total"] = round(time.monotonic() - started, 1)
    (out / "image.json").write_text(json.dumps(asdict(info), indent=1) + "\n")
    return info


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "image",
        help="build the operator's OCI image without a container engine (or --lock its runtime wheels)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--out", type=Path, default=OUT_DIR, help=f"output folder (default: {OUT_DIR})")
    parser.add_argument("--refresh-base", action="store_true", help="rebuild the Debian base even if it is cached")
    parser.add_argument("--lock", action="store_true", help="re-resolve requirements-image.txt from pyproject.toml")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        if args.lock:
            pins = write_lock()
            print(f"wrote {LOCK_FILE.relative_to(REPO_ROOT)}: {len(pins)} pinned wheels")
            return 0
        info = build(args.refresh_base, args.out)
    except ImageBuildError as error:
        print(f"image: error: {error}", file=sys.stderr)
        return 1
    layers = ", ".join(f"{layer['bytes'] / 2**20:.0f}" for layer in info.layers)
    print(
        f"built {info.name}:{info.tag} in {info.seconds['total']:.0f}s "
        f"(base {info.seconds['base']:.0f}s, deps {info.seconds['deps']:.0f}s, wheel {info.seconds['wheel']:.0f}s, "
        f"app {info.seconds['app']:.0f}s)\n"
        f"  OCI layout {info.reference}  digest {info.digest}\n"
        f"  size {info.compressed_bytes / 2**20:.0f} MiB compressed ({layers} MiB per layer), "
        f"{info.uncompressed_bytes / 2**20:.0f} MiB unpacked\n"
        f"  push: skopeo copy oci:{info.reference} docker://REGISTRY/{info.name}:{info.tag}"
    )
    return 0
