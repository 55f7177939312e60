"""`gridshift crds`: write the CRDs generated from the API models, or check they are current."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "crds",
        help="write crds/ from the API models (or --check that it is up to date)",
        description="Generate CustomResourceDefinitions from operator/gridshift/api.",
    )
    parser.add_argument("--out", type=_directory, default=Path("crds"), help="directory to write (default: crds)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 naming each stale or missing file")
    parser.set_defaults(handler=run)


_DIFFERS = " differs from the API models; run `gridshift crds`"
_ORPHAN = " is no longer generated from the API models; run `gridshift crds`, which removes it"
_FOREIGN = " is not generated from the API models; remove it"
"""What --check and writing say of a file: found in review, --check told to run `gridshift crds` for any YAML
file it does not generate, which writing leaves (it removes only this API group's CRDs) and names to remove."""


def _directory(text: str) -> Path:
    """argparse type of --out: a path, not empty. Found in review: Path('') is '.', so `--out ''` (an unset
    shell variable) wrote the CRDs into the current directory without a word."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty path: name the directory to write (default: crds)")
    return Path(text)


def stale_files(out: Path) -> list[str]:
    """Files under `out` that differ from (or are missing against) what the models generate."""
    return [entry for entry, _ in _stale(out)]


def _stale(out: Path) -> list[tuple[str, str]]:
    """Each stale file (as stale_files names it) and what --check says of it."""
    from gridshift.api.crdgen import render_crds

    stale = []
    expected = render_crds()
    for name, text in expected.items():
        path = out / name
        try:
            current = path.read_bytes().decode() if path.exists() else None
        except (OSError, UnicodeDecodeError) as error:
            # Found in review: a directory or a non-UTF-8 file in its place was a traceback, not a stale file.
            reason = error.strerror if isinstance(error, OSError) else "not UTF-8"
            stale.append((f"{path} (unreadable: {reason})", _DIFFERS))
            continue
        if current != text:
            stale.append((str(path), _DIFFERS))
    extra = (p for p in sorted(out.glob("*.yaml")) if p.name not in expected)
    return stale + [(str(p), _ORPHAN if _generated_once(p) else _FOREIGN) for p in extra]


def _generated_once(path: Path) -> bool:
    """Whether `path` holds a CRD of this API group (one the models generated once): writing removes those."""
    from gridshift.api import GROUP

    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    if not isinstance(document, dict) or document.get("kind") != "CustomResourceDefinition":
        return False
    spec = document.get("spec")
    return isinstance(spec, dict) and spec.get("group") == GROUP


def report_check(stale: Sequence[object], *, stale_note: str, up_to_date: str) -> int:
    """A generator's `--check` answer (here and `make chart`): each stale file on stderr, or that all is
    current; the exit status (1 when something is stale)."""
    for path in stale:
        print(f"stale: {path}{stale_note}", file=sys.stderr)
    if not stale:
        print(up_to_date)
    return 1 if stale else 0


def run(args: argparse.Namespace) -> int:
    from gridshift.api.crdgen import render_crds
    from gridshift.cli.usage import UsageError

    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is not a directory")
    if args.check:
        stale = [entry + note for entry, note in _stale(out)]
        return report_check(stale, stale_note="", up_to_date=f"{out}/ is up to date with the API models")
    expected = render_crds()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"--out {out}: {error.strerror}") from None
    for name, text in expected.items():
        try:
            (out / name).write_text(text)
        except OSError as error:  # named by the file (review: "--out crds: Is a directory" for a file in it)
            raise UsageError(f"--out {out}: cannot write {out / name}: {error.strerror}") from None
        print(f"wrote {out / name}")
    return _remove_orphans(out, expected)


def _remove_orphans(out: Path, expected: Mapping[str, str]) -> int:
    """Remove the CRDs of this API group that the models no longer generate (a renamed or dropped kind):
    `--check` reports every YAML file it does not generate, so one left behind failed it after every
    `gridshift crds` (review). Any other YAML file is named for the user to remove, and the exit is 1."""
    left = 0
    for path in sorted(out.glob("*.yaml")):
        if path.name in expected:
            continue
        if _generated_once(path):
            path.unlink()
            print(f"removed {path} (no longer generated)")
        else:
            print(f"stale: {path}{_FOREIGN}", file=sys.stderr)
            left += 1
    return 1 if left else 0
