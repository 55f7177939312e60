#!/usr/bin/env python3
"""Build (or reuse) every binary the gridshift test clusters run on.

Everything is compiled from Go modules with the local Go toolchain; nothing is
downloaded as a prebuilt binary.  Results are cached under

    $GRIDSHIFT_CACHE/bin/<version-key>/      (default ~/.cache/gridshift)

and the script is idempotent: a binary that already exists (and runs) is
skipped.  Progress (which binary, elapsed time) goes to stderr, and a
``build-times.json`` next to the binaries records how long each one took.

Usage:  python3 e2e/cluster/gscluster/build.py [--only NAME ...] [--print-dir]

Only the standard library is used so this runs before the venv exists.
"""

from __future__ import annotations

import argparse

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__:
    from . import versions as V
else:  # run as a plain script: python3 e2e/cluster/gscluster/build.py
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import versions as V  # type: ignore[no-redef]

CACHE_ROOT = Path(os.environ.get("GRIDSHIFT_CACHE", Path.home() / ".cache" / "gridshift"))

K8S_BINARIES = ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"]
KSTATUS_CHECK = "kstatus-check"
"""Classifies objects with kstatus (sigs.k8s.io/cli-utils), as Flux does: e2e/cluster/kstatus-check/main.go."""
ALL_BINARIES = ["etcd", "kwok", "kwokctl", *K8S_BINARIES, "helm", KSTATUS_CHECK]
KSTATUS_SOURCE = Path(__file__).resolve().parents[1] / "kstatus-check" / "main.go"


def bin_dir() -> Path:
    return CACHE_ROOT / "bin" / V.version_key()


