"""attrs config classes ↔ argparse flags: every field ``batch_p`` is a flag ``--batch-p``.

Each field's constraints (:func:`reidcore.recipe.field`: bounds, choices, a registry kind)
become the flag's parse-time check, so ``--height 0`` or ``--rerank k-reciprocl`` fail while
the command line is parsed, before any experiment folder exists. Flags are shown in the
groups of :data:`reidcore.recipe.GROUPS`; a recipe's own fields in a section of their own.
"""

from __future__ import annotations

import argparse
import types
import typing
from collections.abc import Callable
from typing import Any

import attrs

from reidcore.recipe import GROUPS, check_value, field_spec

GROUP_TITLES = {
    "data": "data (dataset, input size, augmentation, P×K sampler)",
    "model": "model (architecture, weights, initialisation)",
    "optimisation": "optimisation (optimizer, learning rate, precision, frozen scopes)",
    "schedule": "schedule (iterations, learning-rate schedule, checkpoints, time budget)",
    "evaluation": "evaluation (embedding, test-time augmentation, metric, protocol, re-ranking)",
    "run": "run (device, seed, logging)",
}


def _checked(base: Callable[[str], Any], name: str, spec: dict[str, Any], optional: bool):
    """An argparse ``type`` that converts with ``base`` and checks ``spec``'s constraints."""

    def parse(text: str):
        if optional and text.lower() in {"none", "null", ""}:
            return None
        try:
            value = base(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {base.__name__}, got {text!r}") from None
        problem = check_value(name, value, spec)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        kind = spec.get("registry")
        if kind is not None and value not in spec.get("extra_choices", ()):
            from reidcore.errors import UnknownNameError
            from reidcore.registry import registry

            reg = registry(kind)
            if value not in reg:
                raise argparse.ArgumentTypeError(str(UnknownNameError(
                    kind, value, [*reg.names(), *spec.get("extra_choices", ())])))
        return value

    parse.__name__ = base.__name__
    return parse


def _flag_kwargs(field: attrs.Attribute, spec: dict[str, Any]) -> dict[str, Any]:
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
        kw["type"] = _checked(base, field.name, spec, optional=True)
    elif tp in (int, float, str):
        kw["type"] = _checked(tp, field.name, spec, optional=False)
    else:
        kw["type"] = str
    if "choices" in spec:
        kw["metavar"] = "{" + ",".join(spec["choices"]) + "}"
    return kw


def _bounds(spec: dict[str, Any]) -> str:
    parts = []
    if "minimum" in spec:
        parts.append(f">= {spec['minimum']}")
    if "above" in spec:
        parts.append(f"> {spec['above']}")
    if "maximum" in spec:
        parts.append(f"<= {spec['maximum']}")
    return f" ({', '.join(parts)})" if parts else ""


def add_config_flags(parser: argparse.ArgumentParser, config_class: type) -> None:
    """Add one flag per field of ``config_class``, in help groups; unset flags stay absent
    from the namespace (see :func:`config_overrides`)."""
    attrs.resolve_types(config_class)
    groups: dict[str, argparse._ArgumentGroup] = {}
    own = f"{config_class.__name__} (this recipe's own options)"
    for name in GROUPS:
        groups[name] = parser.add_argument_group(GROUP_TITLES[name] + " [recipe defaults in brackets]")
    for f in attrs.fields(config_class):
        spec = field_spec(config_class, f.name)
        if spec.get("flag", True) is False:
            continue
        group_name = spec.get("group", own)
        if group_name not in groups:
            groups[group_name] = parser.add_argument_group(group_name)
        default = f.default
        shown = " ".join(map(str, default)) if isinstance(default, tuple) else default
        shown = "" if shown is None or shown in ("", {}) else f" [{shown}]"  # no empty "[]"
        groups[group_name].add_argument(
            "--" + f.name.replace("_", "-"), dest=f.name, default=argparse.SUPPRESS,
            help=f"{spec.get('help', '')}{_bounds(spec)}{shown}", **_flag_kwargs(f, spec),
        )


def flag_shapes(config_classes: typing.Iterable[type]) -> dict[str, dict[str, Any]]:
    """``{"--flag": argparse kwargs}`` of every field of every class, for a pre-parser that
    must skip flags with their values without converting them (see ``cli``)."""
    shapes: dict[str, dict[str, Any]] = {}
    for cls in config_classes:
        attrs.resolve_types(cls)
        for f in attrs.fields(cls):
            flag = "--" + f.name.replace("_", "-")
            if field_spec(cls, f.name).get("flag", True) is False:
                continue
            if f.type is bool:
                shapes[flag] = {"action": argparse.BooleanOptionalAction}
            elif typing.get_origin(f.type) is tuple:
                shapes[flag] = {"nargs": "*"}
            else:
                shapes.setdefault(flag, {})
    return shapes


def config_overrides(namespace: argparse.Namespace, config_class: type) -> dict[str, Any]:
    """The config fields the user set explicitly on the command line."""
    names = {f.name for f in attrs.fields(config_class)}
    return {k: v for k, v in vars(namespace).items() if k in names}
