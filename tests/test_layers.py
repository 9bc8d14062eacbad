"""The package's layering, checked from ablate's own import statements (module level and inside
functions, TYPE_CHECKING blocks included; docs/architecture.md draws the map):

    cli, commands, profile              top: parse, compose, print
    sweep | report                      side by side: neither imports the other
    train                               one run: engine and wrapper
    track                               records, run keys, locks, manifests, stores, W&B
    models | data                       side by side
    errors, registry, io, config,       base
    threads, cache

A module imports only from its own package, the packages below it, or the base; no import
cycle anywhere. ``__main__`` modules are entry points and count as the top."""
from __future__ import annotations

import ast
from collections import defaultdict

import pytest

from tests.helpers import ROOT

PACKAGE = ROOT / "ablate"
LAYER = {"errors": 0, "registry": 0, "io": 0, "config": 0, "threads": 0, "cache": 0,
         "models": 1, "data": 1, "track": 2, "train": 3, "sweep": 4, "report": 4,
         "cli": 5, "commands": 5, "profile": 5}
SIDE_BY_SIDE = [{"models", "data"}, {"sweep", "report"}]


def modules() -> dict[str, object]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports() -> dict[str, set[str]]:
    """module -> the ablate modules it imports (``from ablate.x import y`` names module x.y if
    that is a module, else x)."""
    mods = modules()
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                mod = node.module or ""
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    mod = ".".join([*base, mod] if mod else base)
                if mod.split(".")[0] != "ablate":
                    continue
                for alias in node.names:
                    edges[name].add(f"{mod}.{alias.name}" if f"{mod}.{alias.name}" in mods else mod)
            elif isinstance(node, ast.Import):
                edges[name].update(a.name for a in node.names if a.name.split(".")[0] == "ablate")
    return edges


def part(module: str) -> str:
    """The top-level part of ablate a module belongs to (``ablate.sweep.launchers.slurm`` -> sweep)."""
    parts = module.split(".")
    if parts[-1] == "__main__":
        return "cli"
    return parts[1] if len(parts) > 1 else "errors"  # `ablate` itself: the base


def test_every_part_has_a_layer():
    assert {part(m) for m in modules()} <= set(LAYER), sorted({part(m) for m in modules()} - set(LAYER))


def test_no_upward_or_sideways_import():
    bad = []
    for src, targets in imports().items():
        a = part(src)
        for dst in targets:
            b = part(dst)
            if a == b:
                continue
            if LAYER[b] > LAYER[a] or (LAYER[b] == LAYER[a] and LAYER[a] not in (0, 5)) \
                    or any({a, b} == pair for pair in SIDE_BY_SIDE):
                bad.append(f"{src} -> {dst}")
    assert not bad, "imports against the layering:\n" + "\n".join(sorted(bad))


def test_no_import_cycle():
    edges, mods = imports(), modules()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in mods:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for m in sorted(mods):
        if m not in index:
            visit(m)
    assert not cycles, f"import cycles: {cycles}"


@pytest.mark.parametrize("edge", [("ablate.report.table", "ablate.sweep.runner"), ("ablate.track.store", "ablate.train.run"),
                                  ("ablate.models.registry", "ablate.data")])
def test_the_check_would_catch_a_bad_edge(edge, monkeypatch):
    src, dst = edge
    real = imports()
    monkeypatch.setitem(globals(), "imports", lambda: {**real, src: real.get(src, set()) | {dst}})
    with pytest.raises(AssertionError, match="against the layering"):
        test_no_upward_or_sideways_import()
