"""``python -m reidcore``: plugins, list, train, embed, evaluate, run, and plugin verbs.

Parsing and ``--help`` import no torch; each verb imports what it needs when it runs.
Exit codes: 0 success, 2 bad usage or input (a clear message on stderr), 128+N when
signal N stopped training cleanly (resumable).
"""

from __future__ import annotations

import argparse
import difflib
import errno
import os
import sys

from reidcore import __version__
from reidcore.errors import ReidError
from reidcore.interrupts import Interrupted

#: errno values of OSErrors the user must fix on their side, reported in one line.
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT})

VERBS = {
    "plugins": "list installed plugins, their distributions and what they register",
    "list": "list registered datasets, models, losses, recipes, backbones, commands, ...",
    "run": "train a recipe, embed query/gallery, evaluate, write report.json",
    "train": "train a recipe only (checkpoints in the experiment folder)",
    "embed": "write HDF5 embeddings of a dataset part with a trained experiment",
    "evaluate": "CMC/mAP/mINP of query and gallery HDF5 embeddings (optionally re-ranked)",
}


def _command_lines() -> list[str]:
    """Verbs registered through the reid_commands hook (core built-ins and plugins)."""
    try:
        from reidcore.registry import registry

        reg = registry("command")
        return [f"  {n:<10} "
                + (command_summary(reg.entry(n).target) or f"(command of plugin {reg.entry(n).plugin!r})")
                for n in reg.names()]
    except Exception:  # noqa: BLE001 - help must print even with a broken plugin
        return ["  (plugins may add verbs: python -m reidcore list commands)"]


def command_summary(target: object) -> str:
    """A command's one-line summary from its module's docstring, read without importing the
    module (``"``python -m reidcore export``: a model as ONNX."`` → ``"a model as ONNX"``);
    ``""`` when there is none."""
    import ast
    import importlib.util
    import inspect
    import re
    from pathlib import Path

    try:
        if isinstance(target, str):
            spec = importlib.util.find_spec(target.split(":")[0])
            if spec is None or not spec.origin or not spec.origin.endswith(".py"):
                return ""
            doc = ast.get_docstring(ast.parse(Path(spec.origin).read_text(encoding="utf-8")))
        else:
            doc = inspect.getdoc(target)
    except Exception:  # noqa: BLE001 - a broken plugin must not break --help
        return ""
    line = (doc or "").strip().splitlines()[0] if (doc or "").strip() else ""
    if "``:" in line:
        line = line.split("``:", 1)[1]
    return re.sub(r"\s*\([^)]*\)", "", line).replace("``", "").strip().rstrip(".")


