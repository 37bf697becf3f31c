"""Typed registries built from the plugins' hooks.

``create_model("trinet", backbone="resnet50")``, ``load_dataset("market1501", root)``,
``get_recipe("trinet")``, ``list_models()`` ... An unknown name raises
:class:`~reidcore.errors.UnknownNameError` listing the known names, the closest
one, and the distribution to install when the name is a first-party one.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from reidcore.errors import DuplicateNameError, PluginLoadError, UnknownNameError

# registry kind -> hook name
KINDS = {
    "dataset": "reid_datasets",
    "backbone": "reid_backbones",
    "model": "reid_models",
    "loss": "reid_losses",
    "recipe": "reid_recipes",
    "command": "reid_commands",
    "excluder": "reid_excluders",
    "reranker": "reid_rerankers",
    "keypoint_estimator": "reid_keypoint_estimators",
}

# first-party names -> the distribution that provides them (for "pip install" hints)
FIRST_PARTY = {
    "reid-datasets": {"market1501", "csv", "folder", "synthetic", "duke", "cuhk03", "mars",
                      "msmt17", "combined"},
    "reid-trinet": {"trinet", "batch_hard", "batch_all"},
    "reid-pse": {"pse", "pose-maps", "views", "market1501-pose-maps", "synthetic-pose-maps",
                 "csv-pose-maps", "duke-pose-maps", "folder-pose-maps", "rap", "ecn", "ecn-orig"},
    "reid-dcnn": {"dcnn"},
    "reid-san": {"san", "san-pg", "pit", "synthetic-textures"},
}


@attrs.frozen
class Entry:
    """A registered name: its target and the plugin that registered it."""

    kind: str
    name: str
    target: Any
    plugin: str

    def resolve(self) -> Any:
        """The target object, importing a ``"module:attr"`` string on first use.

        Raises:
            PluginLoadError: the module or attribute cannot be imported.
        """
        if not isinstance(self.target, str):
            return self.target
        modname, _, attr = self.target.partition(":")
        try:
            obj = importlib.import_module(modname)
            for part in attr.split(".") if attr else []:
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            raise PluginLoadError(
                f"{self.kind} {self.name!r} of plugin {self.plugin!r} points to "
                f"{self.target!r}, which cannot be imported: {type(exc).__name__}: {exc}"
            ) from exc
        return obj


class Registry:
    """Names of one kind (datasets, models, ...) mapped to their :class:`Entry`."""

    def __init__(self, kind: str, entries: dict[str, Entry]):
        self.kind = kind
        self.entries = entries

    def names(self) -> list[str]:
        return sorted(self.entries)

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def entry(self, name: str) -> Entry:
        try:
            return self.entries[name]
        except KeyError:
            hint = None
            for dist, names in FIRST_PARTY.items():
                if name in names:
                    hint = f"{name!r} is provided by {dist}: pip install {dist}"
            raise UnknownNameError(self.kind, name, self.names(), hint) from None

    def get(self, name: str) -> Any:
        return self.entry(name).resolve()


def build_registry(kind: str, plugins=None) -> Registry:
    """Call every plugin's hook for ``kind`` and merge the mappings.

    Raises:
        DuplicateNameError: two plugins register the same name.
    """
    from reidcore import plugins as plugins_mod

    plugins = plugins or plugins_mod.get_plugins()
    hook = getattr(plugins.pm.hook, KINDS[kind])
    entries: dict[str, Entry] = {}
    for impl in reversed(hook.get_hookimpls()):  # registration order
        try:
            mapping = impl.function() or {}
        except Exception as exc:  # noqa: BLE001
            info = next((i for i in plugins.infos if i.name == impl.plugin_name), None)
            if info is not None:
                plugins.infos.remove(info)
                plugins.report_failure(
                    attrs.evolve(info, error=f"{KINDS[kind]}() raised {type(exc).__name__}: {exc}"),
                    plugins_mod.strict_mode(),
                )
            continue
        for name, target in mapping.items():
            if name in entries:
                raise DuplicateNameError(
                    f"{kind} {name!r} is registered by both plugin {entries[name].plugin!r} "
                    f"and plugin {impl.plugin_name!r}; uninstall one of them"
                )
            entries[name] = Entry(kind, name, target, impl.plugin_name)
    return Registry(kind, entries)


_CACHE: dict[str, Registry] = {}


def registry(kind: str) -> Registry:
    """The cached registry of ``kind`` ("dataset", "model", "loss", ...)."""
    if kind not in _CACHE:
        _CACHE[kind] = build_registry(kind)
    return _CACHE[kind]


def clear_cache() -> None:
    _CACHE.clear()


def _lister(kind: str) -> Callable[[], list[str]]:
    def list_names() -> list[str]:
        return registry(kind).names()

    list_names.__doc__ = f"Sorted names of every registered {kind}."
    return list_names


list_datasets = _lister("dataset")
list_backbones = _lister("backbone")
list_models = _lister("model")
list_losses = _lister("loss")
list_recipes = _lister("recipe")
list_commands = _lister("command")


def create_model(name: str, **kwargs: Any):
    """Build a registered model: ``torch.nn.Module`` (see ``reid_models``)."""
    return registry("model").get(name)(**kwargs)


def create_backbone(name: str, **kwargs: Any):
    """Build a registered backbone: ``torch.nn.Module`` with ``out_channels``."""
    return registry("backbone").get(name)(**kwargs)


def create_loss(name: str, **kwargs: Any):
    """Build a registered loss module (see ``reid_losses``)."""
    return registry("loss").get(name)(**kwargs)


def load_dataset(name: str, root: str | Path | None = None, **kwargs: Any):
    """Read a registered dataset into a :class:`reidcore.data.Split`.

    Raises:
        UnknownNameError: no plugin registers ``name``.
        DatasetError: the data folder is missing, empty or not in the expected layout.
    """
    reader = registry("dataset").get(name)
    return reader(Path(root).expanduser() if root is not None else None, **kwargs)


def get_recipe(name: str):
    """An instance of the registered :class:`reidcore.recipe.Recipe` subclass."""
    return registry("recipe").get(name)()


def get_command(name: str):
    """A registered CLI verb: ``command(argv) -> int``."""
    return registry("command").get(name)
