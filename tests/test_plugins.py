"""Plugin discovery, broken plugins, strict mode, registries, name errors and clashes."""

from __future__ import annotations

import sys
import textwrap

import pytest

from reidcore import hookspecs, registry
from reidcore import plugins as plugins_mod
from reidcore.cli import main
from reidcore.errors import DuplicateNameError, PluginLoadError, UnknownNameError
from reidcore.hookspecs import HOOK_NAMES


def make_distribution(root, dist: str, module: str, source: str, ep_name: str):
    """A real installed distribution (dist-info + module) in ``root``, put on sys.path."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[reidcore]\n{ep_name} = {module}\n")


FAKE_MODULES = ("good_plugin_mod", "broken_plugin_mod", "dup_plugin_mod", "lazy_target_mod")


@pytest.fixture
def fake_site(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins_mod.reset()
    yield tmp_path
    for name in FAKE_MODULES:
        sys.modules.pop(name, None)
    plugins_mod.reset()


@pytest.fixture
def lenient(monkeypatch):
    monkeypatch.delenv(plugins_mod.STRICT_ENV, raising=False)


@pytest.fixture
def strict(monkeypatch):
    monkeypatch.setenv(plugins_mod.STRICT_ENV, "1")


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


def test_duplicate_name_keeps_the_earlier_plugin_and_reports_it(fake_site, lenient, capsys):
    make_distribution(fake_site, "good-plugin", "good_plugin_mod", GOOD, "good")
    make_distribution(fake_site, "dup-plugin", "dup_plugin_mod",
                      GOOD.replace("good_plugin_mod", "dup_plugin_mod"), "dup")
    ps = plugins_mod.discover()
    reg = registry.build_registry("model", ps)  # no longer raises: every command still works
    assert reg.entry("goodnet").plugin == "dup"  # "dup" < "good": loaded first
    assert [(c.name, c.kept, c.dropped) for c in reg.clashes] == [("goodnet", "dup", "good")]
    err = capsys.readouterr().err
    assert "'goodnet' is registered by both plugin 'dup' and plugin 'good'" in err
    assert any("'goodnet'" in line for line in ps.problems)


def test_duplicate_name_first_party_wins(fake_site, lenient, capsys):
    # "aaa" loads before the core's plugins but cannot take a first-party name
    make_distribution(fake_site, "aaa-plugin", "dup_plugin_mod", """
from reidcore.hookspecs import hookimpl

@hookimpl
def reid_losses():
    return {"cross_entropy": "dup_plugin_mod:Loss", "aaa_loss": "dup_plugin_mod:Loss"}

class Loss:
    pass
""", "aaa")
    ps = plugins_mod.discover()
    reg = registry.build_registry("loss", ps)
    assert reg.entry("cross_entropy").plugin == "reidcore"
    assert reg.entry("aaa_loss").plugin == "aaa"
    assert "using 'reidcore'" in capsys.readouterr().err


def test_duplicate_name_is_an_error_in_strict_mode(fake_site, strict):
    make_distribution(fake_site, "good-plugin", "good_plugin_mod", GOOD, "good")
    make_distribution(fake_site, "dup-plugin", "dup_plugin_mod",
                      GOOD.replace("good_plugin_mod", "dup_plugin_mod"), "dup")
    ps = plugins_mod.discover()
    with pytest.raises(DuplicateNameError, match="'goodnet'.*'dup'.*'good'"):
        registry.build_registry("model", ps)


def test_plugins_command_lists_clashes(fake_site, lenient, capsys):
    make_distribution(fake_site, "good-plugin", "good_plugin_mod", GOOD, "good")
    make_distribution(fake_site, "dup-plugin", "dup_plugin_mod",
                      GOOD.replace("good_plugin_mod", "dup_plugin_mod"), "dup")
    assert main(["plugins"]) == 1
    out = capsys.readouterr().out
    assert "problems:" in out and "'goodnet' is registered by both plugin 'dup'" in out
    assert main(["list", "models"]) == 0  # the other commands still work
    assert "goodnet" in capsys.readouterr().out


MISSPELT = """
from reidcore.hookspecs import hookimpl

@hookimpl
def reid_model():
    return {"typo": "good_plugin_mod:make"}
"""


def test_misspelt_hook_warns(fake_site, lenient, capsys):
    make_distribution(fake_site, "good-plugin", "good_plugin_mod", MISSPELT, "good")
    ps = plugins_mod.discover()
    err = capsys.readouterr().err
    assert "plugin 'good' implements unknown hook 'reid_model'" in err and "reid_models" in err
    assert ps.info("good").error is None and ps.problems


def test_misspelt_hook_is_an_error_in_strict_mode(fake_site, strict):
    make_distribution(fake_site, "good-plugin", "good_plugin_mod", MISSPELT, "good")
    with pytest.raises(PluginLoadError, match="'good' implements unknown hook 'reid_model'"):
        plugins_mod.discover()


def test_strict_mode_calls_pluggy_check_pending(monkeypatch):
    import types

    module = types.ModuleType("typo_plugin")
    exec(MISSPELT, module.__dict__)
    ps = plugins_mod.PluginSet(strict=True)
    calls = []
    original = ps.pm.check_pending
    monkeypatch.setattr(ps.pm, "check_pending", lambda: calls.append(1) or original())
    with pytest.raises(PluginLoadError):
        ps.register(module, plugins_mod.PluginInfo("typo", "t", "0", "typo_plugin"))
    assert calls and "typo" not in [i.name for i in ps.infos]
    assert not ps.pm.is_registered(module)  # not left half-registered


UNMARKED = """
from reidcore.hookspecs import hookimpl

