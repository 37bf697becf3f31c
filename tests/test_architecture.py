"""The shape of the code base: module size, import cycles, constants defined once.

Scope: every ``.py`` file of ``reidcore/`` and of each ``plugins/<name>/`` distribution,
test folders aside.

* **Size**: no module over :data:`MAX_LINES` lines (one concept per file).
* **Import cycles**: no two modules import each other, directly or through others. Every
  ``import`` / ``from ... import`` statement counts, *including* imports inside functions:
  a deferred import only postpones a cycle to call time (``reidcore.plugins`` and
  ``reidcore.registry`` once imported each other that way). Imports under
  ``if TYPE_CHECKING:`` do not count (they never run). ``from pkg import name`` is an
  edge to ``pkg.name`` when that is a module, else to ``pkg``; importing ``pkg.sub`` does
  not count as importing ``pkg/__init__.py``.
* **Joints**: ``JOINTS``, ``NUM_JOINTS``, ``FLIP_PAIRS`` and ``FLIP_PERMUTATION`` are
  assigned only in ``reid_datasets/joints.py``; everything else imports them.

Known exceptions live in :data:`ALLOWED_LONG` and :data:`ALLOWED_CYCLES`, each naming the
work that removes it; an entry that is no longer needed fails the test, so it is removed
as soon as that work lands.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 600

#: Modules allowed over MAX_LINES for now: path -> the owner whose work splits it.
ALLOWED_LONG: dict[str, str] = {}

#: Import cycles allowed for now: the modules of the cycle -> the owner whose work breaks it.
ALLOWED_CYCLES: dict[frozenset[str], str] = {}

JOINT_CONSTANTS = {"JOINTS", "NUM_JOINTS", "FLIP_PAIRS", "FLIP_PERMUTATION"}
JOINTS_HOME = "plugins/reid_datasets/reid_datasets/joints.py"


def project_modules() -> dict[str, Path]:
    """``{dotted module name: file}`` of reidcore and every plugin package, tests aside."""
    packages = [(ROOT, ROOT / "reidcore")]
    for dist in sorted((ROOT / "plugins").iterdir()):
        packages += [(dist, pkg) for pkg in sorted(dist.iterdir())
                     if pkg.is_dir() and (pkg / "__init__.py").is_file() and pkg.name != "tests"]
    modules = {}
    for base, pkg in packages:
        for path in pkg.rglob("*.py"):
            parts = path.relative_to(base).with_suffix("").parts
            if "tests" in parts:
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules that ``name`` imports anywhere (functions included)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()

    def known(target: str) -> str | None:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target or None

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if _is_type_checking(child):
                continue
            if isinstance(child, ast.Import):
                found.update(filter(None, (known(a.name) for a in child.names)))
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parent = package[: len(package) - (child.level - 1)]
                    base = ".".join([*parent, *([base] if base else [])])
                for alias in child.names:
                    sub = f"{base}.{alias.name}"
                    target = known(sub if sub in modules else base)
                    if target:
                        found.add(target)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    found.discard(name)
    return found


def import_cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[frozenset[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(frozenset(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return cycles


MODULES = project_modules()


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_the_modules_are_found():
    assert {"reidcore.plugins", "reidcore.registry", "reid_datasets.synthetic"} <= set(MODULES)
    assert not [m for m in MODULES if ".tests" in m or m.startswith("tests")]


def test_no_module_over_the_line_limit():
    lengths = {_rel(p): len(p.read_text(encoding="utf-8").splitlines()) for p in MODULES.values()}
    over = {path: n for path, n in lengths.items() if n > MAX_LINES and path not in ALLOWED_LONG}
    assert not over, f"modules over {MAX_LINES} lines (split them, one concept per file): {over}"
    stale = {path: owner for path, owner in ALLOWED_LONG.items()
             if lengths.get(path, 0) <= MAX_LINES}
    assert not stale, f"remove these from ALLOWED_LONG, they are short enough now: {stale}"


def test_no_import_cycle():
    graph = {name: imported_modules(name, path, MODULES) for name, path in MODULES.items()}
    cycles = import_cycles(graph)
    new = [sorted(c) for c in cycles if c not in ALLOWED_CYCLES]
    assert not new, f"import cycles (function-local imports count too): {new}"
    stale = [sorted(c) for c in ALLOWED_CYCLES if c not in cycles]
    assert not stale, f"remove these from ALLOWED_CYCLES, the cycle is gone: {stale}"


def test_cycle_finder_sees_function_local_imports(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg import b\n")
    (pkg / "b.py").write_text("def f():\n    from pkg.a import x\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                              "    from pkg import a\n")
    modules = {"pkg": pkg / "__init__.py", **{f"pkg.{m}": pkg / f"{m}.py" for m in "abc"}}
    graph = {n: imported_modules(n, p, modules) for n, p in modules.items()}
    assert graph["pkg.b"] == {"pkg.a"} and graph["pkg.c"] == set()
    assert import_cycles(graph) == [frozenset({"pkg.a", "pkg.b"})]


@pytest.mark.parametrize("constant", sorted(JOINT_CONSTANTS))
def test_joint_constants_are_defined_once(constant):
    homes = []
    for path in MODULES.values():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            targets = (node.targets if isinstance(node, ast.Assign)
                       else [node.target] if isinstance(node, ast.AnnAssign) else [])
            if any(isinstance(t, ast.Name) and t.id == constant for t in targets):
                homes.append(_rel(path))
    assert homes == [JOINTS_HOME], f"{constant} assigned in {homes}; import it from reid_datasets.joints"
