"""The shape of the package: no import cycle between its modules (function-local imports
included), every function-local import says why it is local, and the layers import downwards."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "backup_pipeline"
ROOT = "backup_pipeline"

# Lower layers never import higher ones (front ends at the top).
LAYERS = [
    {"errors"},
    {"format", "compression"},
    {"store"},
    {"repository"},
    {"engine"},
    {"settings", "query"},
    {"api"},
    {"cli", "defs", "definitions"},
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _resolve(current: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = current.split(".") if is_package else current.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(name: str, path: Path, known: set[str]) -> list[tuple[str, ast.stmt, bool]]:
    """(imported module, node, function-local?) for every import of the package's own modules."""
    tree = ast.parse(path.read_text(), str(path))
    local_nodes = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                   for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))}
    # `if TYPE_CHECKING:` imports never run: annotations only
    typing_only = {id(n) for f in ast.walk(tree) if isinstance(f, ast.If) and "TYPE_CHECKING" in ast.unparse(f.test)
                   for n in ast.walk(f)}
    out = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(name, path.name == "__init__.py", node)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for target in targets:
            if target in known and target != name:
                out.append((target, node, id(node) in local_nodes))
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        for target, _node, _local in imports_of(name, path, known):
            edges[name].add(target)
            # importing a.b.c runs the __init__ of a.b (the root package's is lazy, PEP 562)
            parts = target.split(".")
            for i in range(2, len(parts)):
                parent = ".".join(parts[:i])
                if parent in known and parent != name and not name.startswith(parent + "."):
                    edges[name].add(parent)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
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
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle():
    assert cycles(graph()) == []


def test_the_cycle_detector_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_function_local_imports_say_why():
    mods = modules()
    unexplained = []
    for name, path in mods.items():
        lines = path.read_text().splitlines()
        for _target, node, local in imports_of(name, path, set(mods)):
            if local and not any("#" in lines[i] for i in range(node.lineno - 3, node.lineno) if i >= 0):
                unexplained.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
        # third-party imports inside functions need a reason too (import time)
        tree = ast.parse(path.read_text())
        for f in ast.walk(tree):
            if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(f):
                    if isinstance(node, (ast.Import, ast.ImportFrom)) and not any(
                            "#" in lines[i] for i in range(node.lineno - 3, node.lineno) if i >= 0):
                        unexplained.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert sorted(set(unexplained)) == []


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else ""
    return next(i for i, layer in enumerate(LAYERS) if top in layer)


def test_layers_import_downwards():
    upward = []
    for name, targets in graph().items():
        if name == ROOT:
            continue
        for target in targets:
            if target != ROOT and _layer(target) > _layer(name):
                upward.append(f"{name} -> {target}")
    assert sorted(upward) == []


MANIFEST_KEYS = ("startedAt", "finishedAt", "chain", "sequences", "totals", "listed_at", "sha256", "tombstones",
                 "snapshot", "records", "parquet", "entries", "formatVersion", "secretsDecrypted", "createdAt",
                 "verified", "destinations", "skipped_corrupt")


def test_only_the_manifest_module_reads_manifest_keys_by_string():
    import re

    pattern = re.compile(r"""(\[|\.get\()\s*["'](%s)["']""" % "|".join(MANIFEST_KEYS))
    readers = []
    for name, path in modules().items():
        if name == f"{ROOT}.repository.manifest":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                readers.append(f"{path.relative_to(PACKAGE.parent)}:{n}: {line.strip()}")
    assert readers == []
