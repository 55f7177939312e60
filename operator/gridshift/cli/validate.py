"""`gridshift validate FILE...`: check gridshift.dev resources offline, as the apiserver would."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="validate InferenceDeployment/RegionalCluster/GPUProfile YAML files against the API",
    )
    parser.add_argument("files", nargs="+", type=Path, help="YAML files (multi-document allowed)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from gridshift.api import GROUP
    from gridshift.api.validation import DocumentsError, InvalidResource, describe, read_documents, validate_object
    from gridshift.cli.usage import UsageError

    failures = 0
    for path in args.files:
        try:
            documents = read_documents(path)
        except DocumentsError as error:
            raise UsageError(str(error)) from None
        for doc in documents:
            if not isinstance(doc, dict):
                print(f"{path}: a document is not a mapping", file=sys.stderr)
                failures += 1
                continue
            if not str(doc.get("apiVersion", "")).startswith(f"{GROUP}/"):
                print(f"skip {path}: {doc.get('kind')} is not a {GROUP} resource")
                continue
            try:
                validate_object(doc)
                print(f"ok  {path}: {describe(doc)}")
            except InvalidResource as error:
                print(f"bad {path}: {error}", file=sys.stderr)
                failures += 1
    return 1 if failures else 0
