"""Exceptions a user can cause. Each message names the offending file, value or name."""

from __future__ import annotations

import difflib


class ReidError(Exception):
    """Base class of every error reidcore raises for bad user input."""


class UnknownNameError(ReidError, KeyError):
    """A dataset, model, loss, recipe or backbone name that no plugin registers."""

    def __init__(self, kind: str, name: str, known: list[str], hint: str | None = None):
        self.kind, self.name, self.known = kind, name, sorted(known)
        msg = f"Unknown {kind} {name!r}."
        close = difflib.get_close_matches(name, self.known, n=1, cutoff=0.5)
        if close:
            msg += f" Did you mean {close[0]!r}?"
        msg += f" Known {kind}s: {', '.join(self.known) if self.known else '(none)'}."
        if hint:
            msg += f" {hint}"
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class DuplicateNameError(ReidError):
    """Two plugins register the same name in one registry."""


class PluginLoadError(ReidError):
    """A plugin's entry point failed to import or register (raised in strict mode)."""


class DatasetError(ReidError):
    """A data folder or file is missing, empty, or not in the expected layout."""


class ImageReadError(DatasetError):
    """An image file cannot be decoded (corrupt, truncated, or not an image)."""


class WeightsError(ReidError):
    """A pretrained-weights file is missing or its keys do not match the model."""


class ExperimentError(ReidError):
    """An experiment directory is missing, incomplete, or inconsistent."""


class TrainingDivergedError(ReidError):
    """The training loss became NaN or infinite."""


class EvaluationError(ReidError):
    """Evaluation cannot be carried out (e.g. no query has a valid gallery match)."""
