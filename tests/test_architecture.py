"""The house rules, checked on the source: no import cycles among moerun's modules (imports
inside functions and under TYPE_CHECKING count too), no package folder with more than 20
modules directly in it, core imports no outer layer, and one module opens client connections.

The import graph is read with `ast`, not by importing, so a cycle hidden in a function body
is found as surely as one at the top of a module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
OUTER = ("serve", "bench", "store", "render", "commands", "cli", "catalog", "wire")
MAX_MODULES_PER_FOLDER = 20


def module_files(src: Path) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package `__init__`) for every module under `src`."""
    out: dict[str, tuple[Path, bool]] = {}
    for path in sorted(src.rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        out[".".join(parts)] = (path, is_pkg)
    return out


def _nearest(dotted: str, mods: dict[str, tuple[Path, bool]]) -> str | None:
    """The longest prefix of `dotted` that is a module (`a.b.Name` -> `a.b`)."""
    while dotted and dotted not in mods:
        dotted = dotted.rpartition(".")[0]
    return dotted or None


def _targets(
    name: str, is_pkg: bool, node: ast.Import | ast.ImportFrom, mods: dict[str, tuple[Path, bool]]
) -> Iterator[str | None]:
    """The modules one import statement loads (`from a import b` loads module a.b if there is
    one, else a)."""
    if isinstance(node, ast.Import):
        yield from (_nearest(alias.name, mods) for alias in node.names)
        return
    base = node.module or ""
    if node.level:
        package = name.split(".") if is_pkg else name.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, *([node.module] if node.module else [])])
    for alias in node.names:
        yield _nearest(f"{base}.{alias.name}", mods)


def _dynamic_target(node: ast.Call, mods: dict[str, tuple[Path, bool]]) -> str | None:
    """The module `importlib.import_module("a.b")` or `__import__("a.b")` loads, when named
    by a string literal (None for any other call)."""
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if called not in ("import_module", "__import__") or not node.args:
        return None
    arg = node.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return _nearest(arg.value, mods)
    return None


def import_graph(src: Path) -> dict[str, set[str]]:
    """Module -> the modules it imports, anywhere in its body (functions included), by
    statement or by `importlib.import_module` with a literal name."""
    mods = module_files(src)
    graph: dict[str, set[str]] = {}
    for name, (path, is_pkg) in mods.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges.update(t for t in _targets(name, is_pkg, node, mods) if t and t != name)
            elif isinstance(node, ast.Call):
                target = _dynamic_target(node, mods)
                if target and target != name:
                    edges.add(target)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(SRC)


def test_finder_sees_cycles_through_function_level_and_relative_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg import b\n")
    (pkg / "b.py").write_text("def f():\n    from .sub import c\n")
    (pkg / "sub" / "c.py").write_text(
        "import typing\nif typing.TYPE_CHECKING:\n    from .. import a\n"
    )
    (pkg / "d.py").write_text("from pkg.a import x\n")
    g = import_graph(tmp_path)
    assert g["pkg.a"] == {"pkg.b"} and g["pkg.b"] == {"pkg.sub.c"} and g["pkg.d"] == {"pkg.a"}
    assert cycles(g) == [["pkg.a", "pkg.b", "pkg.sub.c"]]
    (pkg / "sub" / "c.py").write_text("import typing\n")
    assert cycles(import_graph(tmp_path)) == []
    # a method's import, and a dynamic import by literal name, close cycles too
    (pkg / "sub" / "c.py").write_text("class C:\n    def m(self):\n        from pkg.a import x\n")
    assert cycles(import_graph(tmp_path)) == [["pkg.a", "pkg.b", "pkg.sub.c"]]
    (pkg / "sub" / "c.py").write_text(
        "import importlib\ndef f():\n    return importlib.import_module('pkg.a')\n"
    )
    assert cycles(import_graph(tmp_path)) == [["pkg.a", "pkg.b", "pkg.sub.c"]]
    (pkg / "sub" / "c.py").write_text("def f(name):\n    return __import__(name)\n")
    assert cycles(import_graph(tmp_path)) == []


