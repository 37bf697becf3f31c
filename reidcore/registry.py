"""Typed registries built from the plugins' hooks.

One registry per kind of :data:`reidcore.hookspecs.KINDS` (the hook specifications
are the only list of kinds), each with a typed getter and a lister:

* dataset: :func:`load_dataset`, :func:`list_datasets`
* backbone: :func:`create_backbone`, :func:`list_backbones`
* model: :func:`create_model`, :func:`list_models`
* loss: :func:`create_loss`, :func:`list_losses`
* recipe: :func:`get_recipe`, :func:`list_recipes`
* command: :func:`get_command`, :func:`list_commands`
* excluder: :func:`get_excluder`, :func:`list_excluders`
* reranker: :func:`get_reranker`, :func:`list_rerankers`
* keypoint_estimator: :func:`get_keypoint_estimator`, :func:`list_keypoint_estimators`

An unknown name raises :class:`~reidcore.errors.UnknownNameError` listing the known
names, the closest one, and the distribution to install when the name is a
first-party one. A name registered by two plugins goes to the first-party plugin
(or, between third-party ones, the one loaded first); the clash is printed on stderr
and listed by ``python -m reidcore plugins``, and is a
:class:`~reidcore.errors.DuplicateNameError` in strict mode.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from reidcore import hookspecs
from reidcore import plugins as plugins_mod
from reidcore.errors import DuplicateNameError, PluginLoadError, UnknownNameError

if TYPE_CHECKING:
    import numpy as np
    import torch

    from reidcore.data.records import Split
    from reidcore.recipe import Recipe

KINDS: dict[str, hookspecs.Kind] = {k.name: k for k in hookspecs.KINDS}
"""Registry kinds by singular name, from the hook specifications."""

BY_PLURAL: dict[str, hookspecs.Kind] = {k.plural: k for k in hookspecs.KINDS}
"""The same kinds by plural (``"losses"``), the word ``python -m reidcore list`` takes."""

# first-party names -> the distribution that provides them (for "pip install" hints)
FIRST_PARTY = {
    "reid-datasets": {"market1501", "csv", "folder", "synthetic", "duke", "cuhk03", "mars",
                      "msmt17", "combined"},
    "reid-trinet": {"trinet", "batch_hard", "batch_all"},
    "reid-pse": {"pse", "pose-maps", "views", "market1501-pose-maps", "synthetic-pose-maps",
                 "csv-pose-maps", "duke-pose-maps", "folder-pose-maps", "rap", "ecn", "ecn-orig"},
    "reid-dcnn": {"dcnn"},
    "reid-san": {"san", "san-pg", "pit", "synthetic-textures"},
    "reid-bot": {"bot", "center"},
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
            PluginLoadError: the module or attribute cannot be imported (anything the
                import raises, ``SystemExit`` included), or the object is not what the
                kind's hook specification asks for (a class for recipes, else a callable).
        """
        obj = self.target
        if isinstance(obj, str):
            modname, _, attr = obj.partition(":")
            try:
                obj = importlib.import_module(modname)
                for part in attr.split(".") if attr else []:
                    obj = getattr(obj, part)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - a plugin's import may raise anything
                raise PluginLoadError(
                    f"{self.kind} {self.name!r} of plugin {self.plugin!r} points to "
                    f"{self.target!r}, which cannot be imported: {plugins_mod.error_text(exc)}"
                ) from exc
        want = KINDS[self.kind].target if self.kind in KINDS else "callable"
        if not (isinstance(obj, type) if want == "class" else callable(obj)):
            raise PluginLoadError(
                f"{self.kind} {self.name!r} of plugin {self.plugin!r} must be a {want}, "
                f"not {type(obj).__name__} ({self.target!r})"
            )
        return obj


@attrs.frozen
class Clash:
    """A name registered by two plugins: which one was kept and which one dropped."""

    kind: str
    name: str
    kept: str
    dropped: str

    def message(self) -> str:
        return (f"{self.kind} {self.name!r} is registered by both plugin {self.kept!r} and "
                f"plugin {self.dropped!r}; using {self.kept!r}'s (uninstall one of them)")


