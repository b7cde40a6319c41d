"""The shape of the code, checked: imports run one way, one wiring place, small modules."""

from tests.imports import ROOT, cycles, graph, modules

#: Modules that may import the bootstrap: the entry points.
ENTRY_POINTS = {"workers.entry", "workers.cli.base", "workers.cli.run"}
#: Longest source file in domain/ and workers/, in lines.
MAX_LINES = 350


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
