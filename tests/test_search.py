"""``python -m reidcore search``: exact top-k against a stable argsort, the CSV, faiss
IVF/HNSW indexes saved beside the gallery and reused, recall@k, and input errors."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from reidcore.cli import main
from reidcore.commands.search import exact_search, recall_at_k
from reidcore.embeddings import write_embeddings
from reidcore.evaluation import pairwise_distances


def clustered(n, dim=16, ids=40, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(ids, dim)) * 3
    return (centres[rng.integers(0, ids, n)] + rng.normal(size=(n, dim))).astype(np.float32)


def write(path, embs):
    n = len(embs)
    write_embeddings(path, embs, np.arange(n), np.zeros(n, int),
                     [f"{path.stem}/{i:05d}.jpg" for i in range(n)])
    return path


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "cityblock"])
def test_exact_search_is_a_stable_argsort(metric):
    rng = np.random.default_rng(1)
    q = rng.integers(0, 3, (17, 3)).astype(np.float32)  # many exact ties
    g = rng.integers(0, 3, (90, 3)).astype(np.float32)
    idx, dist = exact_search(q, g, 12, metric, block_size=5)
    d = pairwise_distances(q, g, metric, device="cpu")
    expected = np.argsort(d, axis=1, kind="stable")[:, :12]
    if metric != "cosine":  # cosines of integer vectors are inexact: ties may break
        np.testing.assert_array_equal(idx, expected)
    np.testing.assert_allclose(dist, np.take_along_axis(d, expected, axis=1), atol=1e-6)


def test_exact_command_writes_the_csv(tmp_path, capsys):
    g = write(tmp_path / "gallery.h5", clustered(300, seed=2))
    q = write(tmp_path / "query.h5", clustered(20, seed=3))
    assert main(["search", "--gallery", str(g), "--query", str(q), "--top-k", "5"]) == 0
    rows = list(csv.DictReader((tmp_path / "query.search.csv").open()))
    assert len(rows) == 100
    idx, dist = exact_search(clustered(20, seed=3), clustered(300, seed=2), 5)
    assert [int(r["gallery_index"]) for r in rows] == idx.ravel().tolist()
    assert rows[6]["query_path"] == "query/00001.jpg" and rows[6]["rank"] == "2"
    assert rows[6]["gallery_path"] == f"gallery/{idx[1, 1]:05d}.jpg"
    np.testing.assert_allclose([float(r["distance"]) for r in rows], dist.ravel(), rtol=1e-5)
    assert "search_s" in capsys.readouterr().out


@pytest.mark.parametrize(("index", "extra"), [("ivf", ["--nlist", "16", "--nprobe", "8"]),
                                               ("hnsw", ["--hnsw-m", "16"])])
def test_faiss_index_is_saved_reused_and_measured(tmp_path, capsys, index, extra):
    pytest.importorskip("faiss")
    g = write(tmp_path / "gallery.h5", clustered(3000, seed=4))
    q = write(tmp_path / "query.h5", clustered(200, seed=5))
    out = tmp_path / "results.csv"
    argv = ["search", "--gallery", str(g), "--query", str(q), "--top-k", "10", "--index",
            index, "--output", str(out), "--recall-sample", "100", *extra]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "index_built: True" in text
    recall = float(text.split("recall_at_10: ")[1].split()[0])
    assert recall >= 0.9
    saved = sorted(p.name for p in tmp_path.glob("gallery.h5.*"))
    assert len(saved) == 2 and saved[0].endswith(".faiss") and saved[1].endswith(".json")
    assert main(argv) == 0
    assert "index_built: False" in capsys.readouterr().out
    write(g, clustered(3000, seed=6))  # a changed gallery file: rebuilt
    assert main(argv) == 0
    assert "index_built: True" in capsys.readouterr().out
    assert len(list(csv.DictReader(out.open()))) == 2000


def test_recall_at_k():
    exact = np.array([[1, 2, 3], [4, 5, 6]])
    assert recall_at_k(np.array([[3, 2, 1], [4, -1, 7]]), exact) == pytest.approx(4 / 6)


def test_bad_input_names_the_value(tmp_path, capsys):
    # main() returns argparse/usage exits as exit code 2 with the message on stderr
    g = write(tmp_path / "gallery.h5", clustered(30))
    q = write(tmp_path / "query.h5", clustered(5))
    base = ["search", "--gallery", str(g), "--query", str(q)]
    assert main(base + ["--top-k", "31"]) == 2
    assert "larger than the gallery" in capsys.readouterr().err
    assert main(base + ["--top-k", "0"]) == 2
    assert "--top-k must be at least 1" in capsys.readouterr().err
    assert main(base + ["--top-k", "3", "--index", "ivf", "--metric", "cityblock"]) == 2
    assert "cityblock has no faiss index" in capsys.readouterr().err
    assert main(["search", "--gallery", str(tmp_path / "nope.h5"), "--query", str(q)]) == 2
    assert "does not exist" in capsys.readouterr().err
    other = write(tmp_path / "other.h5", clustered(5, dim=8))
    assert main(["search", "--gallery", str(g), "--query", str(other), "--top-k", "3"]) == 2
    assert "8-D embeddings" in capsys.readouterr().err
