"""The one way to get a trained model and its preprocessing: :func:`load_trained`.

``embed``, ``evaluate``, ``export``, ``visualize``, plugin commands (``san textures``) and the
``run`` pipeline all use it (or, for the model ``run`` has just trained, :class:`Trained`
directly), so every one of them sees the same model, input size, test-time flip, embedding
settings and evaluation settings.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from reidcore import experiment
from reidcore.errors import ExperimentError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import torch

    from reidcore.recipe import Recipe, TrainConfig


def model_digest(state_dict: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of a model state: every tensor's name, dtype, shape and bytes, in name
    order. Two models with the same digest compute the same embeddings."""
    import torch

    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name]
        if not isinstance(t, torch.Tensor):
            continue
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


@attrs.define
class Trained:
    """A trained model with everything needed to use it as it was trained.

    Attributes:
        model: the ``torch.nn.Module`` in eval mode (on the device it was loaded to).
        recipe: the :class:`~reidcore.recipe.Recipe` instance (test Dataset, flip of inputs).
        recipe_name: its registered name.
        config: the :class:`~reidcore.recipe.TrainConfig` (input ``height``/``width``,
            test-time augmentation, metric, protocol, ...).
        directory: the folder it was trained in (a stage folder for staged recipes).
        checkpoint: ``{"checkpoint_path", "checkpoint_iteration", "model_sha256"}``.
        state: the checkpoint's full state (``criterion`` etc.; plugins read their parts).
    """

    model: Any
    recipe: Recipe
    recipe_name: str
    config: TrainConfig
    directory: Path
    checkpoint: dict[str, Any]
    state: dict[str, Any] = attrs.field(factory=dict, repr=False)

    def settings(self, **overrides: Any):
        """Evaluation settings of the config (:class:`EvalSettings`); non-None overrides win."""
        from reidcore.evaluation.evaluate_embeddings import EvalSettings

        return EvalSettings.from_config(self.config, **overrides)

    def embed(self, samples: Sequence[Any], device: Any, *, workers: int | None = None,
              ) -> tuple[np.ndarray, np.ndarray | None]:
        """``(embs (N, D) float32, augmented (N, A, D) | None)`` of ``samples`` with the
        config's input size, test-time flip/crops and aggregator and the recipe's test
        Dataset and input flip (see :func:`reidcore.engine.embed.embed_samples`)."""
        from reidcore.engine.device import amp_dtype
        from reidcore.engine.embed import embed_samples

        cfg, recipe = self.config, self.recipe
        return embed_samples(
            self.model, samples, height=cfg.height, width=cfg.width,
            batch_size=cfg.embed_batch_size, crop=cfg.crop_augment, flip=cfg.flip_augment,
            aggregator=cfg.aggregator, device=device, amp_dtype=amp_dtype(device, cfg.amp),
            workers=cfg.workers if workers is None else workers,
            dataset_fn=lambda s, h, w: recipe.embed_dataset(cfg, s, h, w),
            flip_fn=recipe.flip_input,
        )


def load_checkpoint_file(path: Path) -> dict[str, Any]:
    """A checkpoint file's state, loaded with ``weights_only=True`` (no code runs;
    :func:`reidcore.engine.checkpoint.load_checkpoint_file`).

    Raises:
        UnsafeFileError: the file holds objects other than tensors and plain values (named).
        UnreadableFileError: truncated or corrupt (named).
        ExperimentError: not a checkpoint dict, or it holds no 'model' state.
    """
    from reidcore.engine import checkpoint

    state = checkpoint.load_checkpoint_file(Path(path))
    if "model" not in state:
        raise ExperimentError(f"checkpoint {path} holds no 'model' state")
    return state