def reid_models():
    return {"unmarked": "good_plugin_mod:make"}
"""


def test_missing_hookimpl_warns_or_fails(fake_site, monkeypatch, capsys):
    make_distribution(fake_site, "good-plugin", "good_plugin_mod", UNMARKED, "good")
    monkeypatch.delenv(plugins_mod.STRICT_ENV, raising=False)
    plugins_mod.discover()
    assert "defines reid_models() without @hookimpl" in capsys.readouterr().err
    monkeypatch.setenv(plugins_mod.STRICT_ENV, "1")
    with pytest.raises(PluginLoadError, match="reid_models\\(\\) without @hookimpl"):
        plugins_mod.discover()


@pytest.mark.parametrize("raise_", ["SystemExit(3)", "GeneratorExit()", "type('Odd', (BaseException,), {})()"])
def test_plugin_raising_base_exception_at_import_is_skipped(fake_site, lenient, capsys, raise_):
    make_distribution(fake_site, "good-plugin", "good_plugin_mod", GOOD, "good")
    make_distribution(fake_site, "broken-plugin", "broken_plugin_mod", f"raise {raise_}\n", "broken")
    ps = plugins_mod.discover()
    assert [i.name for i in ps.failed] == ["broken"]
    assert "'broken' from broken-plugin 1.2.3 failed" in capsys.readouterr().err
    assert "goodnet" in registry.build_registry("model", ps)


def test_system_exit_at_import_is_an_error_in_strict_mode(fake_site, strict):
    make_distribution(fake_site, "broken-plugin", "broken_plugin_mod", "raise SystemExit(3)\n", "broken")
    with pytest.raises(PluginLoadError, match="broken-plugin 1.2.3.*SystemExit: 3"):
        plugins_mod.discover()


def test_keyboard_interrupt_at_import_is_not_swallowed(fake_site, lenient):
    make_distribution(fake_site, "broken-plugin", "broken_plugin_mod", "raise KeyboardInterrupt\n", "broken")
    with pytest.raises(KeyboardInterrupt):
        plugins_mod.discover()


@pytest.mark.parametrize("returned, words", [
    ("['goodnet']", "returned list, not a mapping"),
    ("{1: 'good_plugin_mod:make'}", "returned bad entries [1]"),
    ("{'x': None}", "returned bad entries ['x']"),
])
def test_hook_returning_wrong_type_names_the_plugin(fake_site, lenient, capsys, returned, words):
    src = f"from reidcore.hookspecs import hookimpl\n@hookimpl\ndef reid_models():\n    return {returned}\n"
    make_distribution(fake_site, "good-plugin", "good_plugin_mod", src, "good")
    ps = plugins_mod.discover()
    reg = registry.build_registry("model", ps)
    err = capsys.readouterr().err
    assert "plugin 'good' from good-plugin 1.2.3" in err and f"reid_models() {words}" in err
    assert ps.info("good").error is not None
    assert "good" not in {e.plugin for e in reg.entries.values()}
    with pytest.raises(PluginLoadError, match="plugin 'good'"):
        registry.build_registry("model", plugins_mod.discover(strict=True))


def test_target_of_the_wrong_type_names_the_plugin():
    entry = registry.Entry("recipe", "notaclass", "reidcore.registry:list_recipes", "odd")
    with pytest.raises(PluginLoadError, match="recipe 'notaclass' of plugin 'odd' must be a class"):
        entry.resolve()
    entry = registry.Entry("model", "notcallable", "reidcore.plugins:STRICT_ENV", "odd")
    with pytest.raises(PluginLoadError, match="must be a callable, not str"):
        entry.resolve()


LAZY = """
from reidcore.hookspecs import hookimpl

@hookimpl
def reid_models():
    return {"fine": "lazy_target_mod:make", "gone": "lazy_target_mod:missing",
            "noimport": "no_such_module_xyz:Model"}

def make(**kw):
    return None