def _log(msg: str) -> None:
    print(f"[cluster-build {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def go_exe() -> str:
    exe = shutil.which("go")
    if exe:
        return exe
    for cand in ("/usr/local/go/bin/go", "/usr/lib/go/bin/go"):
        if Path(cand).is_file():
            return cand
    raise SystemExit("cluster-build: no Go toolchain found (need go >= 1.26 on PATH or in /usr/local/go)")


def go_env(extra_goflags: str | None = "-mod=mod") -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("GOTOOLCHAIN", "local")
    env["CGO_ENABLED"] = "0"
    if extra_goflags is None:
        env.pop("GOFLAGS", None)
    else:
        env["GOFLAGS"] = extra_goflags
    # Modest parallelism: 2 cores / 24 GiB is the reference machine.
    return env


def _run(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    _log("  $ " + " ".join(cmd))
    proc = subprocess.run(cmd, cwd=cwd, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"cluster-build: command failed ({proc.returncode}): {' '.join(cmd)}")


def _download_mod(module: str, version: str) -> dict[str, str]:
    out = subprocess.run(
        [go_exe(), "mod", "download", "-json", f"{module}@{version}"],
        env=go_env(None),
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"cluster-build: go mod download {module}@{version} failed:\n{out.stdout}{out.stderr}")
    info: dict[str, str] = json.loads(out.stdout)
    return info


_REPLACE_RE = re.compile(r"^\s*(?:replace\s+)?(\S+)\s+=>\s+(\.\.?/\S*)\s*$")


def local_replaces(gomod_text: str) -> list[str]:
    """Modules that a go.mod replaces with a relative filesystem path."""
    mods = []
    for line in gomod_text.splitlines():
        m = _REPLACE_RE.match(line)
        if m and "FORBIDDEN" not in m.group(2):
            mods.append(m.group(1))
    return mods


def staging_version(k8s_version: str) -> str:
    # k8s.io/kubernetes v1.X.Y  <->  staging modules v0.X.Y
    return "v0" + k8s_version[2:]


def write_wrapper(name: str, module: str, version: str, replace_version: str) -> Path:
    """Generate a throw-away main module that requires `module@version`.

    The upstream go.mod replaces its sibling modules with ``../`` or ``./staging``
    paths; those replace lines only work inside the upstream repo, so the wrapper
    repeats them pointing at the published module versions instead.
    """
    info = _download_mod(module, version)
    gomod = Path(info["GoMod"]).read_text()
    go_line = re.search(r"^go\s+(\S+)", gomod, re.M)
    reps = local_replaces(gomod)
    wdir = CACHE_ROOT / "gowrap" / f"{name}-{version}"
    wdir.mkdir(parents=True, exist_ok=True)
    lines = [
        f"module gridshift.local/clusterbuild/{name}",
        "",
        f"go {go_line.group(1) if go_line else '1.26'}",
        "",
        f"require {module} {version}",
        "",
        "replace (",
        *[f"\t{m} => {m} {replace_version}" for m in reps],
        ")",
        "",
    ]
    text = "\n".join(lines)
    gm = wdir / "go.mod"
    if not gm.exists() or gm.read_text() != text:
        gm.write_text(text)
        (wdir / "go.sum").unlink(missing_ok=True)
    # A tools.go-ish file keeps `go mod tidy`-free builds happy with -mod=mod.
    (wdir / "doc.go").write_text("// Package clusterbuild only pins build dependencies.\npackage clusterbuild\n")
    _log(f"wrapper module for {module}@{version}: {wdir} ({len(reps)} replace lines)")
    return wdir


def write_kstatus_module() -> Path:
    """A main module for kstatus-check: this repository's main.go, requiring the pinned cli-utils."""
    wdir = CACHE_ROOT / "gowrap" / f"{KSTATUS_CHECK}-{V.CLI_UTILS}"
    wdir.mkdir(parents=True, exist_ok=True)
    gomod = "\n".join(
        [
            f"module gridshift.local/clusterbuild/{KSTATUS_CHECK}",
            "",
            "go 1.22",
            "",
            f"require sigs.k8s.io/cli-utils {V.CLI_UTILS}",
            "",
        ]
    )
    gm = wdir / "go.mod"
    if not gm.exists() or gm.read_text() != gomod:
        gm.write_text(gomod)
        (wdir / "go.sum").unlink(missing_ok=True)
    shutil.copyfile(KSTATUS_SOURCE, wdir / "main.go")
    _log(f"module for {KSTATUS_CHECK} (sigs.k8s.io/cli-utils {V.CLI_UTILS}): {wdir}")
    return wdir


def _k8s_ldflags() -> str:
    v = V.KUBERNETES
    major, minor = v.lstrip("v").split(".")[:2]
    date = "2026-01-01T00:00:00Z"
    parts = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        parts += [
            f"-X {pkg}.gitVersion={v}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.gitCommit=0000000000000000000000000000000000000000",
            f"-X {pkg}.buildDate={date}",
        ]
    return " ".join(parts)


def _works(path: Path) -> bool:
    if not (path.is_file() and os.access(path, os.X_OK)):
        return False
    if path.name == KSTATUS_CHECK:
        # Built from this repository's source against a pinned cli-utils: rebuilt when the pin moves.
        try:
            out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return out.returncode == 0 and out.stdout.strip() == V.CLI_UTILS
    arg = {"kwok": "--version", "kwokctl": "--version", "helm": "version", "etcd": "--version"}.get(
        path.name, "--version"
    )
    if path.name == "kubectl":
        arg = "version"
    cmd = [str(path), arg] + (["--client"] if path.name == "kubectl" else [])
    try:
        return subprocess.run(cmd, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _record(times_file: Path, name: str, seconds: float) -> None:
    data = json.loads(times_file.read_text()) if times_file.exists() else {}
    data[name] = round(seconds, 1)
    times_file.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def missing(only: list[str] | None = None) -> list[str]:
    return [b for b in (only or ALL_BINARIES) if not _works(bin_dir() / b)]


def build(only: list[str] | None = None) -> Path:
    """Build what is missing.  Concurrent callers serialise on a lock file."""
    out = bin_dir()
    out.mkdir(parents=True, exist_ok=True)
    with (out / ".build.lock").open("w") as lock:
        if fcntl is not None:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                _log(f"another build holds {out / '.build.lock'}; waiting for it")
                fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_locked(out, only)


def _build_locked(out: Path, only: list[str] | None) -> Path:
    times = out / "build-times.json"
    wanted = only or ALL_BINARIES
    todo = [b for b in wanted if not _works(out / b)]
    if not todo:
        _log(f"all binaries present in {out}")
        return out
    _log(f"building {', '.join(todo)} into {out} (Go: {go_exe()}); cold builds take ~30 min on 2 cores")
    t_all = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="gs-build-", dir=out))
    try:
        for i, name in enumerate(todo, 1):
            t0 = time.monotonic()
            _log(f"[{i}/{len(todo)}] {name} ...")
            target = tmp / name
            if name in K8S_BINARIES:
                w = write_wrapper("kubernetes", "k8s.io/kubernetes", V.KUBERNETES, staging_version(V.KUBERNETES))
                _run(
                    [
                        go_exe(),
                        "build",
                        "-p",
                        "2",
                        "-trimpath",
                        "-tags",
                        "selinux,notest",
                        "-ldflags",
                        _k8s_ldflags(),
                        "-o",
                        str(target),
                        f"k8s.io/kubernetes/cmd/{name}",
                    ],
                    cwd=w,
                    env=go_env(),
                )
            elif name == "etcd":
                w = write_wrapper("etcd", "go.etcd.io/etcd/server/v3", V.ETCD, V.ETCD)
                _run(
                    [
                        go_exe(),
                        "build",
                        "-p",
                        "2",
                        "-trimpath",
                        "-ldflags",
                        "-s -w",
                        "-o",
                        str(target),
                        "go.etcd.io/etcd/server/v3",
                    ],
                    cwd=w,
                    env=go_env(),
                )
            elif name in ("kwok", "kwokctl"):
                env = go_env(None)
                env["GOBIN"] = str(tmp)
                _run(
                    [
                        go_exe(),
                        "install",
                        "-p",
                        "2",
                        "-trimpath",
                        "-ldflags",
                        f"-s -w -X sigs.k8s.io/kwok/pkg/consts.Version={V.KWOK.lstrip('v')}",
                        f"sigs.k8s.io/kwok/cmd/{name}@{V.KWOK}",
                    ],
                    env=env,
                )
            elif name == KSTATUS_CHECK:
                w = write_kstatus_module()
                _run(
                    [
                        go_exe(),
                        "build",
                        "-p",
                        "2",
                        "-trimpath",
                        "-ldflags",
                        f"-s -w -X main.cliUtilsVersion={V.CLI_UTILS}",
                        "-o",
                        str(target),
                        ".",
                    ],
                    cwd=w,
                    env=go_env(),
                )
            elif name == "helm":
                env = go_env(None)
                env["GOBIN"] = str(tmp)
                major, minor = V.KUBERNETES.lstrip("v").split(".")[:2]
                ldf = (
                    f"-s -w -X helm.sh/helm/v3/internal/version.version={V.HELM}"
                    f" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor={major}"
                    f" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor={minor}"
                    f" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor={major}"
                    f" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor={minor}"
                )
                _run(
                    [
                        go_exe(),
                        "install",
                        "-p",
                        "2",
                        "-trimpath",
                        "-ldflags",
                        ldf,
                        f"helm.sh/helm/v3/cmd/helm@{V.HELM}",
                    ],
                    env=env,
                )
            else:
                raise SystemExit(f"unknown binary {name}")
            os.replace(target, out / name)
            dt = time.monotonic() - t0
            _record(times, name, dt)
            _log(f"[{i}/{len(todo)}] {name} done in {dt:.0f}s (total {time.monotonic() - t_all:.0f}s)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _log(f"all done in {time.monotonic() - t_all:.0f}s: {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", choices=ALL_BINARIES, help="build only these binaries")
    ap.add_argument("--print-dir", action="store_true", help="print the cache dir and exit (no build)")
    args = ap.parse_args(argv)
    if args.print_dir:
        print(bin_dir())
        return 0
    print(build(args.only))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
