"""benchmarks/collect_recipe_results.py: per-recipe mean and spread of the holdout runs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "collect_recipe_results.py"


@pytest.fixture(scope="module")
def collect():
    spec = importlib.util.spec_from_file_location("collect_recipe_results", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(root: Path, name: str, r1: float, mAP: float, reranked: dict | None = None,
         exist_ok: bool = False, **extra):
    folder = root / name
    folder.mkdir(parents=True, exist_ok=exist_ok)
    report = {"rank1": r1, "mAP": mAP, "mINP": mAP / 2, "train": {"iteration": 100, "seconds": 60.0}}
    if reranked:
        report["reranked"] = reranked
    (folder / "report.json").write_text(json.dumps(report))
    (folder / "command.txt").write_text(f"python -m reidcore run {name}\n")
    for file, data in extra.items():
        (folder / file).write_text(json.dumps(data))


def test_mean_spread_reranked_and_relative_map(tmp_path, collect, capsys):
    root = tmp_path / "runs"
    rr = {"rank1": 0.7, "mAP": 0.6, "mINP": 0.3, "reranker": "k-reciprocal"}
    _run(root, "bot-seed0", 0.5, 0.40, rr)
    _run(root, "bot-seed1", 0.7, 0.44, rr, **{"schedule.json": {
        "iterations": 90, "seconds_per_iteration": 1.2, "refit": {"iteration": 5}}})
    for stage, n in (("2-all", 80), ("10-more", 70), ("1-views", 60)):  # a staged run: its last
        (root / "pse-seed0" / "stages" / stage).mkdir(parents=True)
        (root / "pse-seed0" / "stages" / stage / "schedule.json").write_text(
            json.dumps({"iterations": n, "seconds_per_iteration": 0.5}))
    _run(root, "pse-seed0", 0.5, 0.4, exist_ok=True)
    _run(root, "reference-seed0", 0.6, 0.40,
         **{"reference.json": {"result": {"iterations": 321, "train_seconds": 59.5}}})
    (root / "reference-seed1").mkdir()  # unfinished: no report, left out
    (root / "san-pg").mkdir()  # not a RECIPE-seedN run
    out = tmp_path / "result.json"
    assert collect.main([str(root), str(out), "--minutes", "1"]) == 0
    data = json.loads(out.read_text())
    assert data["budget_minutes"] == 1 and set(data["recipes"]) == {"bot", "pse", "reference"}
    bot = data["recipes"]["bot"]
    assert "schedule" not in bot["runs"][0] and bot["runs"][1]["schedule"] == {
        "iterations": 90, "seconds_per_iteration": 1.2, "budget_fraction": None,
        "refit": {"iteration": 5}}
    assert data["recipes"]["pse"]["runs"][0]["schedule"]["iterations"] == 70
    assert bot["seeds"] == [0, 1] and bot["reranker"] == "k-reciprocal"
    assert bot["plain"]["rank1"]["mean"] == pytest.approx(0.6)
    assert bot["plain"]["rank1"]["std"] == pytest.approx(0.1414, abs=1e-4)
    assert bot["plain"]["mAP"]["min"] == 0.40 and bot["plain"]["mAP"]["max"] == 0.44
    assert bot["reranked"]["mAP"]["mean"] == pytest.approx(0.6)
    assert bot["mAP_vs_reference"] == pytest.approx(1.05)
    ref = data["recipes"]["reference"]
    assert ref["plain"]["mAP"]["std"] is None and "reranked" not in ref
    assert ref["runs"][0]["iterations"] == 321 and ref["runs"][0]["train_seconds"] == 59.5
    assert "bot" in capsys.readouterr().out
    table = tmp_path / "table.md"
    assert collect.main([str(root), str(out), "--markdown", str(table)]) == 0
    rows = table.read_text().splitlines()
    assert rows[2].startswith("| reference | 1 | 321 | 60.0 | 40.0 | 20.0 | – | – | – | 100 % |")
    assert rows[3] == ("| bot | 2 | 100, 100 | 60.0 ± 14.1 | 42.0 ± 2.8 | 21.0 ± 1.4 | 70.0 ± 0.0 "
                       "| 60.0 ± 0.0 | k-reciprocal | 105 % |")


def test_no_finished_run_is_an_error(tmp_path, collect):
    (tmp_path / "bot-seed0").mkdir()
    with pytest.raises(SystemExit, match="no RECIPE-seedN"):
        collect.main([str(tmp_path), str(tmp_path / "r.json")])
    with pytest.raises(SystemExit, match="does not exist"):
        collect.main([str(tmp_path / "missing"), str(tmp_path / "r.json")])