def _top_help() -> str:
    lines = [
        f"usage: python -m reidcore VERB ...   (reidcore {__version__})",
        "",
        "Person re-identification: train, embed and evaluate methods registered by plugins.",
        "",
        "verbs:",
    ]
    lines += [f"  {v:<10} {h}" for v, h in VERBS.items()]
    lines += [
        *_command_lines(),
        "",
        "examples:",
        "  python -m reidcore run trinet --dataset synthetic --backbone resnet18 --pretrained none",
        "  python -m reidcore run --resume --experiment experiments/my-run",
        "  python -m reidcore VERB --help",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- plugins, list
def cmd_plugins(argv: list[str]) -> int:
    """Installed plugins, what each registers, and every problem; 1 when there is one."""
    p = argparse.ArgumentParser(prog="python -m reidcore plugins", description=VERBS["plugins"])
    p.add_argument("--check", action="store_true",
                   help="also import every registered 'module:attr' target and list the broken ones")
    args = p.parse_args(argv)
    from reidcore.hookspecs import KINDS
    from reidcore.plugins import get_plugins
    from reidcore.registry import check_targets, registry

    plugins = get_plugins()
    regs = {kind: registry(kind.name) for kind in KINDS}
    print(f"{'plugin':<12} {'distribution':<16} {'version':<9} registers")
    for info in plugins.infos:
        if info.error:
            print(f"{info.name:<12} {info.distribution:<16} {info.version:<9} BROKEN: {info.error}")
            continue
        parts = []
        for kind, reg in regs.items():
            names = sorted(n for n, e in reg.entries.items() if e.plugin == info.name)
            if names:
                parts.append(f"{kind.plural}: {', '.join(names)}")
        print(f"{info.name:<12} {info.distribution:<16} {info.version:<9} {'; '.join(parts) or '(nothing)'}")
    problems = list(plugins.problems)
    if args.check:
        broken = check_targets()
        problems += broken
        print(f"checked every registered target: {len(broken)} broken")
    if problems:
        print("problems:")
        print("\n".join(f"  {line}" for line in problems))
    return 1 if plugins.failed or problems else 0


def cmd_list(argv: list[str]) -> int:
    from reidcore.hookspecs import KINDS

    p = argparse.ArgumentParser(prog="python -m reidcore list", description=VERBS["list"])
    p.add_argument("kind", choices=[k.plural for k in KINDS])
    args = p.parse_args(argv)
    from reidcore.registry import BY_PLURAL, registry

    reg = registry(BY_PLURAL[args.kind].name)
    if not reg.names():
        print(f"no {args.kind} registered (plugins add them: python -m reidcore plugins)",
              file=sys.stderr)
    for name in reg.names():
        entry = reg.entry(name)
        extra = ""
        if args.kind == "recipes":
            recipe = entry.resolve()
            extra = f"  {recipe.description}"
        if args.kind == "datasets":  # reader options (--dataset-option KEY=VALUE)
            from reidcore.dataset_options import describe_options

            extra = f"  options: {describe_options(entry.resolve()) or '(none)'}"
        print(f"{name:<24} [{entry.plugin}]{extra}")
        if args.kind == "recipes":
            print(f"{'':<24} defaults: {_recipe_defaults(recipe.config_class)}")
    return 0


def _recipe_defaults(config_class: type) -> str:
    """The recipe's defaults, as flags: every field of its config (``--batch-p 18 ...``)."""
    import attrs

    parts = []
    for f in attrs.fields(config_class):
        value = " ".join(map(str, f.default)) if isinstance(f.default, tuple) else f.default
        if (f.name in ("dataset", "data") or value is None or value == ""
                or f.metadata.get("flag") is False):
            continue  # no default (an empty list or string) is not a flag to show
        flag = f.name.replace("_", "-")
        if isinstance(value, bool):
            parts.append(f"--{flag}" if value else f"--no-{flag}")
        else:
            parts.append(f"--{flag} {value}")
    return " ".join(parts)


# ---------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_top_help())
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"reidcore {__version__}")
        return 0
    verb, rest = argv[0], argv[1:]
    try:
        if verb == "plugins":
            return cmd_plugins(rest)
        if verb == "list":
            return cmd_list(rest)
        if verb in ("run", "train"):
            from reidcore.cli_train import cmd_train_or_run

            return cmd_train_or_run(verb, rest)
        if verb == "embed":
            from reidcore.cli_embed import cmd_embed

            return cmd_embed(rest)
        if verb == "evaluate":
            from reidcore.cli_evaluate import cmd_evaluate

            return cmd_evaluate(rest)
        from reidcore.registry import registry

        commands = registry("command")
        if verb in commands:
            return int(commands.get(verb)(rest) or 0)
        known = sorted(set(VERBS) | set(commands.names()))
        close = difflib.get_close_matches(verb, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        print(f"reidcore: unknown verb {verb!r}.{hint} Verbs: {', '.join(known)}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # argparse: usage errors (2) and --help (0) as return codes
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except Interrupted as exc:  # SIGINT/SIGTERM outside training: one line, 128 + signal
        print(f"reidcore: {exc}", file=sys.stderr)
        return exc.exit_code
    except (ReidError, ValueError) as exc:  # bad input: a message, not a traceback
        if os.environ.get("REIDCORE_DEBUG"):
            raise
        print(f"reidcore: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # disk full, read-only, no permission: one line naming the path
        if exc.errno not in DISK_ERRNOS or os.environ.get("REIDCORE_DEBUG"):
            raise
        where = f"{exc.filename}: " if exc.filename else ""  # AtomicWriteError: in strerror
        print(f"reidcore: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
