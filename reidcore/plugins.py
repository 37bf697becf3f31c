"""Plugin discovery: the core's built-ins plus every entry point of group ``reidcore``.

Each entry point is loaded and registered on its own; one that fails to import
or register is reported (plugin name, distribution, version, core version) and
the others still load. Set ``REIDCORE_STRICT_PLUGINS=1`` to turn such a failure
into a :class:`~reidcore.errors.PluginLoadError` (CI does).
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from importlib import metadata

import attrs
import pluggy

from reidcore import __version__, hookspecs
from reidcore.errors import PluginLoadError

ENTRY_POINT_GROUP = "reidcore"
STRICT_ENV = "REIDCORE_STRICT_PLUGINS"
BUILTIN_PLUGINS = ("reidcore.builtins",)


@attrs.frozen
class PluginInfo:
    """One loaded (or failed) plugin."""

    name: str
    distribution: str
    version: str
    module: str
    error: str | None = None


def strict_mode() -> bool:
    return os.environ.get(STRICT_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


class PluginSet:
    """A pluggy manager plus what was loaded and what failed."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.infos: list[PluginInfo] = []

    @property
    def failed(self) -> list[PluginInfo]:
        return [i for i in self.infos if i.error is not None]

    def register(self, module: object, info: PluginInfo) -> None:
        self.pm.register(module, name=info.name)
        self.infos.append(info)

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)
        self.infos = [i for i in self.infos if i.name != name]

    def report_failure(self, info: PluginInfo, strict: bool) -> None:
        self.infos.append(info)
        msg = (
            f"reidcore: plugin {info.name!r} from {info.distribution} {info.version} "
            f"failed to load with reidcore {__version__}: {info.error}"
        )
        if strict:
            raise PluginLoadError(msg)
        print(f"{msg} (skipped; set {STRICT_ENV}=1 to make this an error)", file=sys.stderr)


def _error_text(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" ({last[0].filename}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


def discover(strict: bool | None = None) -> PluginSet:
    """Load built-ins and entry points into a fresh :class:`PluginSet`.

    Raises:
        PluginLoadError: a plugin failed and strict mode is on.
    """
    strict = strict_mode() if strict is None else strict
    plugins = PluginSet()
    for modname in BUILTIN_PLUGINS:
        module = importlib.import_module(modname)
        plugins.register(module, PluginInfo("reidcore", "reidcore", __version__, modname))
    seen: set[str] = set()
    for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist = getattr(ep, "dist", None)
        dist_name = dist.metadata["Name"] if dist is not None else "unknown"
        dist_version = dist.version if dist is not None else "unknown"
        if ep.name in seen:  # the same distribution seen twice on sys.path
            continue
        seen.add(ep.name)
        info = PluginInfo(ep.name, dist_name, dist_version, ep.value)
        try:
            module = ep.load()
            plugins.register(module, info)
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop the others
            plugins.report_failure(attrs.evolve(info, error=_error_text(exc)), strict)
    return plugins


_CURRENT: PluginSet | None = None


def get_plugins() -> PluginSet:
    """The process-wide plugin set, discovered on first use."""
    global _CURRENT
    if _CURRENT is None:
        _CURRENT = discover()
    return _CURRENT


def reset() -> None:
    """Forget the discovered plugins and registries (tests, or after installing a plugin)."""
    global _CURRENT
    _CURRENT = None
    from reidcore import registry

    registry.clear_cache()
