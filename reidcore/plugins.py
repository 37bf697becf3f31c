"""Plugin discovery: the core's built-ins plus every entry point of group ``reidcore``.

Each entry point is loaded and registered on its own; one that fails to import
or register is reported (plugin name, distribution, version, core version) and
the others still load. Anything a plugin raises while importing is caught
(``SystemExit`` included); only a real ``KeyboardInterrupt`` goes through.

Problems that do not stop a plugin from loading -- a ``reid_*`` function without
``@hookimpl``, a misspelt hook name (pluggy's ``check_pending``), the same name
registered by two plugins -- are warnings on stderr, kept in
:attr:`PluginSet.problems` for ``python -m reidcore plugins``.

Set ``REIDCORE_STRICT_PLUGINS=1`` (CI does) to turn every failure and problem into a
:class:`~reidcore.errors.PluginLoadError` (a clash: :class:`~reidcore.errors.DuplicateNameError`).

This module imports nothing of :mod:`reidcore.registry`; the registries cache
themselves in :attr:`PluginSet.registries`, so forgetting a plugin set forgets them.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import traceback
from importlib import metadata
from typing import Any

import attrs
import pluggy

from reidcore import __version__, hookspecs
from reidcore.errors import PluginLoadError

ENTRY_POINT_GROUP = "reidcore"
STRICT_ENV = "REIDCORE_STRICT_PLUGINS"
BUILTIN_PLUGINS = ("reidcore.builtins",)

FIRST_PARTY_DISTRIBUTIONS = frozenset(
    {"reidcore", "reid-datasets", "reid-trinet", "reid-pse", "reid-dcnn", "reid-san", "reid-bot"}
)
"""Distributions of this repository; their names win a clash with a third-party plugin."""


@attrs.frozen
class PluginInfo:
    """One loaded (or failed) plugin."""

    name: str
    distribution: str
    version: str
    module: str
    error: str | None = None

    @property
    def first_party(self) -> bool:
        return self.distribution in FIRST_PARTY_DISTRIBUTIONS


def strict_mode() -> bool:
    """Whether ``REIDCORE_STRICT_PLUGINS`` asks for failures to be errors."""
    return os.environ.get(STRICT_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def error_text(exc: BaseException) -> str:
    """``"Type: message (file:line)"`` of an exception, the line where it was raised."""
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" ({last[0].filename}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


def unmarked_hooks(module: object) -> list[str]:
    """Names of ``reid_*`` functions of ``module`` that lack ``@hookimpl``.

    Such a function is silently ignored by pluggy, so a plugin that forgot the
    decorator would register nothing without a word.
    """
    marker = f"{hookspecs.PROJECT}_impl"
    found = []
    for name in dir(module):
        obj = getattr(module, name, None)
        if name.startswith("reid_") and inspect.isfunction(obj) and not hasattr(obj, marker):
            found.append(name)
    return found


class PluginSet:
    """A pluggy manager plus what was loaded, what failed and what looked wrong.

    Attributes:
        pm: the ``pluggy.PluginManager`` (project ``reidcore``) with :mod:`reidcore.hookspecs`.
        infos: every plugin in load order (the core's built-ins first), failed ones
            with ``error`` set.
        problems: warnings (unmarked or unknown hooks, name clashes), one line each.
        registries: the registries built from this set, by kind (filled by
            :func:`reidcore.registry.registry`; emptied whenever a plugin is added or removed).
    """

    def __init__(self, strict: bool | None = None) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.infos: list[PluginInfo] = []
        self.problems: list[str] = []
        self.registries: dict[str, Any] = {}
        self._strict = strict

    @property
    def strict(self) -> bool:
        """The ``strict`` given at creation, else ``REIDCORE_STRICT_PLUGINS`` now."""
        return strict_mode() if self._strict is None else self._strict

    @property
    def failed(self) -> list[PluginInfo]:
        return [i for i in self.infos if i.error is not None]

    def info(self, name: str) -> PluginInfo | None:
        """The plugin called ``name``, or ``None``."""
        return next((i for i in self.infos if i.name == name), None)

    def load_index(self, name: str) -> int:
        """Position of plugin ``name`` in load order (unknown plugins last)."""
        names = [i.name for i in self.infos]
        return names.index(name) if name in names else len(names)

    def register(self, module: object, info: PluginInfo) -> None:
        """Register a module of hook implementations as plugin ``info.name``.

        Raises:
            PluginLoadError: strict mode, and the module has a ``reid_*`` function
                without ``@hookimpl`` or a hook implementation with no specification
                (the module is then not registered).
            ValueError: pluggy refuses it (the name or module is already registered).
        """
        for fn in unmarked_hooks(module):
            self.problem(f"plugin {info.name!r} ({info.distribution}) defines {fn}() without "
                         f"@hookimpl, so it is ignored", PluginLoadError)
        self.pm.register(module, name=info.name)
        try:
            self.check_pending(info.name)
        except PluginLoadError:
            self.pm.unregister(name=info.name)
            raise
        self.infos.append(info)
        self.registries.clear()

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)
        self.infos = [i for i in self.infos if i.name != name]
        self.registries.clear()

    def check_pending(self, plugin_name: str | None = None) -> None:
        """pluggy's ``check_pending``: every hook implementation must match a specification.

        Strict mode calls ``pm.check_pending()`` and raises; otherwise each unknown
        hook is a warning. ``plugin_name`` limits the warnings to that plugin.

        Raises:
            PluginLoadError: strict mode, and a hook name is not specified (a typo such
                as ``reid_model`` for ``reid_models``).
        """
        unknown = []
        for hook_name, caller in vars(self.pm.hook).items():
            if getattr(caller, "spec", True) is not None:  # specified hooks (and non-callers)
                continue
            for impl in caller.get_hookimpls():
                if not impl.optionalhook and plugin_name in (None, impl.plugin_name):
                    unknown.append(f"plugin {impl.plugin_name!r} implements unknown hook "
                                   f"{hook_name!r}; known hooks: {', '.join(hookspecs.HOOK_NAMES)}")
        if self.strict:
            try:
                self.pm.check_pending()
            except pluggy.PluginValidationError as exc:
                raise PluginLoadError("; ".join(unknown) or str(exc)) from exc
        for message in unknown:
            self.problem(message, PluginLoadError)

    def problem(self, message: str, error: type[Exception]) -> None:
        """Record a warning and print it; in strict mode raise ``error(message)`` instead."""
        if self.strict:
            raise error(message)
        if message not in self.problems:
            self.problems.append(message)
            print(f"reidcore: warning: {message} (set {STRICT_ENV}=1 to make this an error)",
                  file=sys.stderr)

    def report_failure(self, info: PluginInfo, strict: bool | None = None) -> None:
        """Record a plugin that failed (``info.error`` set) and print it.

        Raises:
            PluginLoadError: in strict mode.
        """
        strict = self.strict if strict is None else strict
        names = [i.name for i in self.infos]
        if info.name in names:  # a loaded plugin whose hook failed later: keep its place
            self.infos[names.index(info.name)] = info
        else:
            self.infos.append(info)
        msg = (
            f"reidcore: plugin {info.name!r} from {info.distribution} {info.version} "
            f"failed to load with reidcore {__version__}: {info.error}"
        )
        if strict:
            raise PluginLoadError(msg)
        print(f"{msg} (skipped; set {STRICT_ENV}=1 to make this an error)", file=sys.stderr)


def _load_entry_point(ep: metadata.EntryPoint) -> object:
    """``ep.load()``, turning anything but a real KeyboardInterrupt into an exception."""
    try:
        return ep.load()
    except (Exception, KeyboardInterrupt):
        raise
    except BaseException as exc:  # SystemExit, GeneratorExit, ... raised by a plugin at import
        raise PluginLoadError(error_text(exc)) from exc


def discover(strict: bool | None = None) -> PluginSet:
    """Load built-ins and entry points into a fresh :class:`PluginSet`.

    Entry points are loaded in name order after the core's built-ins; a name that
    appears twice (one distribution found twice on ``sys.path``) is loaded once.

    Raises:
        PluginLoadError: a plugin failed or has an unmarked or unknown hook, in strict mode.
    """
    plugins = PluginSet(strict)
    for modname in BUILTIN_PLUGINS:
        module = importlib.import_module(modname)
        plugins.register(module, PluginInfo("reidcore", "reidcore", __version__, modname))
    seen: set[str] = set()
    for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist = getattr(ep, "dist", None)
        dist_name = dist.metadata["Name"] if dist is not None else "unknown"
        dist_version = dist.version if dist is not None else "unknown"
        if ep.name in seen:
            continue
        seen.add(ep.name)
        info = PluginInfo(ep.name, dist_name, dist_version, ep.value)
        try:
            module = _load_entry_point(ep)
        except PluginLoadError as exc:
            plugins.report_failure(attrs.evolve(info, error=str(exc)))
            continue
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop the others
            plugins.report_failure(attrs.evolve(info, error=error_text(exc)))
            continue
        try:
            plugins.register(module, info)
        except PluginLoadError:
            raise
        except ValueError as exc:  # pluggy: module already registered under another name
            plugins.report_failure(attrs.evolve(info, error=error_text(exc)))
    return plugins


_CURRENT: PluginSet | None = None


def get_plugins() -> PluginSet:
    """The process-wide plugin set, discovered on first use."""
    global _CURRENT
    if _CURRENT is None:
        _CURRENT = discover()
    return _CURRENT


def reset() -> None:
    """Forget the discovered plugins and their registries (tests, or after installing a plugin)."""
    global _CURRENT
    _CURRENT = None