class Registry:
    """Names of one kind (datasets, models, ...) mapped to their :class:`Entry`."""

    def __init__(self, kind: str, entries: dict[str, Entry], clashes: Sequence[Clash] = ()):
        self.kind = kind
        self.entries = entries
        self.clashes = list(clashes)

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


def _hook_mapping(plugins: plugins_mod.PluginSet, kind: hookspecs.Kind, impl) -> dict | None:
    """One plugin's ``{name: target}`` for ``kind``, or ``None`` after reporting it broken."""
    info = plugins.info(impl.plugin_name) or plugins_mod.PluginInfo(
        impl.plugin_name, "unknown", "unknown", repr(impl.plugin))
    try:
        mapping = impl.function()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - a broken plugin must not stop the others
        error = f"{kind.hook}() raised {plugins_mod.error_text(exc)}"
    else:
        error = None
        if mapping is None:
            return {}
        if not isinstance(mapping, Mapping):
            error = (f"{kind.hook}() returned {type(mapping).__name__}, not a mapping "
                     f"{{name: target}}")
        else:
            bad = [k for k, v in mapping.items()
                   if not isinstance(k, str) or not k or v is None
                   or (isinstance(v, str) and not v.partition(":")[0])]
            if bad:
                error = (f"{kind.hook}() returned bad entries {bad!r}: names must be non-empty "
                         f"strings and targets objects or 'module:attr' strings")
    if error is not None:
        plugins.report_failure(attrs.evolve(info, error=error))
        return None
    return dict(mapping)


def build_registry(kind: str, plugins: plugins_mod.PluginSet | None = None) -> Registry:
    """Call every plugin's hook for ``kind`` and merge the mappings.

    Plugins are visited in load order (the core's built-ins first). A plugin whose hook
    raises or returns something other than ``{str: target}`` is reported by name and its
    names of this kind are skipped.

    Raises:
        PluginLoadError: strict mode, and a hook raised or returned the wrong type.
        DuplicateNameError: strict mode, and two plugins register the same name.
    """
    plugins = plugins or plugins_mod.get_plugins()
    spec = KINDS[kind]
    hook = getattr(plugins.pm.hook, spec.hook)
    impls = sorted(hook.get_hookimpls(), key=lambda impl: plugins.load_index(impl.plugin_name))
    entries: dict[str, Entry] = {}
    clashes: list[Clash] = []
    for impl in impls:
        mapping = _hook_mapping(plugins, spec, impl)
        for name, target in (mapping or {}).items():
            new = Entry(kind, name, target, impl.plugin_name)
            old = entries.get(name)
            if old is not None:
                old_info, new_info = plugins.info(old.plugin), plugins.info(new.plugin)
                take_new = (new_info is not None and new_info.first_party
                            and not (old_info is not None and old_info.first_party))
                kept, dropped = (new, old) if take_new else (old, new)
                clash = Clash(kind, name, kept.plugin, dropped.plugin)
                clashes.append(clash)
                plugins.problem(clash.message(), DuplicateNameError)
                new = kept
            entries[name] = new
    return Registry(kind, entries, clashes)


def registry(kind: str) -> Registry:
    """The registry of ``kind`` (singular: "dataset", "loss", ...), built once per plugin set.

    Raises:
        KeyError: ``kind`` is not one of :data:`KINDS`.
    """
    if kind not in KINDS:
        raise KeyError(f"unknown registry kind {kind!r}; kinds: {', '.join(KINDS)}")
    plugins = plugins_mod.get_plugins()
    if kind not in plugins.registries:
        plugins.registries[kind] = build_registry(kind, plugins)
    return plugins.registries[kind]


def clear_cache() -> None:
    """Rebuild every registry on next use (after registering or removing a plugin)."""
    if plugins_mod._CURRENT is not None:
        plugins_mod._CURRENT.registries.clear()


