"""`gridshift validate FILE...`: check gridshift.dev resources offline, as the apiserver would, and print
what the chart's admission policies would warn about (never a failure)."""

from __future__ import annotations

import argparse
import difflib
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
    from gridshift.api.advisories import admission_warnings
    from gridshift.api.validation import (
        MODELS_BY_KIND,
        DocumentsError,
        InvalidResource,
        describe,
        kubectl_objects,
        read_documents,
        validate_object,
    )

    failures = unreadable = 0
    for path in args.files:
        try:
            documents = read_documents(path)
        except DocumentsError as error:
            # One unreadable file does not stop the others (it ended the run after "ok" lines for earlier ones).
            print(f"bad {error}", file=sys.stderr)
            unreadable += 1
            continue
        if not documents:
            print(f"bad {path}: no documents (an empty or truncated manifest)", file=sys.stderr)
            failures += 1
        for where, doc, problem in kubectl_objects(documents):
            if problem:
                print(f"bad {path}: {where} {problem}", file=sys.stderr)
                failures += 1
                continue
            # Found in review: a gridshift kind with its apiVersion missing or misspelled (`apiversion:`) was
            # skipped as another group's resource, exit 0; validate_object names the apiVersion it needs. A kind
            # of that name in a group clearly not ours (another vendor's GPUProfile) is still skipped.
            ours = str(doc.get("kind")) in MODELS_BY_KIND and _maybe_ours(doc.get("apiVersion"), GROUP)
            if not ours and not str(doc.get("apiVersion", "")).startswith(f"{GROUP}/"):
                print(f"skip {path}: {doc.get('kind') or '<no kind>'} is not a {GROUP} resource")
                continue
            try:
                parsed = validate_object(doc)
                print(f"ok  {path}: {describe(doc)}")
                # The chart's admission policies warn about these; kubectl prints them, nothing is refused.
                for warning in admission_warnings(parsed):
                    print(f"warning {path}: {describe(doc)}: {warning}", file=sys.stderr)
            except InvalidResource as error:
                print(f"bad {path}: {error}", file=sys.stderr)
                failures += 1
    return 2 if unreadable else 1 if failures else 0


def _maybe_ours(api_version: object, group: str) -> bool:
    """Whether `api_version` is missing, malformed or a near miss of `group`'s (`gridshfit.dev/v1alpha1`):
    a gridshift kind written so is ours, mistyped; a well-formed apiVersion of another group is not."""
    if not isinstance(api_version, str) or "/" not in api_version:
        return True
    named = api_version.split("/", 1)[0]
    return difflib.SequenceMatcher(None, named, group).ratio() >= 0.8
