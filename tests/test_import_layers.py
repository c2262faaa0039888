"""The host packages import each other in one direction only: an import
circle between packages (seatmon.sitefile and tools.inventory had one,
hidden in a function) makes either module's import order matter and ties
two rooms together. Every import in a module counts, at any depth."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("seatmon", "tools", "collector", "shared", "rig", "virtual", "firmware")


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                deps.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                deps.add(node.module)
                deps.update(f"{node.module}.{alias.name}" for alias in node.names)
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def _circles_across_packages(graph: dict[str, set[str]]) -> set[tuple[str, ...]]:
    found = set()

    def walk(start: str, node: str, path: list[str]) -> None:
        for nxt in graph[node]:
            if nxt == start:
                if len({m.split(".")[0] for m in path}) > 1:
                    found.add(tuple(path))
            elif nxt > start and nxt not in path:
                walk(start, nxt, path + [nxt])

    for name in graph:
        walk(name, name, [name])
    return found


def test_the_finder_sees_a_circle():
    assert _circles_across_packages({"a.x": {"b.y"}, "b.y": {"a.x"}, "a.z": set()}) == {("a.x", "b.y")}


def test_no_import_circle_between_packages():
    assert _circles_across_packages(_graph()) == set()
