"""Plugin discovery, broken plugins, strict mode, registries and name errors."""

from __future__ import annotations

import sys
import textwrap

import pytest

from reidcore import plugins as plugins_mod
from reidcore import registry
from reidcore.errors import DuplicateNameError, PluginLoadError, UnknownNameError
from reidcore.hookspecs import HOOK_NAMES


def make_distribution(root, dist: str, module: str, source: str, ep_name: str):
    """A real installed distribution (dist-info + module) in ``root``, put on sys.path."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[reidcore]\n{ep_name} = {module}\n")


@pytest.fixture
def fake_site(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in ("good_plugin_mod", "broken_plugin_mod", "dup_plugin_mod"):
        sys.modules.pop(name, None)
    plugins_mod.reset()


GOOD = """
from reidcore.hookspecs import hookimpl

@hookimpl
def reid_models():
    return {"goodnet": "good_plugin_mod:make"}

def make(**kw):
    return "a goodnet"
"""


def test_broken_plugin_is_reported_and_others_load(fake_site, capsys, monkeypatch):
    monkeypatch.delenv(plugins_mod.STRICT_ENV, raising=False)
    make_distribution(fake_site, "good-plugin", "good_plugin_mod", GOOD, "good")
    make_distribution(fake_site, "broken-plugin", "broken_plugin_mod",
                      "raise RuntimeError('boom at import')\n", "broken")
    ps = plugins_mod.discover()
    err = capsys.readouterr().err
    assert "'broken'" in err and "broken-plugin 1.2.3" in err and "boom at import" in err
    assert f"reidcore {plugins_mod.__version__}" in err
    assert [i.name for i in ps.failed] == ["broken"]
    reg = registry.build_registry("model", ps)
    assert reg.entry("goodnet").plugin == "good"
    assert reg.get("goodnet")() == "a goodnet"


def test_strict_mode_raises(fake_site, monkeypatch):
    make_distribution(fake_site, "broken-plugin", "broken_plugin_mod",
                      "raise RuntimeError('boom at import')\n", "broken")
    monkeypatch.setenv(plugins_mod.STRICT_ENV, "1")
    with pytest.raises(PluginLoadError, match="broken-plugin 1.2.3.*boom at import"):
        plugins_mod.discover()


def test_duplicate_name_names_both_plugins(fake_site, monkeypatch):
    monkeypatch.delenv(plugins_mod.STRICT_ENV, raising=False)
    make_distribution(fake_site, "good-plugin", "good_plugin_mod", GOOD, "good")
    make_distribution(fake_site, "dup-plugin", "dup_plugin_mod", GOOD.replace("good_plugin_mod", "dup_plugin_mod"), "dup")
    ps = plugins_mod.discover()
    with pytest.raises(DuplicateNameError, match="'goodnet'.*'dup'.*'good'|'goodnet'.*'good'.*'dup'"):
        registry.build_registry("model", ps)


def test_hook_that_raises_is_reported(fake_site, capsys, monkeypatch):
    monkeypatch.delenv(plugins_mod.STRICT_ENV, raising=False)
    src = GOOD + "\n@hookimpl\ndef reid_losses():\n    raise ValueError('bad hook')\n"
    make_distribution(fake_site, "good-plugin", "good_plugin_mod", src, "good")
    ps = plugins_mod.discover()
    reg = registry.build_registry("loss", ps)
    assert "bad hook" in capsys.readouterr().err
    assert "cross_entropy" in reg  # the core's own still registered


def test_unknown_name_suggests_and_lists():
    reg = registry.Registry("dataset", {
        n: registry.Entry("dataset", n, object(), "p") for n in ("market1501", "duke", "csv")})
    with pytest.raises(UnknownNameError) as info:
        reg.get("market1051")
    msg = str(info.value)
    assert "Unknown dataset 'market1051'. Did you mean 'market1501'?" in msg
    assert "Known datasets: csv, duke, market1501." in msg


def test_missing_first_party_name_says_which_distribution():
    reg = registry.Registry("recipe", {})
    with pytest.raises(UnknownNameError, match="pip install reid-pse"):
        reg.get("pse")


def test_lazy_target_import_error_is_clear():
    entry = registry.Entry("model", "ghost", "no_such_module_xyz:Model", "ghosts")
    with pytest.raises(PluginLoadError, match="'ghost' of plugin 'ghosts'.*no_such_module_xyz"):
        entry.resolve()


def test_builtins_registered_as_plugin():
    plugins_mod.reset()
    assert {"resnet18", "resnet50", "mobilenet_v2"} <= set(registry.list_backbones())
    assert registry.registry("backbone").entry("resnet50").plugin == "reidcore"


def test_every_hook_is_documented():
    from reidcore import hookspecs

    for name in HOOK_NAMES:
        doc = getattr(hookspecs, name).__doc__
        assert doc and "Target:" in doc, name


def test_registered_plugin_helper(tiny_plugin):
    assert "tiny" in registry.list_recipes()
    assert registry.get_recipe("tiny").name == "tiny"