def check_targets(plugins: plugins_mod.PluginSet | None = None) -> list[str]:
    """Import every registered ``"module:attr"`` target; one line per broken one.

    Used by ``python -m reidcore plugins --check``. An empty list means every target
    imports and is of the type its hook specification asks for.
    """
    broken = []
    for kind in KINDS:
        reg = registry(kind) if plugins is None else build_registry(kind, plugins)
        for name in reg.names():
            try:
                reg.entry(name).resolve()
            except PluginLoadError as exc:
                broken.append(str(exc))
    return broken


def _lister(kind: str) -> Callable[[], list[str]]:
    def list_names() -> list[str]:
        return registry(kind).names()

    list_names.__name__ = f"list_{KINDS[kind].plural}"
    list_names.__doc__ = f"Sorted names of every registered {kind}."
    return list_names


list_datasets = _lister("dataset")
list_backbones = _lister("backbone")
list_models = _lister("model")
list_losses = _lister("loss")
list_recipes = _lister("recipe")
list_commands = _lister("command")
list_excluders = _lister("excluder")
list_rerankers = _lister("reranker")
list_keypoint_estimators = _lister("keypoint_estimator")


def load_dataset(name: str, root: str | Path | None = None, **kwargs: Any) -> Split:
    """Read a registered dataset into a :class:`reidcore.data.Split` (``reid_datasets``).

    Raises:
        UnknownNameError: no plugin registers ``name``.
        DatasetError: the data folder is missing, empty or not in the expected layout.
    """
    reader = registry("dataset").get(name)
    return reader(Path(root).expanduser() if root is not None else None, **kwargs)


def create_backbone(name: str, **kwargs: Any) -> torch.nn.Module:
    """Build a registered backbone: ``torch.nn.Module`` with ``out_channels`` (``reid_backbones``)."""
    return registry("backbone").get(name)(**kwargs)


def create_model(name: str, **kwargs: Any) -> torch.nn.Module:
    """Build a registered model: ``torch.nn.Module`` (see ``reid_models``)."""
    return registry("model").get(name)(**kwargs)


def create_loss(name: str, **kwargs: Any) -> torch.nn.Module:
    """Build a registered loss module (see ``reid_losses``)."""
    return registry("loss").get(name)(**kwargs)


def get_recipe(name: str) -> Recipe:
    """An instance of the registered :class:`reidcore.recipe.Recipe` subclass (``reid_recipes``)."""
    return registry("recipe").get(name)()


def get_command(name: str) -> Callable[[list[str]], int]:
    """A registered CLI verb: ``command(argv) -> int`` (``reid_commands``)."""
    return registry("command").get(name)


def get_excluder(name: str) -> Callable[..., np.ndarray]:
    """A registered evaluation protocol: ``excluder(q_pid, q_camid, g_pids, g_camids, q_index)
    -> ndarray (n_g,) bool`` (``reid_excluders``)."""
    return registry("excluder").get(name)


def get_reranker(name: str) -> Callable[..., np.ndarray]:
    """A registered re-ranker: ``reranker(query (n_q, D), gallery (n_g, D), *, metric, **kw)
    -> ndarray (n_q, n_g) float32`` distances (``reid_rerankers``)."""
    return registry("reranker").get(name)


def get_keypoint_estimator(name: str) -> Callable[[Sequence[str]], np.ndarray]:
    """A registered keypoint estimator: ``estimator(paths) -> ndarray (N, 14, 3) float32``
    (``reid_keypoint_estimators``)."""
    return registry("keypoint_estimator").get(name)


GETTERS: dict[str, Callable[..., Any]] = {
    "dataset": load_dataset,
    "backbone": create_backbone,
    "model": create_model,
    "loss": create_loss,
    "recipe": get_recipe,
    "command": get_command,
    "excluder": get_excluder,
    "reranker": get_reranker,
    "keypoint_estimator": get_keypoint_estimator,
}
"""The typed getter of every kind (a test checks that each kind of :data:`KINDS` has one)."""
