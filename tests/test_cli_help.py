"""Issue 13, the newcomer's path: ``--help`` is tidy (no empty defaults, verbs described)."""

from __future__ import annotations

from reidcore.cli import command_summary, main


def test_top_help_describes_every_verb(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "(command of plugin" not in out  # was the only text of export, visualize, pse, san
    assert "  export     a trained model's inference graph as ONNX or TorchScript" in out


def test_recipe_help_shows_no_empty_defaults(capsys):
    assert main(["run", "trinet", "--help"]) == 0
    out = capsys.readouterr().out
    assert "[]" not in out and "[None]" not in out and "[{}]" not in out
    assert "--batch-p" in out and "[18]" in out  # real defaults still shown
    assert "--keep-stage-checkpoints" in out


def test_command_summary_reads_the_docstring_without_importing():
    assert command_summary("reidcore.commands.export:main").startswith("a trained model's")
    assert command_summary("no_such_module_xyz:main") == ""

    def documented():
        """``python -m reidcore thing``: does a thing (see docs)."""

    assert command_summary(documented) == "does a thing"
