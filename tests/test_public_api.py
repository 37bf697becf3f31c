"""Plugins use the core's public API only (issue 13).

The rule, checked on every ``.py`` file of every ``plugins/<dist>/<package>/`` (test folders
aside), over every ``import`` statement, including those inside functions:

* no core module whose dotted path has a ``_private`` part (``reidcore._x``,
  ``reidcore.engine._y``);
* no ``_private`` name imported from a core module (``from reidcore.x import _helper``);
* none of :data:`IMPLEMENTATION_MODULES`: core modules whose classes are reached through a
  registry and a documented contract instead (backbones: ``create_backbone`` and the
  ``reid_backbones`` contract of :mod:`reidcore.hookspecs`).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Core modules a plugin must not import, and what to use instead.
IMPLEMENTATION_MODULES = {
    "reidcore.backbones.torchvision_backbones":
        "reidcore.registry.create_backbone and the reid_backbones contract "
        "(out_channels, output_stride, first_conv_name, split_last_stage)",
}


def plugin_sources() -> list[Path]:
    """The package source files of every plugin distribution, tests aside."""
    files = []
    for dist in sorted((ROOT / "plugins").iterdir()):
        if not dist.is_dir():
            continue
        for pkg in sorted(p for p in dist.iterdir() if (p / "__init__.py").is_file()):
            if pkg.name == "tests":
                continue
            files += [f for f in sorted(pkg.rglob("*.py"))
                      if "tests" not in f.relative_to(dist).parts]
    return files


def core_imports(source: str, filename: str = "<string>") -> list[tuple[int, str, str | None]]:
    """``(line, core module, imported name or None)`` for every import of a ``reidcore`` module."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name, None) for a in node.names
                      if a.name.split(".")[0] == "reidcore"]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module \
                and node.module.split(".")[0] == "reidcore":
            found += [(node.lineno, node.module, a.name) for a in node.names]
    return sorted(found, key=lambda item: item[0])


def violations(source: str, filename: str = "<string>") -> list[str]:
    """The rule's breaches in ``source``, one readable line each."""
    out = []
    for line, module, name in core_imports(source, filename):
        where = f"{filename}:{line}"
        if any(part.startswith("_") and part != "__init__" for part in module.split(".")):
            out.append(f"{where}: imports the private core module {module}")
        if name is not None and name.startswith("_"):
            out.append(f"{where}: imports the private name {name} from {module}")
        full = f"{module}.{name}" if name else module
        for bad, instead in IMPLEMENTATION_MODULES.items():
            if module == bad or full == bad or module.startswith(bad + "."):
                out.append(f"{where}: imports {bad}; use {instead}")
    return list(dict.fromkeys(out))  # one line per statement, however many names it imports


def test_plugin_sources_are_found():
    names = {f.parent.name for f in plugin_sources()}
    assert {"reid_pse", "reid_san", "reid_trinet"} <= names


def test_plugins_import_only_public_core_api():
    bad = []
    for path in plugin_sources():
        bad += violations(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix())
    assert not bad, "plugins reach into core internals:\n" + "\n".join(bad)


def test_the_rule_catches_each_kind_of_breach():
    src = ("from reidcore.backbones.torchvision_backbones import ResNetBackbone\n"
           "def f():\n    from reidcore.backbones import torchvision_backbones\n"
           "import reidcore._hidden\n"
           "from reidcore.engine.trainer import _step, run\n"
           "from reidcore.registry import create_backbone\n"
           "from .local import _fine\n")
    found = violations(src, "x.py")
    assert len(found) == 4, found
    assert found[0].startswith("x.py:1: imports reidcore.backbones.torchvision_backbones")
    assert found[1].startswith("x.py:3: imports reidcore.backbones.torchvision_backbones")
    assert found[2] == "x.py:4: imports the private core module reidcore._hidden"
    assert found[3] == "x.py:5: imports the private name _step from reidcore.engine.trainer"
