"""Entry point of the `gridshift` command: dispatches to one module per subcommand.

Each subcommand module exposes `register(subparsers)` and imports its heavy dependencies
inside its handler, so `gridshift --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from gridshift import __version__
from gridshift.cli.usage import UsageError

SUBCOMMAND_MODULES = (
    "gridshift.cli.crds",
    "gridshift.cli.validate",
    "gridshift.cli.prices",
    "gridshift.cli.profile",
    "gridshift.cli.simulate",
    "gridshift.cli.bench",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gridshift",
        description="Place vLLM replicas across regional clusters to minimise $/token within latency SLOs.",
    )
    parser.add_argument("--version", action="version", version=f"gridshift {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.handler(args)
    except UsageError as error:
        print(f"gridshift {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`gridshift prices ... --json | head`): stop quietly, as `yes | head` does.
        # Python's own flush at exit would raise again, so stdout goes to /dev/null first (the recipe
        # of Python's signal module documentation, "Note on SIGPIPE").
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + 13  # SIGPIPE's exit status in a shell
    return result


if __name__ == "__main__":
    sys.exit(main())
