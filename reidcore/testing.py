"""Helpers for tests of reidcore and of third-party plugins.

``registered_plugin(module, name)`` registers a plugin module (an object with
``@hookimpl`` functions) for the duration of a ``with`` block and rebuilds the
registries around it, so a test sees exactly what an installed plugin would add.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from reidcore import plugins as plugins_mod
from reidcore import registry


@contextlib.contextmanager
def registered_plugin(module: object, name: str, distribution: str = "test",
                      version: str = "0") -> Iterator[None]:
    """Register ``module`` as plugin ``name`` inside the block; unregister it afterwards."""
    current = plugins_mod.get_plugins()
    current.register(module, plugins_mod.PluginInfo(name, distribution, version, repr(module)))
    registry.clear_cache()
    try:
        yield
    finally:
        current.unregister(name)
        registry.clear_cache()
