"""attrs config classes ↔ argparse flags: every field ``batch_p`` is a flag ``--batch-p``."""

from __future__ import annotations

import argparse
import types
import typing
from typing import Any

import attrs


def _parse_optional(base: type):
    def parse(text: str):
        return None if text.lower() in {"none", "null", ""} else base(text)
    parse.__name__ = base.__name__
    return parse


def _flag_kwargs(field: attrs.Attribute) -> dict[str, Any]:
    tp = field.type
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    kw: dict[str, Any] = {}
    if tp is bool:
        kw["action"] = argparse.BooleanOptionalAction
    elif origin is tuple:
        kw.update(nargs="*", type=args[0] if args else str, metavar="N")
    elif origin in (typing.Union, types.UnionType) and type(None) in args:
        base = next(a for a in args if a is not type(None))
        kw["type"] = _parse_optional(base)
    elif tp in (int, float, str):
        kw["type"] = tp
    else:
        kw["type"] = str
    return kw


def add_config_flags(parser: argparse.ArgumentParser, config_class: type) -> None:
    """Add one flag per field of ``config_class``; unset flags stay absent from the namespace."""
    attrs.resolve_types(config_class)
    group = parser.add_argument_group(f"{config_class.__name__} (recipe defaults in brackets)")
    for f in attrs.fields(config_class):
        help_text = f.metadata.get("help", "")
        default = f.default
        shown = " ".join(map(str, default)) if isinstance(default, tuple) else default
        group.add_argument(
            "--" + f.name.replace("_", "-"), dest=f.name, default=argparse.SUPPRESS,
            help=f"{help_text} [{shown}]", **_flag_kwargs(f),
        )


def config_overrides(namespace: argparse.Namespace, config_class: type) -> dict[str, Any]:
    """The config fields the user set explicitly on the command line."""
    names = {f.name for f in attrs.fields(config_class)}
    return {k: v for k, v in vars(namespace).items() if k in names}
