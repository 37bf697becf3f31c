"""Staged training by parameter-name scopes: what is restored from a checkpoint and what is trained.

The PSE seed (Sarfraz et al. 2018, README "Training a Resnet-50 Baseline") trains in stages with
TensorFlow-slim scopes: ``--initial-checkpoint`` with ``--checkpoint-exclude-scopes`` (layers not
restored, e.g. the new classifier) and ``--trainable-scopes`` (the only layers trained, e.g. the
new layers first, then everything). Here a scope is a PyTorch parameter-name prefix matched at a
``.`` boundary (``classifier`` matches ``classifier.weight`` but not ``classifier2.weight``), or an
``fnmatch`` pattern when it contains ``*``, ``?`` or ``[``.
"""

from __future__ import annotations

import fnmatch
import logging
from pathlib import Path

import torch

from reidcore.engine import checkpoint

log = logging.getLogger("reidcore")


def parse_scopes(text: str | None) -> list[str]:
    """``"a, b.c"`` → ``["a", "b.c"]`` (empty or None → ``[]``)."""
    return [s.strip() for s in (text or "").split(",") if s.strip()]


def in_scopes(name: str, scopes: list[str]) -> bool:
    """Whether parameter/buffer ``name`` lies in one of ``scopes``."""
    for s in scopes:
        if any(c in s for c in "*?["):
            if fnmatch.fnmatchcase(name, s):
                return True
        elif name == s or name.startswith(s.rstrip(".") + "."):
            return True
    return False


def _check_used(scopes: list[str], names: list[str], flag: str) -> None:
    for s in scopes:
        if not any(in_scopes(n, [s]) for n in names):
            sample = ", ".join(sorted({n.split(".")[0] for n in names})[:12])
            raise ValueError(f"{flag} scope {s!r} matches no parameter of the model; "
                             f"top-level names are: {sample}")


def apply_trainable_scopes(model: torch.nn.Module, text: str | None) -> tuple[int, int]:
    """Freeze every parameter outside the scopes of ``text`` (no scopes: all trainable).

    Returns:
        ``(trainable, frozen)`` parameter-tensor counts.

    Raises:
        ValueError: a scope matches no parameter (a typo would silently train nothing).
    """
    scopes = parse_scopes(text)
    named = list(model.named_parameters())
    if not scopes:
        return len(named), 0
    _check_used(scopes, [n for n, _ in named], "--trainable-scopes")
    trainable = 0
    for name, p in named:
        p.requires_grad_(in_scopes(name, scopes))
        trainable += int(p.requires_grad)
    return trainable, len(named) - trainable


def freeze_batchnorm_of_frozen(model: torch.nn.Module) -> int:
    """Put normalisation layers whose parameters are all frozen into eval mode.

    Call after ``model.train()``: a frozen part then keeps its running statistics
    (as a frozen TF-slim scope does not train). Returns how many modules were switched.
    """
    n = 0
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            params = list(m.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                m.eval()
                n += 1
    return n


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.is_dir():
        state = checkpoint.load_latest(path)
        if state is None:
            raise FileNotFoundError(f"--init-checkpoint {path}: the folder has no checkpoint "
                                    f"(expected {path / checkpoint.CHECKPOINT_DIR}/*.pt)")
    elif path.is_file():
        from reidcore.safe_load import safe_torch_load  # weights_only=True; errors name the file

        state = safe_torch_load(path, what="--init-checkpoint")
    else:
        raise FileNotFoundError(f"--init-checkpoint {path} does not exist")
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise ValueError(f"--init-checkpoint {path} holds no state dict")
    return state


def load_init_checkpoint(model: torch.nn.Module, path: str | Path, exclude: str | None = "") -> dict[str, list[str]]:
    """Initialise ``model`` from a checkpoint, skipping the names in the ``exclude`` scopes.

    ``path`` is a checkpoint file (a reidcore checkpoint or a bare state dict) or an
    experiment folder (its newest checkpoint). Model entries that the checkpoint lacks
    keep their initialisation (new layers); checkpoint entries the model lacks are ignored.

    Returns:
        ``{"restored": [...], "excluded": [...], "missing": [...], "unused": [...]}`` names.

    Raises:
        FileNotFoundError: ``path`` does not exist or the folder has no checkpoint.
        ValueError: a restored tensor's shape differs from the model's (exclude its scope
            with ``--checkpoint-exclude-scopes``), or an exclude scope matches nothing.
    """
    path = Path(path)
    state = _read_state_dict(path)
    scopes = parse_scopes(exclude)
    own = model.state_dict()
    _check_used(scopes, list(own) + list(state), "--checkpoint-exclude-scopes")
    excluded = [k for k in state if in_scopes(k, scopes)]
    take = {k: v for k, v in state.items() if k in own and k not in set(excluded)}
    bad = [f"{k} {tuple(v.shape)} vs model {tuple(own[k].shape)}" for k, v in take.items()
           if tuple(v.shape) != tuple(own[k].shape)]
    if bad:
        raise ValueError(f"--init-checkpoint {path}: shapes differ for {len(bad)} tensors ("
                         + "; ".join(bad[:4]) + "); exclude them with --checkpoint-exclude-scopes")
    model.load_state_dict(take, strict=False)
    out = {"restored": sorted(take), "excluded": sorted(excluded),
           "missing": sorted(k for k in own if k not in state),
           "unused": sorted(k for k in state if k not in own and k not in set(excluded))}
    log.info("initialised from %s: %d tensors restored, %d excluded, %d new", path,
             len(out["restored"]), len(out["excluded"]), len(out["missing"]))
    return out
