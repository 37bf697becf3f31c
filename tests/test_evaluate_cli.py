"""python -m reidcore evaluate: HDF5 ids or triplet-reid CSVs, --ap/--average/--rerank, JSON;
excluder and re-ranker hooks; the report table."""

from __future__ import annotations

import json
import types

import h5py
import numpy as np
import pytest

from reidcore.cli import main
from reidcore.embeddings import write_embeddings
from reidcore.evaluation import evaluate
from reidcore.hookspecs import hookimpl
from reidcore.report import format_report
from reidcore.testing import registered_plugin


def market_like(seed=0, n_ids=10, dim=8):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_ids + 1, dim)) * 3
    q_pids = np.repeat(np.arange(1, n_ids + 1), 2)
    q_cams = np.tile([1, 2], n_ids)
    g_pids = np.concatenate([np.repeat(np.arange(1, n_ids + 1), 3), [0, 0, -1]])
    g_cams = np.concatenate([np.tile([1, 2, 3], n_ids), [1, 2, 3]])
    q = (centres[q_pids] + rng.normal(size=(len(q_pids), dim))).astype(np.float32)
    g = (centres[np.maximum(g_pids, 0)] + rng.normal(size=(len(g_pids), dim))).astype(np.float32)
    return q, g, q_pids, q_cams, g_pids, g_cams


def names(pids, cams):
    return [f"{p:04d}_c{c}s1_{k:06d}_00.jpg" if p >= 0 else f"-1_c{c}s1_{k:06d}_00.jpg"
            for k, (p, c) in enumerate(zip(pids, cams, strict=True))]


def write_triplet_reid(tmp_path, part, embs, pids, cams, ids=None):
    h5 = tmp_path / f"{part}.h5"
    with h5py.File(h5, "w") as f:
        f.create_dataset("embs", data=embs)  # triplet-reid's embed.py writes only embs
    csv = tmp_path / f"{part}.csv"
    ids = ids if ids is not None else [("-1" if p < 0 else f"{p:04d}") for p in pids]
    csv.write_text("".join(f"{i},{n}\n" for i, n in zip(ids, names(pids, cams), strict=True)))
    return h5, csv