def test_the_graph_covers_the_package(graph: dict[str, set[str]]) -> None:
    assert len(graph) > 150
    assert "moerun.commands.deployment_args" in graph["moerun.cli"]
    assert "moerun.core.model.hf_config" in graph["moerun.core.model.model_spec"]
    # imports inside functions count: cli registers the commands from inside a function
    assert "moerun.commands.emulate" in graph["moerun.cli"]


def test_no_import_cycles(graph: dict[str, set[str]]) -> None:
    assert cycles(graph) == []


def test_no_folder_holds_more_than_20_modules() -> None:
    crowded = {}
    for folder in [SRC / "moerun", *(p for p in (SRC / "moerun").rglob("*") if p.is_dir())]:
        modules = [p for p in folder.glob("*.py") if p.name != "__init__.py"]
        if len(modules) > MAX_MODULES_PER_FOLDER:
            crowded[str(folder.relative_to(SRC))] = len(modules)
    assert crowded == {}


def test_core_imports_no_outer_layer(graph: dict[str, set[str]]) -> None:
    outer = tuple(f"moerun.{name}" for name in OUTER)
    bad = sorted(
        (mod, target)
        for mod, targets in graph.items()
        if mod.startswith("moerun.core")
        for target in targets
        if target == "moerun.cli"
        or target.startswith(tuple(o + "." for o in outer))
        or target in outer
    )
    assert bad == []


CONNECTING_CALLS = {"create_connection", "open_connection", "urlopen", "start_tls"}
CLIENT_LIBRARIES = ("httpx", "aiohttp", "requests", "urllib3", "http.client", "urllib.request")


def connection_openers(src: Path) -> dict[str, set[str]]:
    """Module -> the ways it opens client connections: a call to one of CONNECTING_CALLS, an
    import of an HTTP client library, or a socket's `connect`."""
    found: dict[str, set[str]] = {}
    for name, (path, _) in module_files(src).items():
        for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
            what = None
            if isinstance(node, ast.Call):
                func = node.func
                attr = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
                if attr in CONNECTING_CALLS or (
                    attr in ("connect", "connect_ex")
                    and (isinstance(func, ast.Attribute) and "sock" in ast.unparse(func.value))
                ):
                    what = attr
            elif isinstance(node, ast.Import):
                what = next(
                    (a.name for a in node.names if a.name.startswith(CLIENT_LIBRARIES)), None
                )
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                CLIENT_LIBRARIES
            ):
                what = node.module
            if what:
                found.setdefault(name, set()).add(what)
    return found


def test_one_module_opens_client_connections() -> None:
    assert connection_openers(SRC) == {
        "moerun.wire.client": {"create_connection", "start_tls"},
    }


def test_opener_finder_sees_each_way(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "a.py").write_text("import httpx\n")
    (tmp_path / "m" / "b.py").write_text("async def f(loop):\n    await loop.create_connection()\n")
    (tmp_path / "m" / "c.py").write_text("def f(sock):\n    sock.connect(('h', 1))\n")
    (tmp_path / "m" / "d.py").write_text("from urllib.request import urlopen\n")
    (tmp_path / "m" / "e.py").write_text("def f(db):\n    db.connect()\n")  # not a socket
    assert connection_openers(tmp_path) == {
        "m.a": {"httpx"},
        "m.b": {"create_connection"},
        "m.c": {"connect"},
        "m.d": {"urllib.request"},
    }


def test_wire_imports_only_itself_and_errors(graph: dict[str, set[str]]) -> None:
    bad = sorted(
        (mod, target)
        for mod, targets in graph.items()
        if mod.startswith("moerun.wire")
        for target in targets
        if not target.startswith("moerun.wire") and target != "moerun.errors"
    )
    assert bad == []
