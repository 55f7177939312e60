#!/usr/bin/env python3
"""Entry point: python e2e/cluster/cluster.py {build,bin-dir,up,down,status}

`build` needs only the standard library; the other commands need PyYAML
(use the project venv: .venv/bin/python e2e/cluster/cluster.py up).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gscluster.__main__ import main

raise SystemExit(main())
