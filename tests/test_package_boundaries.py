"""The package's shape: lower layers never import higher ones, no module imports itself back through others,
and tasks and rewards load without the CPU engine.

The import graph is read statically from the source (every ``import`` statement, also those inside functions:
a lazy import is still a dependency), so the check covers code no test happens to run.
"""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
LAYERS = {"_validation": 0, "_fields": 0, "stats": 0, "data": 0, "pretrained": 0, "baselines": 1, "budget": 2, "value": 3,
          "tasks": 3, "rl": 4, "integrations": 5, "evaluate": 6, "bench": 6, "cli": 7}
"""Layer of each top-level part of ``v05``; a module may import only from its own layer or lower ones."""


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """``{module: the v05 modules it imports}`` over every module under ``src/v05``."""
    paths = {module_name(p): p for p in (SRC / "v05").rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
                # ``from v05.bench import baseline`` imports the module v05.bench.baseline
                found.update(f"{base}.{a.name}" if f"{base}.{a.name}" in paths else base for a in node.names)
        graph[name] = {m for m in found if m in paths and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS[parts[1]] if len(parts) > 1 else None  # ``v05`` itself re-exports from every layer


def test_the_graph_sees_lazy_and_relative_imports():
    graph = import_graph()
    assert "v05.bench.baseline_report" in graph["v05.cli.bench"]  # imported inside a command function
    assert "v05.tasks.verifier_chat" in graph["v05.integrations.trl.verifier"]


def test_every_part_has_a_layer():
    assert {m.split(".")[1] for m in import_graph() if "." in m} <= set(LAYERS)


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_cycles_are_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_lower_layers_never_import_higher_ones():
    upward = [f"{m} imports {d}" for m, deps in import_graph().items() for d in sorted(deps)
              if layer(m) is not None and layer(d) is not None and layer(d) > layer(m)]
    assert upward == []


NEEDS_TRL = pytest.mark.skipif(importlib.util.find_spec("trl") is None,
                               reason="needs the v05[trl] extra (trl, datasets, accelerate)")


@pytest.mark.parametrize("module", ["v05.tasks.math_reward", "v05.tasks.verifier_chat",
                                    pytest.param("v05.integrations.trl.verifier", marks=NEEDS_TRL),
                                    "v05.integrations.verl"])
def test_tasks_and_integrations_load_without_the_engine(module):
    code = (f"import sys, {module}; engine = sorted(m for m in sys.modules if m.startswith(('v05.rl', 'v05.bench')));"
            "assert not engine, engine")
    subprocess.run([sys.executable, "-c", code], check=True)
