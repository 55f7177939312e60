"""The shape tests' parser survives CPython's AST recursion-counter bug and nothing else."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests import python_source
from tests.conftest import REPO_ROOT

SAMPLE = REPO_ROOT / "operator" / "gridshift" / "planner" / "capacity.py"


def test_a_recursion_depth_mismatch_is_parsed_again_in_a_fresh_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = ast.dump(ast.parse(SAMPLE.read_text(encoding="utf-8"), str(SAMPLE)))

    def broken(*_args: object, **_kwargs: object) -> ast.Module:
        raise SystemError("AST constructor recursion depth mismatch (before=123, after=35)")

    monkeypatch.setattr(python_source.ast, "parse", broken)
    assert ast.dump(python_source.parse(SAMPLE)) == expected


def test_any_other_error_is_raised(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    broken_source = tmp_path / "broken.py"
    broken_source.write_text("def f(:\n", encoding="utf-8")
    with pytest.raises(SyntaxError):
        python_source.parse(broken_source)

    def broken(*_args: object, **_kwargs: object) -> ast.Module:
        raise SystemError("some other interpreter failure")

    monkeypatch.setattr(python_source.ast, "parse", broken)
    with pytest.raises(SystemError, match="some other"):
        python_source.parse(SAMPLE)
