"""The shape of the code, checked: imports run one way, one wiring place, small modules."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("domain", "workers")
#: Modules that may import the bootstrap: the entry points.
ENTRY_POINTS = {"workers.entry", "workers.cli.base", "workers.cli.run"}
#: Longest source file in domain/ and workers/, in lines.
MAX_LINES = 350


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Every project module ``name`` imports, at the top or inside a function."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            candidates = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for candidate in candidates:
            # "from workers import store" names a module; "from x import func" names x.
            while candidate and candidate not in known:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name:
                targets.add(candidate)
    return targets


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports_of(name, path, set(found)) for name, path in found.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, result = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return result


def test_no_import_cycle_among_our_modules():
    assert cycles(graph()) == []


def test_the_cycle_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_package_init_modules_count_as_their_package():
    edges = graph()
    # A package __init__ that re-exports its submodules is an edge from the package.
    assert "workers.transports.registry" in edges["workers.transports"]


def test_domain_imports_nothing_from_workers():
    offenders = {
        name: sorted(t for t in targets if t.startswith("workers"))
        for name, targets in graph().items()
        if name.startswith("domain")
    }
    assert {name: t for name, t in offenders.items() if t} == {}


def test_only_entry_points_import_the_bootstrap():
    importers = {name for name, targets in graph().items() if "workers.bootstrap" in targets}
    assert importers <= ENTRY_POINTS


def test_the_runtime_is_a_leaf():
    """Nothing the runtime imports may import back into the use cases or the wiring."""
    edges = graph()
    seen, todo = set(), ["workers.runtime"]
    while todo:
        for target in edges[todo.pop()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    assert "workers.runtime" not in seen
    above = {"workers.bootstrap", "workers.actors", "workers.middleware", "workers.intake",
             "workers.delivery", "workers.verification", "workers.store"}  # fmt: skip
    assert seen & above == set()


def test_no_source_file_over_the_limit():
    long = {
        str(path.relative_to(ROOT)): n
        for path in modules().values()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
