"""No import cycle inside mlflow_observe, lazy (function-level) imports included.

A cycle is a module that imports another which, directly or through others, imports
it back. The layers contracts (pyproject.toml) only look across layers; this looks
everywhere, inside a layer too.
"""

import sys
import textwrap

import grimp
import pytest


def import_cycles(package: str) -> list[tuple[str, str]]:
    """Each (module, imported) pair where ``imported`` leads back to ``module``."""
    graph = grimp.build_graph(package, cache_dir=None)
    return sorted(
        (module, imported)
        for module in graph.modules
        for imported in graph.find_modules_directly_imported_by(module)
        if graph.chain_exists(importer=imported, imported=module)
    )


def test_mlflow_observe_has_no_import_cycle():
    cycles = import_cycles("mlflow_observe")
    assert not cycles, "import cycles (module -> imported, which leads back): " + ", ".join(
        f"{a} -> {b}" for a, b in cycles
    )


@pytest.fixture
def cyclic_package(tmp_path, monkeypatch):
    """A package whose one cycle goes through an import inside a function."""
    root = tmp_path / "cyclic_pkg"
    (root / "inner").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "inner" / "__init__.py").write_text("")
    (root / "inner" / "a.py").write_text("from cyclic_pkg.inner import b\n")
    (root / "inner" / "b.py").write_text(
        textwrap.dedent(
            """
            def later():
                from cyclic_pkg.inner import a  # lazy: still a cycle

                return a
            """
        )
    )
    (root / "c.py").write_text("from cyclic_pkg.inner import a\n")  # imports into it, no cycle
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "cyclic_pkg"
    for name in [m for m in sys.modules if m.startswith("cyclic_pkg")]:
        del sys.modules[name]


def test_a_lazy_import_cycle_is_found(cyclic_package):
    assert import_cycles(cyclic_package) == [
        ("cyclic_pkg.inner.a", "cyclic_pkg.inner.b"),
        ("cyclic_pkg.inner.b", "cyclic_pkg.inner.a"),
    ]
