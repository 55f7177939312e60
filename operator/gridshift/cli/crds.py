"""`gridshift crds`: write the CRDs generated from the API models, or check they are current."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "crds",
        help="write crds/ from the API models (or --check that it is up to date)",
        description="Generate CustomResourceDefinitions from operator/gridshift/api.",
    )
    parser.add_argument("--out", type=Path, default=Path("crds"), help="directory to write (default: crds)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 naming each stale or missing file")
    parser.set_defaults(handler=run)


def stale_files(out: Path) -> list[str]:
    """Files under `out` that differ from (or are missing against) what the models generate."""
    from gridshift.api.crdgen import render_crds

    stale = []
    expected = render_crds()
    for name, text in expected.items():
        path = out / name
        if not path.exists() or path.read_text() != text:
            stale.append(str(path))
    stale += [str(p) for p in sorted(out.glob("*.yaml")) if p.name not in expected]
    return stale


def run(args: argparse.Namespace) -> int:
    from gridshift.api.crdgen import render_crds

    out: Path = args.out
    if args.check:
        stale = stale_files(out)
        for path in stale:
            print(f"stale: {path} differs from the API models; run `gridshift crds`", file=sys.stderr)
        if not stale:
            print(f"{out}/ is up to date with the API models")
        return 1 if stale else 0
    out.mkdir(parents=True, exist_ok=True)
    for name, text in render_crds().items():
        (out / name).write_text(text)
        print(f"wrote {out / name}")
    return 0
