"""Every hook is documented, listed in the plugin guide and exercised by a test.

The hooks are read from ``pm.hook`` of a fresh plugin manager (what pluggy knows from
:mod:`reidcore.hookspecs`), not from a list kept here. "Exercised" follows datasette's
test: some test module under ``tests/`` or ``plugins/*/tests/`` (this one aside) or the
example plugin implements the hook: ``def reid_xxx(`` (also inside a source string written
to a fake distribution) or ``reid_xxx=`` / ``reid_xxx = hookimpl(...)`` (a module built in
the test).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reidcore import hookspecs
from reidcore.plugins import PluginSet

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "writing-a-plugin.md"


def _hooks() -> dict[str, object]:
    pm = PluginSet().pm
    return {name: caller for name, caller in vars(pm.hook).items()
            if getattr(caller, "spec", None) is not None}


def _test_sources() -> dict[Path, str]:
    roots = [ROOT / "tests", *sorted((ROOT / "plugins").glob("*/tests")),
             ROOT / "docs" / "example-plugin"]
    return {p: p.read_text(encoding="utf-8") for root in roots for p in root.rglob("*.py")
            if p.resolve() != Path(__file__).resolve()}


HOOKS = sorted(_hooks())
SOURCES = _test_sources()


def test_the_hooks_are_found():
    assert "reid_datasets" in HOOKS and "reid_keypoint_estimators" in HOOKS


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented_in_hookspecs(hook):
    spec = _hooks()[hook].spec
    doc = (spec.function.__doc__ or "").strip()
    assert spec.function.__module__ == "reidcore.hookspecs"
    assert doc, f"hookspecs.{hook} has no docstring"
    if hasattr(spec.function, hookspecs.KIND_ATTRIBUTE):  # a registry hook: {name: target}
        assert "Target:" in doc, f"hookspecs.{hook} must document its target (\"Target: ...\")"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_listed_in_the_plugin_guide(hook):
    assert f"`{hook}`" in GUIDE.read_text(encoding="utf-8"), f"add {hook} to {GUIDE.name}"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_exercised_by_a_test(hook):
    implements = re.compile(rf"def {hook}\(|\b{hook}\s*=")
    users = [p for p, text in SOURCES.items() if implements.search(text)]
    assert users, f"no test implements {hook}: write one that registers a plugin with it"
