"""The shape the code keeps: functions a reader follows on one screen."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: The longest a function's own body may be, in lines (nested functions are counted on their own).
MAX_FUNCTION_LINES = 80

#: Written by a program, not by hand (one straight-line codec per record): ``tiltstream schemas generate``.
GENERATED = {ROOT / "tiltstream" / "streams" / "events.py"}


def _own_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    nested: set[int] = set()
    for child in ast.walk(node):
        if child is not node and isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            nested.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    lines = set(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return len(lines - nested)


def _long_functions(folder: Path) -> list[str]:
    found = []
    for path in sorted(set(folder.rglob("*.py")) - GENERATED):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = _own_lines(node)
                if length > MAX_FUNCTION_LINES:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    return found


@pytest.mark.parametrize("folder", ["tiltstream", "tests", "benchmarks"])
def test_no_function_is_longer_than_a_screen(folder: str) -> None:
    assert _long_functions(ROOT / folder) == []


def test_the_measure_counts_a_long_function() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES + 1))
    nested = body.replace("    ", "        ")
    source = f"def long() -> None:\n{body}\n\ndef outer() -> None:\n    def inner() -> None:\n{nested}\n"
    long, outer = (n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef))
    assert _own_lines(long) == MAX_FUNCTION_LINES + 2
    assert _own_lines(outer) == 1
