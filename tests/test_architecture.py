"""The layers of the package, checked from the code's own imports (function-level ones too).

Layers import downward only; docs/developer/architecture.md lists them. A new module
goes into LAYERS; a module with no layer fails the test, so the table stays complete.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parent.parent / "src"

# Lowest first. A module belongs to the longest prefix that names it.
LAYERS: list[tuple[str, ...]] = [
    ("fintune.errors", "fintune.console", "fintune.files"),
    # The catalogue of vetted weights: fetched and checksummed with no torch; data.files reads
    # through its OCR and speech entries, the model layer through its backbones.
    ("fintune.catalogue",),
    ("fintune.tasks", "fintune.kinds"),  # declarations: each task's labels and answers, each kind's tasks
    ("fintune.strategies",),  # declarations only at import time (torch loads when one runs)
    ("fintune.config",),
    ("fintune.data",),
    ("fintune.scoring",),
    ("fintune.models",),
    ("fintune.tagging",),
    ("fintune.predictors",),
    ("fintune.training",),
    ("fintune.evaluation", "fintune.labeling"),
    ("fintune.rundir",),
    ("fintune.recipes", "fintune.pretrain"),
    ("fintune.trust", "fintune.deploy", "fintune.graph", "fintune.tracking"),
    ("fintune.engines.spark",),  # the Spark UDF, a batch engine over deploy.batch
    ("fintune.report",),
    ("fintune.api",),
    ("fintune.workflows", "fintune.engines"),  # several runs built from the API; where work runs
    ("fintune.board",),
    ("fintune.cli",),
    ("fintune.__main__", "fintune"),
]


def _modules() -> dict[str, Path]:
    mods = {}
    for path in SRC.rglob("*.py"):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts)
        mods[name.removesuffix(".__init__")] = path
    return mods


MODULES = _modules()


def layer_of(module: str) -> int:
    best, found = -1, None
    for level, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, found = len(prefix), level
    assert found is not None, f"{module} has no layer in LAYERS"
    return found


def imports_of(module: str) -> set[str]:
    """The fintune modules that ``module`` imports, at any depth of its code."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        found |= {t for t in targets if t in MODULES and t != module}
    return found


GRAPH = {m: imports_of(m) for m in MODULES}


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        layer_of(module)


def test_no_module_imports_a_layer_above_its_own() -> None:
    upward = sorted(f"{m} -> {t}" for m, targets in GRAPH.items() for t in targets
                    if not t.startswith(m + ".") and m != "fintune" and layer_of(t) > layer_of(m))
    assert upward == []


def test_the_import_graph_has_no_cycle() -> None:
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [])
    # A package's __init__ importing its own submodules (which import the package) is fine.
    real = [c for c in cycles if not all(m.startswith(c[0]) or c[0].startswith(m) for m in c)]
    assert real == []


@pytest.mark.parametrize("lower", ["fintune.models", "fintune.data", "fintune.config", "fintune.scoring"])
def test_lower_layers_never_import_training_tagging_or_api(lower: str) -> None:
    above = ("fintune.training", "fintune.tagging", "fintune.api", "fintune.recipes", "fintune.evaluation")
    bad = sorted(f"{m} -> {t}" for m, targets in GRAPH.items() if m == lower or m.startswith(lower + ".")
                 for t in targets if t.startswith(above))
    assert bad == []


def test_only_the_interfaces_import_the_api() -> None:
    users = {m for m, targets in GRAPH.items() if "fintune.api" in targets}
    # The interfaces (CLI, board) and what is built from the API (workflows, engines).
    above = ("fintune.cli", "fintune.board", "fintune.workflows", "fintune.engines")
    interfaces = {m for m in MODULES if m == "fintune" or m.startswith(tuple(p + "." for p in above)) or m in above}
    assert users and users <= interfaces, users - interfaces


# Units too long to read in one screen (issue 33: no function over 80 lines, no file over 450).
# None is left; an entry here would have to say why it stays, and the list may only shrink.
MAX_FUNCTION_LINES, MAX_FILE_LINES = 80, 450
LONG_FUNCTIONS: set[str] = set()
LONG_FILES: set[str] = set()


def _long_units() -> tuple[set[str], set[str]]:
    files, functions = set(), set()
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        name = str(path.relative_to(SRC))
        if len(text.splitlines()) > MAX_FILE_LINES:
            files.add(name)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                    node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES:
                functions.add(f"{name}:{node.name}")
    return files, functions


def test_no_new_long_function_or_file() -> None:
    files, functions = _long_units()
    assert functions - LONG_FUNCTIONS == set(), f"functions over {MAX_FUNCTION_LINES} lines: split them"
    assert files - LONG_FILES == set(), f"files over {MAX_FILE_LINES} lines: split them"
    assert LONG_FUNCTIONS - functions == set() and LONG_FILES - files == set(), \
        "an allow-listed unit is short now: remove it from the list"
