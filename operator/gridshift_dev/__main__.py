"""`python -m gridshift_dev COMMAND`: the build-time generators (see the package docstring)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from gridshift_dev import chart, image, release


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gridshift_dev", description="gridshift build-time generators.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chart.register(commands)
    image.register(commands)
    release.register(commands)
    args = parser.parse_args(argv)
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
