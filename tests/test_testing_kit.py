"""reidcore.testing, the kit for plugin authors: registering plugins and the tiny dataset."""

from __future__ import annotations

import re
import types

from PIL import Image

from reidcore import plugins as plugins_mod
from reidcore import registry
from reidcore.hookspecs import hookimpl
from reidcore.testing import registered_plugin, write_tiny_market


def _model_plugin(model_name: str) -> types.ModuleType:
    module = types.ModuleType(f"plugin_{model_name}")

    @hookimpl
    def reid_models():
        return {model_name: dict}

    module.reid_models = reid_models
    return module


def test_registering_an_already_registered_plugin_is_a_no_op(tiny_plugin):
    # tiny_plugin is "installed" (registered) already; registering it again used to raise
    # pluggy's "Plugin name already registered"
    with registered_plugin(tiny_plugin, "tiny"), registered_plugin(tiny_plugin, "tiny-again"):
        assert "tiny" in registry.list_recipes()
    assert "tiny" in registry.list_recipes()  # the outer registration is untouched
    assert plugins_mod.get_plugins().pm.is_registered(tiny_plugin)


def test_a_module_under_an_installed_name_replaces_it_for_the_block():
    first, second = _model_plugin("first-net"), _model_plugin("second-net")
    with registered_plugin(first, "swap"):
        names_before = [i.name for i in plugins_mod.get_plugins().infos]
        with registered_plugin(second, "swap"):
            assert "second-net" in registry.list_models()
            assert "first-net" not in registry.list_models()
        assert "first-net" in registry.list_models() and "second-net" not in registry.list_models()
        assert [i.name for i in plugins_mod.get_plugins().infos] == names_before
    assert "first-net" not in registry.list_models()


def test_write_tiny_market_is_in_the_market1501_layout(tmp_path):
    root = write_tiny_market(tmp_path / "market", num_ids=6, cams=3, per_cam=2)
    pattern = re.compile(r"^(\d{4})_c(\d)s(\d)_(\d{6})_00\.jpg$")
    seen = {}
    for folder in ("bounding_box_train", "query", "bounding_box_test"):
        files = sorted((root / folder).iterdir())
        assert files, folder
        for f in files:
            m = pattern.match(f.name)
            assert m, f.name
            seen.setdefault(folder, set()).add((int(m[1]), int(m[2])))
            with Image.open(f) as im:
                assert im.format == "JPEG" and im.size == (16, 32)
    assert {p for p, _ in seen["bounding_box_train"]} == {1, 2, 3}
    assert {c for _, c in seen["query"]} == {1, 2, 3}
    assert {p for p, _ in seen["query"]} == {p for p, _ in seen["bounding_box_test"]} == {4, 5, 6}