def test_evaluate_from_triplet_reid_csvs_with_rerank(tmp_path, capsys):
    q, g, q_pids, q_cams, g_pids, g_cams = market_like()
    qh, qc = write_triplet_reid(tmp_path, "query", q, q_pids, q_cams)
    gh, gc = write_triplet_reid(tmp_path, "gallery", g, g_pids, g_cams)
    out = tmp_path / "eval.json"
    code = main(["evaluate", "--query-embeddings", str(qh), "--gallery-embeddings", str(gh),
                 "--query-dataset", str(qc), "--gallery-dataset", str(gc), "--ap", "trapezoid",
                 "--average", "all", "--rerank", "k-reciprocal", "--output", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "mINP" in text and "reranked" in text and "trapezoid AP" in text
    report = json.loads(out.read_text())
    from reidcore.evaluation import pairwise_distances

    expected = evaluate(pairwise_distances(q, g), q_pids, g_pids, q_cams, g_cams,
                        ap="trapezoid", average="all")
    assert report["mAP"] == pytest.approx(expected.mAP) and report["ap"] == "trapezoid"
    assert report["mINP"] == pytest.approx(expected.mINP) and report["average"] == "all"
    assert report["reranked"]["reranker"] == "k-reciprocal"
    assert 0 <= report["reranked"]["mAP"] <= 1


def test_string_identities_are_mapped_consistently(tmp_path, capsys):
    q, g, q_pids, q_cams, g_pids, g_cams = market_like(seed=1)
    to_name = {p: f"person-{p}" for p in range(1, 11)}
    q_ids = [to_name[p] for p in q_pids]
    g_ids = [to_name.get(p, "-1" if p < 0 else "0") for p in g_pids]
    qh, qc = write_triplet_reid(tmp_path, "query", q, q_pids, q_cams, q_ids)
    gh, gc = write_triplet_reid(tmp_path, "gallery", g, g_pids, g_cams, g_ids)
    out = tmp_path / "e.json"
    assert main(["evaluate", "--query-embeddings", str(qh), "--gallery-embeddings", str(gh),
                 "--query-dataset", str(qc), "--gallery-dataset", str(gc),
                 "--output", str(out)]) == 0
    from reidcore.evaluation import pairwise_distances

    expected = evaluate(pairwise_distances(q, g), q_pids, g_pids, q_cams, g_cams)
    assert json.loads(out.read_text())["mAP"] == pytest.approx(expected.mAP)


def test_missing_pids_and_bad_csv_are_clear_errors(tmp_path, capsys):
    q, g, q_pids, q_cams, g_pids, g_cams = market_like()
    qh, qc = write_triplet_reid(tmp_path, "query", q, q_pids, q_cams)
    gh, gc = write_triplet_reid(tmp_path, "gallery", g, g_pids, g_cams)
    assert main(["evaluate", "--query-embeddings", str(qh), "--gallery-embeddings", str(gh)]) == 2
    assert "no 'pids'" in capsys.readouterr().err
    short = tmp_path / "short.csv"
    short.write_text("0001,0001_c1s1_000000_00.jpg\n")
    assert main(["evaluate", "--query-embeddings", str(qh), "--gallery-embeddings", str(gh),
                 "--query-dataset", str(short), "--gallery-dataset", str(gc)]) == 2
    assert "1 lines but" in capsys.readouterr().err
    nocam = tmp_path / "nocam.csv"
    nocam.write_text("".join(f"{p},img{k}.jpg\n" for k, p in enumerate(q_pids)))
    assert main(["evaluate", "--query-embeddings", str(qh), "--gallery-embeddings", str(gh),
                 "--query-dataset", str(nocam), "--gallery-dataset", str(gc)]) == 2
    assert "no camera ids" in capsys.readouterr().err


def test_evaluate_hdf5_with_ids_and_unknown_excluder(tmp_path, capsys):
    q, g, q_pids, q_cams, g_pids, g_cams = market_like()
    write_embeddings(tmp_path / "q.h5", q, q_pids, q_cams, names(q_pids, q_cams))
    write_embeddings(tmp_path / "g.h5", g, g_pids, g_cams, names(g_pids, g_cams))
    base = ["evaluate", "--query-embeddings", str(tmp_path / "q.h5"),
            "--gallery-embeddings", str(tmp_path / "g.h5")]
    assert main([*base, "--excluder", "cuhk03"]) == 0
    assert "cuhk03" in capsys.readouterr().out
    assert main([*base, "--excluder", "market"]) == 2
    assert "Unknown excluder 'market'" in capsys.readouterr().err
    assert main([*base, "--rerank", "ecnn"]) == 2
    assert "Unknown reranker 'ecnn'" in capsys.readouterr().err


def test_plugin_excluder_and_reranker_hooks(tmp_path, capsys):
    def exclude_first(q_pid, q_camid, g_pids, g_camids, q_index):
        m = np.zeros(len(g_pids), bool)
        m[0] = True
        return m

    def negate(query, gallery, *, metric="euclidean"):
        return -np.ones((len(query), len(gallery)), np.float32)

    module = types.SimpleNamespace(
        reid_excluders=hookimpl(lambda: {"first": exclude_first}),
        reid_rerankers=hookimpl(lambda: {"flat": negate}),
    )
    q, g, q_pids, q_cams, g_pids, g_cams = market_like()
    write_embeddings(tmp_path / "q.h5", q, q_pids, q_cams, names(q_pids, q_cams))
    write_embeddings(tmp_path / "g.h5", g, g_pids, g_cams, names(g_pids, g_cams))
    with registered_plugin(module, "hooks"):
        d = np.tile(np.arange(3.0), (1, 1))
        r = evaluate(d, np.array([1]), np.array([1, 1, 2]), np.array([0]), np.zeros(3, int),
                     excluder="first", max_rank=2)
        assert r.excluder == "first" and r.rank(1) == 1.0 and r.mAP == 1.0
        assert main(["list", "excluders"]) == 0 and main(["list", "rerankers"]) == 0
        listing = capsys.readouterr().out
        assert "first" in listing and "[hooks]" in listing and "k-reciprocal" in listing
        out = tmp_path / "e.json"
        assert main(["evaluate", "--query-embeddings", str(tmp_path / "q.h5"),
                     "--gallery-embeddings", str(tmp_path / "g.h5"), "--excluder", "first",
                     "--rerank", "flat", "--output", str(out)]) == 0
        report = json.loads(out.read_text())
        assert report["excluder"] == "first" and report["reranked"]["reranker"] == "flat"


def test_format_report_with_rerank_and_old_reports():
    base = {"rank1": 0.5, "rank5": 0.6, "rank10": 0.7, "rank20": 0.8, "mAP": 0.4,
            "num_valid_queries": 3, "num_skipped": 1, "metric": "euclidean",
            "excluder": "market1501"}
    old = format_report(base)
    assert "mINP" in old and "      -" in old and "40.0%" in old
    new = format_report({**base, "mINP": 0.1, "ap": "step",
                         "reranked": {**base, "mAP": 0.45, "mINP": 0.2, "reranker": "k"}})
    assert "reranked" in new and "45.0%" in new and "20.0%" in new and "re-ranked by k" in new


def test_run_with_rerank_reports_both(tiny_plugin, tiny_data, tmp_path, capsys):
    exp = tmp_path / "exp"
    args = ["run", "tiny", "--dataset", "tiny", "--data", str(tiny_data), "--experiment",
            str(exp), "--height", "32", "--width", "16", "--batch-p", "3", "--batch-k", "2",
            "--pad", "2", "--workers", "0", "--pretrained", "none", "--embed-batch-size", "16",
            "--iterations", "2", "--rerank", "k-reciprocal"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "reranked" in out and "mINP" in out
    report = json.loads((exp / "report.json").read_text())
    assert "mINP" in report and report["reranked"]["reranker"] == "k-reciprocal"
    for key in ("rank1", "mAP", "mINP", "num_valid_queries"):
        assert key in report["reranked"]
    assert json.loads((exp / "args.json").read_text())["config"]["rerank"] == "k-reciprocal"
