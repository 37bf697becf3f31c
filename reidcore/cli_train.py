"""``python -m reidcore run|train RECIPE [flags]``: parse once, validate, hand to the pipeline.

The recipe is the command line's one positional argument, wherever it stands
(``run --iterations 5 trinet``): a pre-parser that knows every recipe's flags (values kept as
text) finds it; the recipe's own parser then checks every flag (ranges, choices, registered
names) before anything is written. With ``--resume`` the recipe comes from ``args.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import attrs

from reidcore.errors import ReidError

DESCRIPTIONS = {
    "run": "train a recipe, embed query/gallery, evaluate, write report.json",
    "train": "train a recipe only (checkpoints in the experiment folder)",
}


def _common_flags(p: argparse.ArgumentParser, verb: str) -> None:
    p.add_argument("--experiment", type=Path, default=None,
                   help="experiment folder [experiments/RECIPE-DATASET-TIME]")
    p.add_argument("--resume", action="store_true",
                   help="continue the experiment in --experiment from its args.json and newest checkpoint")
    p.add_argument("--dataset-option", action="append", default=[], metavar="KEY=VALUE",
                   help="a dataset reader option (repeatable; python -m reidcore list datasets "
                        "shows each dataset's options)")
    if verb == "run":
        p.add_argument("--eval-untrained", action="store_true",
                       help="also evaluate the network before training (report.json 'untrained')")


def recipe_parser(verb: str, config_class: type) -> argparse.ArgumentParser:
    """The full parser of ``verb`` for a recipe's config class (grouped flags)."""
    from reidcore.config_flags import add_config_flags

    p = argparse.ArgumentParser(
        prog=f"python -m reidcore {verb}", description=DESCRIPTIONS[verb],
        epilog="Every recipe default can be overridden by its flag; "
        "with --resume, the experiment's args.json is used and given flags override it.",
    )
    p.add_argument("recipe", nargs="?", help="recipe name (python -m reidcore list recipes)")
    _common_flags(p, verb)
    add_config_flags(p, config_class)
    return p


def find_recipe(verb: str, argv: list[str]) -> tuple[str | None, argparse.Namespace]:
    """``(the positional recipe name or None, the common flags)``, skipping every known flag
    with its value(s), wherever the positional stands."""
    from reidcore.config_flags import flag_shapes
    from reidcore.recipe import TrainConfig
    from reidcore.registry import registry

    classes = [TrainConfig]
    reg = registry("recipe")
    for name in reg.names():
        try:
            classes.append(reg.get(name).config_class)
        except Exception:  # noqa: BLE001 - a broken plugin's recipe is reported when used
            continue
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("recipe", nargs="?")
    _common_flags(pre, verb)
    for flag, kw in flag_shapes(classes).items():
        pre.add_argument(flag, dest="_skip" + flag.replace("-", "_"), default=None, **kw)
    known, _ = pre.parse_known_args(argv)
    return known.recipe, known


def cmd_train_or_run(verb: str, argv: list[str]) -> int:
    """Parse, validate and run; returns the exit code (see :func:`reidcore.pipeline.run`)."""
    from reidcore import experiment
    from reidcore.config_flags import config_overrides
    from reidcore.recipe import TrainConfig
    from reidcore.registry import registry

    if any(a in ("-h", "--help") for a in argv):
        recipe_name, _ = find_recipe(verb, argv)
        config_class = registry("recipe").get(recipe_name).config_class if recipe_name else TrainConfig
        recipe_parser(verb, config_class).parse_args(argv)  # prints the help, exits 0
        return 0
    recipe_name, known = find_recipe(verb, argv)
    saved = None
    if known.resume:
        if known.experiment is None:
            raise ReidError(f"--resume needs --experiment DIR (python -m reidcore {verb} "
                            f"--resume --experiment DIR)")
        try:
            saved = experiment.read_args(known.experiment)
        except ReidError as exc:
            raise ReidError(f"cannot resume: {exc}") from exc
        if recipe_name and recipe_name != saved["recipe"]:
            raise ReidError(f"experiment {known.experiment} was made with recipe "
                            f"{saved['recipe']!r}, not {recipe_name!r}")
        recipe_name = saved["recipe"]
    if not recipe_name:
        recipe_parser(verb, TrainConfig).error(
            "a recipe name is required (python -m reidcore list recipes)")
    config_class = registry("recipe").get(recipe_name).config_class
    args = recipe_parser(verb, config_class).parse_args(argv)
    overrides = config_overrides(args, config_class)
    if args.dataset_option:
        from reidcore.dataset_options import merge_options

        base = saved["config"] if saved is not None else {}
        default = attrs.fields_dict(config_class)["dataset"].default
        dataset = overrides.get("dataset", base.get("dataset", default))
        overrides["dataset_options"] = merge_options(
            dataset, base.get("dataset_options") or {}, args.dataset_option)
    if saved is not None:
        cfg = config_class.from_json({**saved["config"], **overrides})
        exp_dir = known.experiment
    else:
        if "excluder" not in overrides:  # the dataset's own protocol beats the generic default
            from reidcore.dataset_options import dataset_protocol

            protocol = dataset_protocol(overrides.get("dataset", attrs.fields_dict(
                config_class)["dataset"].default))
            if protocol is not None:
                overrides["excluder"] = protocol
        cfg = config_class(**overrides)
        exp_dir = args.experiment or experiment.default_experiment_dir(recipe_name, cfg.dataset)

    from reidcore.pipeline import run

    return run(recipe_name, cfg, exp_dir, resume=saved is not None,
               eval_untrained=getattr(args, "eval_untrained", False), evaluate_after=verb == "run")
