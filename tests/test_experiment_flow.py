"""Issue 13/14 flow bugs: flag order, staged experiments through load_trained (export, embed,
evaluate), the experiment's own evaluation settings, embed not clobbering, early config
errors with no folder left, refusals, resume history, checkpoint records, signals."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import attrs
import pytest
from tiny_plugin import TINY_FLAGS

from reidcore.cli import main
from reidcore.errors import ExperimentError

TINY = [*TINY_FLAGS, "--no-tensorboard"]


@pytest.fixture(scope="module")
def plugin(tiny_plugin_module):
    return tiny_plugin_module


@pytest.fixture(scope="module")
def data(tiny_data_module):
    return tiny_data_module


@pytest.fixture(scope="module")
def staged(plugin, data, tmp_path_factory):
    """A staged experiment (stages/1-head, stages/2-all) with a cosine/trapezoid evaluation."""
    exp = tmp_path_factory.mktemp("staged") / "exp"
    code = main(["run", "tiny-staged", "--iterations", "3", "--metric", "cosine", "--dataset",
                 "tiny", "--data", str(data), "--experiment", str(exp), *TINY,
                 "--ap", "trapezoid"])
    assert code == 0
    return exp


def test_flags_before_the_recipe_name(plugin, data, tmp_path):
    # issue 13: argv was parsed twice and the recipe assumed to be argv[0]
    exp = tmp_path / "exp"
    assert main(["train", "--iterations", "1", "--metric", "cosine", "tiny", "--dataset",
                 "tiny", "--data", str(data), "--experiment", str(exp), *TINY]) == 0
    args = json.loads((exp / "args.json").read_text())
    assert args["recipe"] == "tiny" and args["config"]["iterations"] == 1
    assert args["config"]["metric"] == "cosine"


def test_staged_report(staged):
    report = json.loads((staged / "report.json").read_text())
    assert report["status"] == "done" and report["metric"] == "cosine"
    assert [s["stage"] for s in report["stages"]] == ["1-head", "2-all"]


def test_load_trained_from_experiment_stage_and_checkpoint(staged):
    from reidcore.trained import load_trained

    final = load_trained(staged)
    assert final.directory == staged / "stages" / "2-all"
    assert final.config.metric == "cosine" and final.config.height == 32
    assert final.checkpoint["checkpoint_iteration"] == 3
    # issue 13 (demo under 200 MB): a finished stage's checkpoints are removed once the next
    # stage has its own; --keep-stage-checkpoints keeps them (tests/test_stage_retention.py)
    with pytest.raises(ExperimentError, match="keeps no weights"):
        load_trained(staged / "stages" / "1-head")
    ckpt = Path(final.checkpoint["checkpoint_path"])
    by_file = load_trained(ckpt)
    assert by_file.checkpoint == final.checkpoint
    report = json.loads((staged / "report.json").read_text())
    assert report["checkpoint"]["model_sha256"] == final.checkpoint["model_sha256"]


def test_export_of_a_staged_experiment(staged, tmp_path, capsys):
    # before: "experiment DIR has no checkpoint in DIR/checkpoints"
    out = tmp_path / "m.pt"
    assert main(["export", "--experiment", str(staged), "--format", "torchscript",
                 "--output", str(out)]) == 0
    assert out.is_file() and "verified" in capsys.readouterr().out


def test_evaluate_uses_the_experiments_settings(staged, tmp_path, capsys):
    report = json.loads((staged / "report.json").read_text())
    out = tmp_path / "e.json"
    capsys.readouterr()
    assert main(["evaluate", "--experiment", str(staged), "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert "metric cosine" in text and "trapezoid AP" in text and "args.json" in text
    got = json.loads(out.read_text())
    assert got["metric"] == "cosine" and got["ap"] == "trapezoid"
    assert got["rank1"] == report["rank1"] and got["mAP"] == report["mAP"]
    # a flag overrides the experiment's value and says so
    assert main(["evaluate", "--experiment", str(staged), "--metric", "euclidean",
                 "--output", str(out)]) == 0
    assert "flags: --metric" in capsys.readouterr().out
    assert json.loads(out.read_text())["metric"] == "euclidean"


def test_embed_of_another_dataset_never_replaces_the_experiments_files(staged, data, capsys):
    own = staged / "embeddings" / "query.h5"
    before = own.read_bytes()
    assert main(["embed", "--experiment", str(staged), "--dataset", "tiny-video",
                 "--data", str(data), "--part", "query"]) == 0
    assert own.read_bytes() == before  # before: overwritten with tiny-video's embeddings
    written = list((staged / "other-embeddings").rglob("query.h5"))
    assert len(written) == 1 and "tiny-video" in written[0].parent.name
    from reidcore.embeddings import read_embeddings

    e = read_embeddings(written[0])
    assert e.attrs["dataset"] == "tiny-video" and e.tracklets is not None
    assert e.attrs["checkpoint_iteration"] == 3


def test_evaluate_refuses_embeddings_of_different_checkpoints(staged, tmp_path, capsys):
    from reidcore.embeddings import read_embeddings, write_embeddings

    g = read_embeddings(staged / "embeddings" / "gallery.h5")
    other = tmp_path / "gallery.h5"
    write_embeddings(other, g.embs, g.pids, g.camids, g.paths,
                     attrs={**g.attrs, "model_sha256": "0" * 64, "checkpoint_iteration": 1})
    assert main(["evaluate", "--query-embeddings", str(staged / "embeddings" / "query.h5"),
                 "--gallery-embeddings", str(other)]) == 2
    err = capsys.readouterr().err
    assert "different models" in err and "iteration 1" in err


BAD_FLAGS = [
    (["--rerank", "k-reciprocl"], "k-reciprocal"),
    (["--metric", "cosin"], "--metric"),
    (["--excluder", "market"], "market1501"),
    (["--crop-augment", "six"], "--crop-augment"),
    (["--ap", "stepp"], "--ap"),
    (["--average", "valdi"], "--average"),
    (["--aggregator", "median"], "--aggregator"),
    (["--height", "0"], "--height must be >= 1"),
    (["--width", "-3"], "--width must be >= 1"),
    (["--checkpoint-every", "0"], "--checkpoint-every must be >= 1"),
    (["--log-every", "0"], "--log-every must be >= 1"),
    (["--embed-batch-size", "0"], "--embed-batch-size must be >= 1"),
    (["--iterations", "-5"], "--iterations must be >= 1"),
]


@pytest.mark.parametrize(("flags", "message"), BAD_FLAGS, ids=[f[0][0] for f in BAD_FLAGS])
def test_bad_flag_fails_at_parse_time_without_a_folder(plugin, data, tmp_path, capsys, flags,
                                                      message):
    exp = tmp_path / "exp"
    code = main(["run", "tiny", "--dataset", "tiny", "--data", str(data), "--experiment",
                 str(exp), *TINY, "--iterations", "2", *flags])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not exp.exists()


def test_failure_before_training_leaves_no_folder(plugin, tmp_path, capsys):
    exp = tmp_path / "exp"
    assert main(["run", "tiny", "--dataset", "tiny", "--data", str(tmp_path / "no-data"),
                 "--experiment", str(exp), *TINY]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not exp.exists()


@pytest.mark.parametrize("flags, message", [
    (["--init-checkpoint", "no-such-checkpoint.pt"], "does not exist"),
    (["--trainable-scopes", "no_such_layer"], "matches no parameter"),
])
def test_training_setup_errors_leave_no_folder(plugin, data, tmp_path, capsys, flags, message):
    # issue 13: these failed inside the trainer, after the folder was made (a traceback for
    # a missing --init-checkpoint) and left a folder with a failed report behind
    exp = tmp_path / "exp"
    assert main(["run", "tiny", "--dataset", "tiny", "--data", str(data), "--experiment",
                 str(exp), *TINY, *flags]) == 2
    assert message in capsys.readouterr().err
    assert not exp.exists()


def test_new_run_into_a_folder_with_checkpoints_refuses(plugin, data, tmp_path, capsys):
    exp = tmp_path / "exp"
    (exp / "checkpoints").mkdir(parents=True)
    (exp / "checkpoints" / "checkpoint-0000004.pt").write_bytes(b"old weights")
    assert main(["run", "tiny", "--dataset", "tiny", "--data", str(data), "--experiment",
                 str(exp), *TINY, "--iterations", "2"]) == 2
    err = capsys.readouterr().err
    assert "holds checkpoints but no args.json" in err and "--resume" in err
    assert sorted(p.name for p in exp.rglob("*")) == ["checkpoint-0000004.pt", "checkpoints"]


def test_resume_override_keeps_an_args_history(plugin, data, tmp_path):
    exp = tmp_path / "exp"
    base = ["--dataset", "tiny", "--data", str(data), "--experiment", str(exp), *TINY]
    assert main(["train", "tiny", *base, "--iterations", "2"]) == 0
    assert main(["run", "--resume", "--experiment", str(exp), "--embed-batch-size", "8"]) == 0
    args = json.loads((exp / "args.json").read_text())
    assert args["config"]["embed_batch_size"] == 8
    assert args["history"][-1]["previous"] == {"embed_batch_size": 16}
    # an invalid override changes nothing
    before = (exp / "args.json").read_bytes()
    assert main(["run", "--resume", "--experiment", str(exp), "--log-every", "0"]) == 2
    assert (exp / "args.json").read_bytes() == before


def test_sigterm_during_embedding_exits_143_and_resume_finishes(plugin, data, tmp_path,
                                                               monkeypatch, capsys):
    from reidcore.trained import Trained

    exp = tmp_path / "exp"
    real = Trained.embed

    def killed(self, samples, device, **kw):
        os.kill(os.getpid(), signal.SIGTERM)
        return real(self, samples, device, **kw)

    monkeypatch.setattr(Trained, "embed", killed)
    assert main(["run", "tiny", "--dataset", "tiny", "--data", str(data), "--experiment",
                 str(exp), *TINY, "--iterations", "2"]) == 128 + signal.SIGTERM
    assert "stopped by SIGTERM during embedding" in capsys.readouterr().out
    assert not (exp / "report.json").exists()
    monkeypatch.setattr(Trained, "embed", real)
    assert main(["run", "--resume", "--experiment", str(exp)]) == 0
    assert json.loads((exp / "report.json").read_text())["status"] == "done"


def test_interruptible_restores_the_previous_handler():
    from reidcore.interrupts import Interrupted, interruptible

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as info, interruptible("evaluation"):
        os.kill(os.getpid(), signal.SIGTERM)
    assert info.value.exit_code == 143 and "during evaluation" in str(info.value)
    assert signal.getsignal(signal.SIGTERM) == before


def test_recipe_changes_a_default_without_redeclaring_help_or_checks():
    from reidcore.config_flags import add_config_flags
    from reidcore.recipe import TrainConfig, default, field_spec

    @attrs.define(kw_only=True)
    class Mine(TrainConfig):
        lr: float = default(1e-3)
        height: int = 64

    assert Mine().lr == 1e-3 and Mine().height == 64
    assert field_spec(Mine, "lr")["help"] == "base learning rate"
    with pytest.raises(ValueError, match="--height must be >= 1"):
        Mine(height=0)
    import argparse

    p = argparse.ArgumentParser()
    add_config_flags(p, Mine)
    text = p.format_help()
    assert "base learning rate (> 0.0) [0.001]" in text
    for group in ("data (", "model (", "optimisation (", "schedule (", "evaluation ("):
        assert group in text


def test_dataset_options_are_checked_against_the_reader(plugin, data, tmp_path, capsys):
    from reidcore.dataset_options import describe_options, parse_options, reader_options
    from reidcore.errors import ReidError

    def read(root, *, split_id: int = 0, frames: int | None = None, cache: bool = True):
        return None

    assert reader_options(read) == ({"split_id": 0, "frames": None}, False)
    assert describe_options(read) == "split_id=0, frames=None"
    import types

    from reidcore.hookspecs import hookimpl
    from reidcore.testing import registered_plugin

    module = types.SimpleNamespace(reid_datasets=hookimpl(lambda: {"opts": read}))
    with registered_plugin(module, "opts"):
        assert parse_options("opts", ["split_id=2", "frames=none"]) == {"split_id": 2,
                                                                         "frames": None}
        with pytest.raises(ReidError, match="has no option 'split'; its options: split_id=0"):
            parse_options("opts", ["split=1"])
        with pytest.raises(ReidError, match="expected int"):
            parse_options("opts", ["split_id=one"])
        exp = tmp_path / "exp"
        assert main(["run", "tiny", "--dataset", "opts", "--experiment", str(exp), *TINY,
                     "--dataset-option", "bogus=1"]) == 2
        assert "has no option 'bogus'" in capsys.readouterr().err
        assert not exp.exists()


def test_an_option_the_forwarding_readers_base_lacks_is_a_clear_error(plugin, data, tmp_path,
                                                                       capsys):
    # issue 13: synthetic-pose-maps forwards **kwargs to read_synthetic, so any key passed
    # the parser and `--dataset-option colour=red` ended in a TypeError traceback (exit 1)
    import types

    from reidcore.hookspecs import hookimpl
    from reidcore.testing import registered_plugin

    def base(root, *, seed: int = 0):
        return plugin.read_tiny(root)

    def forwarding(root, **kwargs):
        return base(root, **kwargs)

    module = types.SimpleNamespace(reid_datasets=hookimpl(lambda: {"fwd": forwarding}))
    with registered_plugin(module, "fwd"):
        exp = tmp_path / "exp"
        assert main(["run", "tiny", "--dataset", "fwd", "--data", str(data), "--experiment",
                     str(exp), *TINY, "--dataset-option", "colour=red"]) == 2
        assert "does not take the option 'colour'" in capsys.readouterr().err
        assert not exp.exists()


def test_list_datasets_shows_options_and_a_dataset_protocol_is_the_default(plugin, data,
                                                                          tmp_path, capsys,
                                                                          monkeypatch):
    import types

    from reidcore.hookspecs import hookimpl
    from reidcore.testing import registered_plugin

    def read(root, *, colour_seed: int = 0, **_kw):
        return plugin.read_tiny(root)

    read.reid_options = {"colour_seed": 0}
    read.reid_protocol = "diagonal"
    module = types.SimpleNamespace(reid_datasets=hookimpl(lambda: {"tiny-diag": read}))
    with registered_plugin(module, "diag"):
        assert main(["list", "datasets"]) == 0
        assert "options: colour_seed=0" in capsys.readouterr().out
        exp = tmp_path / "exp"
        assert main(["run", "tiny", "--dataset", "tiny-diag", "--data", str(data),
                     "--experiment", str(exp), *TINY, "--iterations", "1",
                     "--dataset-option", "colour_seed=3", "--excluder", "market1501"]) == 0
        args = json.loads((exp / "args.json").read_text())["config"]
        assert args["dataset_options"] == {"colour_seed": 3} and args["excluder"] == "market1501"
        import reidcore.pipeline

        seen = {}
        monkeypatch.setattr(reidcore.pipeline, "run",
                            lambda name, cfg, exp_dir, **kw: seen.setdefault("cfg", cfg) and 0)
        assert main(["run", "tiny", "--dataset", "tiny-diag", "--data", str(data), *TINY]) == 0
        assert seen["cfg"].excluder == "diagonal"  # the dataset's protocol is the default
        from reidcore.dataset_options import dataset_protocol

        assert dataset_protocol("tiny-diag") == "diagonal"


def test_incompatible_resume_override_changes_nothing(plugin, data, tmp_path, capsys):
    """Issue 14: args.json was rewritten before the override was checked, so a model that no
    longer fits the checkpoint left an experiment nothing could open."""
    import types

    from reidcore.hookspecs import hookimpl
    from reidcore.recipe import field
    from reidcore.testing import registered_plugin

    @attrs.define(kw_only=True)
    class SizedConfig(plugin.TinyConfig):
        head_size: int = field(8, "embedding size of the tiny head", minimum=1)

    class Sized(plugin.TinyRecipe):
        name = "tiny-sized"
        config_class = SizedConfig

        def build_model(self, cfg, num_classes):
            from torch import nn

            model = plugin.tiny_model()
            model.head = nn.Linear(8, cfg.head_size)
            return model

    module = types.SimpleNamespace(reid_recipes=hookimpl(lambda: {"tiny-sized": Sized}))
    with registered_plugin(module, "sized"):
        exp = tmp_path / "exp"
        assert main(["train", "tiny-sized", "--dataset", "tiny", "--data", str(data),
                     "--experiment", str(exp), *TINY, "--iterations", "1"]) == 0
        before = (exp / "args.json").read_bytes()
        capsys.readouterr()
        assert main(["run", "--resume", "--experiment", str(exp), "--head-size", "16"]) == 2
        assert "does not fit" in capsys.readouterr().err
        assert (exp / "args.json").read_bytes() == before
        assert main(["run", "--resume", "--experiment", str(exp)]) == 0  # still usable


def test_resumed_staged_override_reaches_the_stages_and_a_later_evaluate(plugin, data, tmp_path,
                                                                         monkeypatch, capsys):
    import reidcore.evaluation.evaluate_embeddings as ee

    exp = tmp_path / "exp"
    assert main(["train", "tiny-staged", "--dataset", "tiny", "--data", str(data),
                 "--experiment", str(exp), *TINY, "--iterations", "3"]) == 0
    real = ee.evaluate_sets

    def killed(*a, **kw):
        os.kill(os.getpid(), signal.SIGINT)
        return real(*a, **kw)

    monkeypatch.setattr(ee, "evaluate_sets", killed)
    assert main(["run", "--resume", "--experiment", str(exp), "--metric", "cosine"]) == 130
    assert "stopped by SIGINT during evaluation" in capsys.readouterr().out
    monkeypatch.setattr(ee, "evaluate_sets", real)
    assert main(["run", "--resume", "--experiment", str(exp)]) == 0
    assert json.loads((exp / "report.json").read_text())["metric"] == "cosine"
    stage = json.loads((exp / "stages" / "2-all" / "args.json").read_text())
    assert stage["config"]["metric"] == "cosine"
    assert stage["history"][-1]["previous"] == {"metric": "euclidean"}
    capsys.readouterr()
    assert main(["evaluate", "--experiment", str(exp)]) == 0
    assert "metric cosine" in capsys.readouterr().out
