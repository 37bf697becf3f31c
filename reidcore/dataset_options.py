"""Dataset reader options: ``--dataset-option KEY=VALUE`` (repeatable).

A reader may also declare the evaluation protocol of its dataset with a ``reid_protocol``
attribute (an excluder name, e.g. ``"cuhk03"``): ``run`` uses it unless ``--excluder`` is given.

A reader declares its options by its keyword parameters after ``root`` (``split_id: int = 0``,
``train_frames: int | None = None``, ...), or explicitly with a ``reid_options`` attribute
(``{name: default}``) when it forwards ``**kwargs`` to another reader. Values are converted to
the type of the default (``int``, ``float``, ``bool``, ``str``; ``none`` for None). An unknown
key is an error that lists the reader's options; a reader with ``**kwargs`` and no
``reid_options`` accepts any key (its base reader checks them).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from reidcore.errors import ReidError

#: reader parameters that are not user options
RESERVED = ("root", "name", "cache")


def reader_options(reader: Callable[..., Any]) -> tuple[dict[str, Any], bool]:
    """``({option: default}, accepts_other_keys)`` of a dataset reader."""
    declared = getattr(reader, "reid_options", None)
    if declared is not None:
        return dict(declared), False
    try:
        params = list(inspect.signature(reader).parameters.values())
    except (TypeError, ValueError):
        return {}, True
    options: dict[str, Any] = {}
    open_ = False
    for i, p in enumerate(params):
        if p.kind is p.VAR_KEYWORD:
            open_ = True
        elif i == 0 or p.kind is p.VAR_POSITIONAL or p.name in RESERVED:
            continue
        elif p.default is not p.empty:
            options[p.name] = p.default
    return options, open_


def _convert(key: str, text: str, default: Any) -> Any:
    if text.lower() in ("none", "null") and not isinstance(default, str):
        return None
    try:
        if isinstance(default, bool):
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
    except ValueError:
        raise ReidError(f"--dataset-option {key}={text}: expected "
                        f"{type(default).__name__}") from None
    if default is None:  # untyped: int, float or text
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
    return text


def parse_options(dataset: str, items: Iterable[str]) -> dict[str, Any]:
    """``["split_id=1", ...]`` -> ``{"split_id": 1}`` checked against ``dataset``'s reader.

    Raises:
        UnknownNameError: unknown dataset.
        ReidError: an item without ``=``, an unknown key (the reader's options are listed),
            or a value of the wrong type.
    """
    from reidcore.registry import registry

    reader = registry("dataset").get(dataset)
    options, open_ = reader_options(reader)
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = str(item).partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ReidError(f"--dataset-option {item!r}: expected KEY=VALUE")
        if key not in options and not open_:
            known = ", ".join(f"{k}={v!r}" for k, v in options.items()) or "(none)"
            raise ReidError(f"dataset {dataset!r} has no option {key!r}; its options: {known}")
        out[key] = _convert(key, text.strip(), options.get(key))
    return out


def check_options(dataset: str, options: Mapping[str, Any]) -> None:
    """Raise :class:`ReidError` when ``options`` has a key ``dataset``'s reader does not take."""
    from reidcore.registry import registry

    known, open_ = reader_options(registry("dataset").get(dataset))
    unknown = sorted(set(options) - set(known))
    if unknown and not open_:
        listed = ", ".join(f"{k}={v!r}" for k, v in known.items()) or "(none)"
        raise ReidError(f"dataset {dataset!r} has no option {unknown[0]!r}; its options: {listed}")


def merge_options(dataset: str, base: Mapping[str, Any], items: Iterable[str]) -> dict[str, Any]:
    """``base`` options updated by the parsed ``items`` (see :func:`parse_options`)."""
    return {**dict(base), **parse_options(dataset, items)}


def describe_options(reader: Callable[..., Any]) -> str:
    """``split_id=0, train_frames=None`` (and ``...`` for readers that forward more)."""
    options, open_ = reader_options(reader)
    text = ", ".join(f"{k}={v!r}" for k, v in options.items())
    if open_:
        text = f"{text}, ..." if text else "..."
    return text


def dataset_protocol(dataset: str) -> str | None:
    """The excluder ``dataset``'s reader declares (``reid_protocol``), or None."""
    from reidcore.registry import registry

    return getattr(registry("dataset").get(dataset), "reid_protocol", None)
