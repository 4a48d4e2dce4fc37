"""The notebooks in examples/ run, cell by cell, on small data (FINTUNE_EXAMPLES_QUICK=1), so
they never rot: a cell that fails here names the notebook and the cell."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))


def test_every_notebook_is_listed_on_the_examples_page() -> None:
    page = (EXAMPLES.parent / "docs" / "tutorials" / "examples.md").read_text(encoding="utf-8")
    assert NOTEBOOKS and all(f"examples/{n.name}" in page for n in NOTEBOOKS)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_notebook_runs(notebook: Path, tmp_path: Path, monkeypatch) -> None:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    assert all(c["outputs"] == [] for c in cells if c["cell_type"] == "code"), "commit notebooks without outputs"
    monkeypatch.chdir(tmp_path)  # the notebook's runs/ land here
    monkeypatch.setenv("FINTUNE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FINTUNE_EXAMPLES_QUICK", "1")
    namespace: dict = {"__name__": "__main__"}
    for number, cell in enumerate(cells, 1):
        if cell["cell_type"] != "code":
            continue
        name = f"{notebook.name}[{number}]"
        tree = ast.parse("".join(cell["source"]), name)
        # A notebook shows its last expression: evaluated here too, so a broken repr fails.
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        try:
            exec(compile(tree, name, "exec"), namespace)
            if last is not None:
                repr(eval(compile(ast.Expression(last.value), name, "eval"), namespace))
        except Exception as exc:
            raise AssertionError(f"{notebook.name}, cell {number} failed: {type(exc).__name__}: {exc}") from exc