"""


def test_plugins_check_reports_broken_lazy_targets(fake_site, lenient, capsys):
    make_distribution(fake_site, "lazy-plugin", "lazy_target_mod", LAZY, "lazy")
    assert main(["plugins"]) == 0  # lazy targets are not imported by a plain listing
    capsys.readouterr()
    assert main(["plugins", "--check"]) == 1
    out = capsys.readouterr().out
    assert "checked every registered target: 2 broken" in out
    assert "model 'gone' of plugin 'lazy'" in out and "model 'noimport' of plugin 'lazy'" in out
    assert "'fine'" not in out.split("problems:")[1]


def test_plugins_check_passes_with_the_installed_plugins(capsys):
    plugins_mod.reset()
    assert main(["plugins", "--check"]) == 0, capsys.readouterr().out
    assert "0 broken" in capsys.readouterr().out


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


def test_kinds_come_from_the_hookspecs():
    assert [k.hook for k in hookspecs.KINDS] == list(HOOK_NAMES)
    assert {k.plural for k in hookspecs.KINDS} >= {"datasets", "losses", "keypoint_estimators"}
    assert registry.BY_PLURAL["losses"].name == "loss"
    pm = plugins_mod.PluginSet().pm
    registry_hooks = {n for n, c in vars(pm.hook).items() if getattr(c, "spec", None) is not None
                      and hasattr(c.spec.function, hookspecs.KIND_ATTRIBUTE)}
    assert registry_hooks == set(HOOK_NAMES)


@pytest.mark.parametrize("kind", hookspecs.KINDS, ids=lambda k: k.plural)
def test_every_kind_has_a_typed_getter_and_a_lister(kind):
    getter = registry.GETTERS[kind.name]
    assert getter.__annotations__.get("return") not in (None, "Any"), getter.__name__
    assert getattr(registry, f"list_{kind.plural}")() == registry.registry(kind.name).names()


@pytest.mark.parametrize("kind", hookspecs.KINDS, ids=lambda k: k.plural)
def test_list_every_kind(kind, capsys):
    assert main(["list", kind.plural]) == 0
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines() if line and not line[0].isspace()] \
        == registry.registry(kind.name).names()


def test_list_losses_names_the_core_loss(capsys):  # was KeyError: 'losse'
    assert main(["list", "losses"]) == 0
    assert "cross_entropy" in capsys.readouterr().out


def test_recipe_defaults_show_no_empty_valued_flags():
    from reidcore.cli import _recipe_defaults
    from reidcore.recipe import TrainConfig

    out = _recipe_defaults(TrainConfig)
    assert "--milestones" not in out and "--trainable-scopes" not in out
    assert "  " not in out and not out.endswith(" ")
    assert "--batch-p 18" in out


def test_plugins_and_registry_have_no_import_cycle():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(plugins_mod))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "registry" not in imported and "reidcore.registry" not in imported


def test_registered_plugin_helper(tiny_plugin):
    assert "tiny" in registry.list_recipes()
    assert registry.get_recipe("tiny").name == "tiny"


def _plugin_module(name: str, **hooks) -> object:
    import types

    from reidcore.hookspecs import hookimpl

    module = types.ModuleType(name)
    for hook_name, mapping in hooks.items():
        def impl(mapping=mapping):
            return mapping
        impl.__name__ = hook_name
        setattr(module, hook_name, hookimpl(impl))
    return module


def test_command_hook_adds_a_verb(capsys):
    from reidcore.testing import registered_plugin

    calls = []

    def hello(argv):
        calls.append(argv)
        return 3

    module = _plugin_module("hello_plugin", reid_commands={"hello": hello})
    with registered_plugin(module, "hello"):
        assert registry.get_command("hello") is hello
        assert main(["hello", "--loud", "x"]) == 3 and calls == [["--loud", "x"]]
        assert main(["--help"]) == 0
        assert "hello      (command of plugin 'hello')" in capsys.readouterr().out
        assert main(["hellp"]) == 2
        assert "Did you mean 'hello'?" in capsys.readouterr().err
    assert "hello" not in registry.list_commands()


def test_loss_hook_registers_a_loss():
    from reidcore.testing import registered_plugin

    class Margin:
        def __init__(self, margin=1.0):
            self.margin = margin

    with registered_plugin(_plugin_module("loss_plugin", reid_losses={"margin": Margin}), "lp"):
        loss = registry.create_loss("margin", margin=0.2)
        assert isinstance(loss, Margin) and loss.margin == 0.2
        assert registry.registry("loss").entry("margin").plugin == "lp"


def test_backbone_hook_registers_a_factory():
    from reidcore.testing import registered_plugin

    def flat(pretrained="none", in_channels=3):
        return ("flat", pretrained, in_channels)

    with registered_plugin(_plugin_module("bb_plugin", reid_backbones={"flat": flat}), "bb"):
        assert registry.create_backbone("flat", in_channels=4) == ("flat", "none", 4)
        assert "flat" in registry.list_backbones()
    assert "flat" not in registry.list_backbones()


def test_first_party_hint_distributions_are_first_party():
    assert set(registry.FIRST_PARTY) <= plugins_mod.FIRST_PARTY_DISTRIBUTIONS
    assert plugins_mod.PluginInfo("x", "reid-pse", "0", "m").first_party
    assert not plugins_mod.PluginInfo("x", "reid-pse-fork", "0", "m").first_party
