"""The benchmarks' contract (tests/benchmarks/__init__.py): each states its target in its
docstring and prints it before it measures anything, and its exit status is the verdict
on that target, so that a miss can neither pass unseen nor be judged after the fact."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.benchmarks import announce, verdict

FOLDER = Path(__file__).resolve().parents[1] / "benchmarks"
BENCHMARKS = sorted(path for path in FOLDER.glob("*.py") if path.name != "__init__.py")


def own_nodes(function: ast.FunctionDef) -> list[ast.AST]:
    """The nodes of ``function``'s body, not of the functions defined inside it."""
    found: list[ast.AST] = []
    todo: list[ast.AST] = list(function.body)
    while todo:
        node = todo.pop()
        found.append(node)
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            todo.extend(ast.iter_child_nodes(node))
    return found


def calls(function: ast.FunctionDef, name: str) -> list[ast.Call]:
    return [n for n in own_nodes(function) if isinstance(n, ast.Call)
            and isinstance(n.func, ast.Name) and n.func.id == name]


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda path: path.stem)
def test_a_benchmark_announces_its_target_and_exits_with_the_verdict(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    doc = ast.get_docstring(tree) or ""
    assert any(part.startswith("Target") for part in doc.split("\n\n")), "no Target paragraph"
    main = next(node for node in tree.body
                if isinstance(node, ast.FunctionDef) and node.name == "main")
    announced = calls(main, "announce")
    assert len(announced) == 1
    assert all(call.lineno > announced[0].lineno for call in calls(main, "print"))
    returns = [node for node in own_nodes(main) if isinstance(node, ast.Return)]
    assert returns and all(isinstance(node.value, ast.Call) and isinstance(
        node.value.func, ast.Name) and node.value.func.id == "verdict" for node in returns)


def test_announce_prints_the_target_paragraph(capsys: pytest.CaptureFixture[str]) -> None:
    announce("What it does.\n\n    usage\n\nTarget (issue 1): under\n1 s.\n\nMore words.")
    assert capsys.readouterr().out == "Target (issue 1): under 1 s.\n"
    with pytest.raises(SystemExit):
        announce("What it does, with no target.")


def test_the_verdict_is_a_miss_when_any_part_is(capsys: pytest.CaptureFixture[str]) -> None:
    assert verdict([(True, "p99 4 ms (target < 10)"), (False, "1.2x (target <= 1x)")]) == 1
    assert capsys.readouterr().out == ("met: p99 4 ms (target < 10)\n"
                                       "MISSED: 1.2x (target <= 1x)\n")
    assert verdict([(True, "all of it")]) == 0
    assert verdict([]) == 1  # nothing judged is no pass
