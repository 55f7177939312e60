"""Parse the project's own Python for tests that read its shape (imports, function lengths, reasons).

CPython 3.11 can raise `SystemError: AST constructor recursion depth mismatch` from `ast.parse` of a
file that parses fine: its AST recursion counter is interpreter-wide and can be left off by earlier
work in the same process (python/cpython#106905, fixed in 3.12). A fresh-clone CI failed on it once
in test_code_shape with no function over the limit. `parse` retries such a file once in a fresh
interpreter, so the tests still read every file and an interpreter bug cannot fail or skip a check;
any other error (a real syntax error included) is raised as is.
"""

from __future__ import annotations

import ast
import pickle
import subprocess
import sys
from pathlib import Path

_MISMATCH = "recursion depth mismatch"
_PARSE_ELSEWHERE = (
    "import ast, pickle, sys; path = sys.argv[1]; "
    "sys.stdout.buffer.write(pickle.dumps(ast.parse(open(path, encoding='utf-8').read(), path)))"
)


def parse(path: Path) -> ast.Module:
    source = path.read_text(encoding="utf-8")
    try:
        return ast.parse(source, filename=str(path))
    except SystemError as error:
        if _MISMATCH not in str(error):
            raise
    done = subprocess.run([sys.executable, "-c", _PARSE_ELSEWHERE, str(path)], capture_output=True, check=True)
    tree = pickle.loads(done.stdout)  # our own child process pickled it a moment ago
    assert isinstance(tree, ast.Module), path
    return tree