def locate_checkpoint(path: Path) -> tuple[Path, Path]:
    """``(training folder, checkpoint file)`` of an experiment, stage folder or checkpoint."""
    from reidcore.engine import checkpoint

    path = Path(path).expanduser()
    if path.is_file():
        train_dir = path.parent.parent
        if not (train_dir / experiment.ARGS).is_file():
            raise ExperimentError(
                f"checkpoint {path} is not inside an experiment's checkpoints/ folder (no "
                f"{train_dir / experiment.ARGS}); pass the experiment folder")
        return train_dir, path
    if not path.is_dir():
        raise ExperimentError(f"{path} does not exist (expected an experiment folder, a stage "
                              f"folder or a checkpoint file)")
    train_dir = experiment.Experiment.open(path).final_dir
    found = checkpoint.list_checkpoints(train_dir)
    if not found and (train_dir / "outcome.json").is_file():
        raise ExperimentError(
            f"stage {train_dir} keeps no weights: its checkpoints were removed once the next "
            f"stage had its own (load the experiment's final model, or train with "
            f"--keep-stage-checkpoints)")
    if not found:
        raise ExperimentError(f"experiment {train_dir} has no checkpoint in "
                              f"{train_dir / checkpoint.CHECKPOINT_DIR}")
    return train_dir, found[-1][1]


def load_trained(path: str | Path, device: Any = "cpu", *,
                 config_changes: Mapping[str, Any] | None = None,
                 num_classes: int | None = None) -> Trained:
    """The trained model of an experiment folder (its final model: the last stage's for a
    staged recipe), of a stage folder, or of one checkpoint file inside ``checkpoints/``.

    Args:
        path: the folder or checkpoint file.
        device: where the model goes (``"cpu"``, ``"cuda"``, a ``torch.device``).
        config_changes: config fields replaced for use (e.g. ``flip_augment``, ``dataset``);
            validated like command-line flags.
        num_classes: training identities, for old checkpoints that do not record them
            (default: the checkpoint's, else the experiment dataset's).

    Returns:
        :class:`Trained`.

    Raises:
        ExperimentError: no such folder, no ``args.json``, no checkpoint, an unreadable
            checkpoint, or weights that do not fit the recipe's model.
        ValueError: a config change breaks a field's constraint.
    """
    import torch

    from reidcore.registry import get_recipe, load_dataset

    train_dir, ckpt = locate_checkpoint(Path(path))
    saved = experiment.read_args(train_dir)
    recipe = get_recipe(saved["recipe"])
    cfg = recipe.config_class.from_json({**saved["config"], **dict(config_changes or {})})
    state = load_checkpoint_file(ckpt)
    if num_classes is None:
        if "num_classes" in state:
            num_classes = int(state["num_classes"])
        else:
            num_classes = load_dataset(cfg.dataset, cfg.data, **cfg.dataset_options).num_train_pids
    model = recipe.build_model(attrs.evolve(cfg, pretrained="none"), num_classes)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise ExperimentError(f"the weights of {ckpt} do not fit recipe {saved['recipe']!r}'s "
                              f"model: {str(exc).splitlines()[0]}") from exc
    model = model.float().to(torch.device(device) if isinstance(device, str) else device).eval()
    info = {"checkpoint_path": str(ckpt), "checkpoint_iteration": int(state.get("iteration", -1)),
            "model_sha256": model_digest(state["model"])}
    return Trained(model, recipe, saved["recipe"], cfg, train_dir, info, state)


def trained_from_memory(model: Any, recipe: Recipe, recipe_name: str, cfg: TrainConfig,
                        train_dir: Path, iteration: int) -> Trained:
    """A :class:`Trained` of a model ``run`` has just trained in ``train_dir`` (its newest
    checkpoint holds the same weights)."""
    from reidcore.engine import checkpoint

    found = checkpoint.list_checkpoints(train_dir)
    state_dict = getattr(model, "module", model).state_dict()
    info = {"checkpoint_path": str(found[-1][1]) if found else "",
            "checkpoint_iteration": int(iteration), "model_sha256": model_digest(state_dict)}
    return Trained(model, recipe, recipe_name, cfg, Path(train_dir), info)


def check_loadable(model: torch.nn.Module, train_dir: Path) -> None:
    """Load ``train_dir``'s newest checkpoint into ``model`` (a freshly built one) to prove
    a resumed config still fits the saved weights, before anything is written.

    Raises:
        ExperimentError: the weights do not fit (e.g. ``--backbone`` changed on ``--resume``).
    """
    from reidcore.engine import checkpoint

    state = checkpoint.load_latest(train_dir)  # a truncated newest one: the intact older one
    if state is None:
        return
    where = checkpoint.list_checkpoints(train_dir)[-1][1]
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise ExperimentError(
            f"--resume: the changed flags give a model that does not fit {where}: "
            f"{str(exc).splitlines()[0]}; nothing was changed in {train_dir}") from exc
