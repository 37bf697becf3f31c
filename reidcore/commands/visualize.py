"""``python -m reidcore visualize``: ranked-list images and a CMC curve of an experiment.

Reads ``EXPERIMENT/embeddings/query.h5`` and ``gallery.h5`` (embeddings, pids, camids and
image paths, as ``run`` and ``embed`` write them) and the experiment's metric and
evaluation protocol from ``args.json``, and writes into ``--output``
(default ``EXPERIMENT/visualize/``):

* ``ranked_lists.png``: one row per query: the query (blue border), then its gallery
  ranking until ``--top-k`` counted results are shown: green border for a correct match
  (same identity), red for a wrong one. Gallery images the protocol ignores for that query
  (junk, pid ``-1``; the query's identity seen by the query's own camera) are drawn greyed
  where they rank, without a rank number. Under each image: the rank (or why it is ignored),
  the distance to the query, the identity and the camera index (0-based).
* ``cmc.png``: the CMC curve (ranks 1 to 50) with rank-1 and mAP in the legend; needs
  matplotlib (``pip install 'reidcore[viz]'``).

The ranked lists need only Pillow; the CMC curve needs the ``viz`` extra.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reidcore.errors import ReidError

DESCRIPTION = "ranked-list images (query + top-k gallery) and a CMC curve PNG of an experiment"
VIZ_HINT = "pip install 'reidcore[viz]'"

QUERY_COLOUR = (40, 90, 220)
CORRECT_COLOUR = (0, 165, 0)
WRONG_COLOUR = (220, 20, 20)
IGNORED_COLOUR = (170, 170, 170)
BACKGROUND = (255, 255, 255)
TEXT_COLOUR = (20, 20, 20)
BORDER = 4
GAP = 4
QUERY_GAP = 18
MARGIN = 8


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m reidcore visualize", description=DESCRIPTION)
    p.add_argument("--experiment", type=Path, required=True,
                   help="experiment folder with embeddings/query.h5 and embeddings/gallery.h5")
    p.add_argument("--top-k", type=int, default=10, help="gallery results per query [10]")
    p.add_argument("--num-queries", type=int, default=8,
                   help="queries drawn at random (seeded) among those with a valid match [8]")
    p.add_argument("--queries", type=int, nargs="+", metavar="INDEX",
                   help="query indices (rows of query.h5) to show instead of a random draw")
    p.add_argument("--seed", type=int, default=0, help="seed of the query draw [0]")
    p.add_argument("--thumb-height", type=int, default=128,
                   help="height of each image in pixels; width is half of it [128]")
    p.add_argument("--colors", type=int, default=0, metavar="N",
                   help="quantise the ranked-list PNG to N colours (2..256; much smaller "
                   "files, e.g. for documentation) [0: full colour]")
    p.add_argument("--output", type=Path, help="output folder [EXPERIMENT/visualize]")
    return p


def _require_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ReidError(
            f"visualize draws the CMC curve with matplotlib, which is not installed: {VIZ_HINT}"
        ) from exc


# ---------------------------------------------------------------------------- ranking
def ranked_row(distances: np.ndarray, q_pid: int, q_camid: int, g_pids: np.ndarray,
               g_camids: np.ndarray, ignored: np.ndarray, top_k: int) -> list[tuple[int, str]]:
    """The gallery items shown for one query, best first: ``[(gallery index, status)]``.

    ``status`` is ``"correct"`` (same pid), ``"wrong"`` or ``"ignored"`` (``ignored[j]``,
    what the protocol leaves out). Items are taken in ascending distance (ties by gallery
    index, as the evaluation does) until ``top_k`` counted (correct or wrong) items are in
    the list; ignored items ranked among them are listed where they rank, but at most
    ``top_k`` of them.
    """
    order = np.argsort(distances, kind="stable")
    row: list[tuple[int, str]] = []
    counted = ignored_shown = 0
    for j in order:
        if counted >= top_k:
            break
        if ignored[j]:
            if ignored_shown < top_k:
                row.append((int(j), "ignored"))
                ignored_shown += 1
            continue
        row.append((int(j), "correct" if g_pids[j] == q_pid else "wrong"))
        counted += 1
    return row


def _ignored_reason(g_pid: int, g_camid: int, q_pid: int, q_camid: int) -> str:
    if g_pid == -1:
        return "junk"
    if g_pid == q_pid and g_camid == q_camid:
        return "same cam"
    return "ignored"


# ---------------------------------------------------------------------------- drawing
def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: a fixed bitmap font
        return ImageFont.load_default()


def _number(value: float) -> str:
    """Three significant digits, trailing zeros kept (``1.00``, ``0.752``, ``123``)."""
    return f"{value:#.3g}".rstrip(".")


def _resolve(path: str, roots: Sequence[Path]) -> Path | None:
    p = Path(path)
    if p.is_file():
        return p
    for root in roots:
        if (root / p).is_file():
            return root / p
    return None


def _tile(path: str, roots: Sequence[Path], width: int, height: int, status: str):
    """The image fitted into ``width × height`` (aspect kept, white padding) with its border."""
    from PIL import Image, ImageDraw, ImageOps

    colour = {"query": QUERY_COLOUR, "correct": CORRECT_COLOUR, "wrong": WRONG_COLOUR,
              "ignored": IGNORED_COLOUR}[status]
    inner = Image.new("RGB", (width, height), BACKGROUND)
    found = _resolve(path, roots)
    if found is None:
        draw = ImageDraw.Draw(inner)
        draw.line((0, 0, width, height), fill=IGNORED_COLOUR, width=2)
        draw.line((0, height, width, 0), fill=IGNORED_COLOUR, width=2)
        draw.text((4, height // 2 - 6), "missing", fill=TEXT_COLOUR, font=_font(11))
    else:
        with Image.open(found) as im:
            im = ImageOps.contain(im.convert("RGB"), (width, height), Image.Resampling.BICUBIC)
        inner.paste(im, ((width - im.width) // 2, (height - im.height) // 2))
    if status == "ignored":  # greyed: desaturated and washed out
        grey = ImageOps.grayscale(inner).convert("RGB")
        inner = Image.blend(grey, Image.new("RGB", inner.size, BACKGROUND), 0.55)
    return ImageOps.expand(inner, border=BORDER, fill=colour)


def draw_ranked_lists(rows: Sequence[dict[str, Any]], thumb_height: int, title: str,
                      roots: Sequence[Path] = ()):
    """One image of every row: ``{"query": (path, pid, camid, ap), "items": [(path, pid,
    camid, status, rank | None, distance, reason)]}``. Returns a ``PIL.Image``."""
    from PIL import Image, ImageDraw

    th, tw = thumb_height, max(thumb_height // 2, 8)
    cell_w, cell_h = tw + 2 * BORDER, th + 2 * BORDER
    font_size = max(9, min(13, thumb_height // 11))
    font, title_font = _font(font_size), _font(font_size + 2)
    line_h = font_size + 3
    label_h = 3 * line_h + 4
    legend_h = 2 * (font_size + 6) + 6
    max_items = max((len(r["items"]) for r in rows), default=0)
    width = 2 * MARGIN + cell_w + QUERY_GAP + max_items * (cell_w + GAP)
    height = legend_h + MARGIN + len(rows) * (cell_h + label_h + GAP) + MARGIN
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)

    draw.text((MARGIN, MARGIN // 2), title, fill=TEXT_COLOUR, font=title_font)
    x = MARGIN
    y = MARGIN // 2 + font_size + 8
    for colour, label in ((QUERY_COLOUR, "query"), (CORRECT_COLOUR, "correct match"),
                          (WRONG_COLOUR, "wrong match"),
                          (IGNORED_COLOUR, "ignored by the protocol (junk / same camera)")):
        draw.rectangle((x, y, x + font_size, y + font_size), outline=colour, width=3)
        x += font_size + 4
        draw.text((x, y), label, fill=TEXT_COLOUR, font=font)
        x += int(draw.textlength(label, font=font)) + 14

    def label(x0: int, y0: int, lines: Sequence[str]) -> None:
        for i, text in enumerate(lines):
            # shrink-to-fit: drop characters until the text fits under the tile
            while text and draw.textlength(text, font=font) > cell_w:
                text = text[:-1]
            draw.text((x0, y0 + i * line_h), text, fill=TEXT_COLOUR, font=font)

    y = legend_h + MARGIN
    for row in rows:
        q_path, q_pid, q_camid, ap = row["query"]
        canvas.paste(_tile(q_path, roots, tw, th, "query"), (MARGIN, y))
        label(MARGIN, y + cell_h + 2, ["query", f"AP {ap:.2f}", f"id {q_pid} c{q_camid}"])
        x = MARGIN + cell_w + QUERY_GAP
        for path, pid, camid, status, rank, dist, reason in row["items"]:
            canvas.paste(_tile(path, roots, tw, th, status), (x, y))
            first = f"#{rank}" if rank is not None else reason
            label(x, y + cell_h + 2, [first, f"d {_number(dist)}", f"id {pid} c{camid}"])
            x += cell_w + GAP
        y += cell_h + label_h + GAP
    return canvas


def draw_cmc(cmc: np.ndarray, mAP: float, title: str, path: Path) -> None:
    """Write the CMC curve ``cmc[k-1]`` (fractions) as a small PNG at ``path``."""
    _require_matplotlib()
    from matplotlib.figure import Figure

    ranks = np.arange(1, len(cmc) + 1)
    fig = Figure(figsize=(5.0, 3.6), dpi=100)
    ax = fig.add_subplot()
    ax.plot(ranks, 100 * cmc, color="tab:blue", linewidth=2,
            label=f"rank-1 {100 * cmc[0]:.1f}%, mAP {100 * mAP:.1f}%")
    for k in (1, 5, 10, 20):
        if k <= len(cmc):
            ax.plot([k], [100 * cmc[k - 1]], "o", color="tab:blue", markersize=4)
            low = cmc[k - 1] < 0.12  # keep the label inside the axes
            ax.annotate(f"{100 * cmc[k - 1]:.1f}", (k, 100 * cmc[k - 1]),
                        textcoords="offset points", xytext=(4, 4) if low else (3, -11),
                        fontsize=8)
    ax.set_xlim(0.5, len(cmc) + 0.5)
    ax.set_ylim(0, 100)
    ax.set_xlabel("rank")
    ax.set_ylabel("matching rate (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


# ---------------------------------------------------------------------------- command
def _average_precision(distances: np.ndarray, matches: np.ndarray, ignored: np.ndarray) -> float:
    keep = ~ignored
    order = np.argsort(distances[keep], kind="stable")
    hits = matches[keep][order]
    if not hits.any():
        return 0.0
    ranks = np.flatnonzero(hits) + 1
    return float(np.mean(np.arange(1, len(ranks) + 1) / ranks))


def visualize(exp_dir: Path, output: Path, *, top_k: int = 10, num_queries: int = 8,
              queries: Sequence[int] | None = None, seed: int = 0,
              thumb_height: int = 128, colors: int = 0) -> dict[str, Path]:
    """Write ``ranked_lists.png`` and ``cmc.png`` of ``exp_dir`` into ``output``.

    ``colors`` (2..256) quantises the ranked-list image to that many colours; 0 keeps full
    colour.

    Returns:
        ``{"ranked_lists": path, "cmc": path}``.

    Raises:
        ReidError: no such experiment, embeddings without pids/camids/paths, bad numbers,
            or matplotlib missing (the message names the ``viz`` extra).
    """
    from PIL import Image

    from reidcore.embeddings import check_same_checkpoint, read_embeddings
    from reidcore.evaluation import get_excluder, pairwise_distances
    from reidcore.evaluation.evaluate_embeddings import evaluate_sets
    from reidcore.experiment import Experiment

    if top_k < 1 or num_queries < 1 or thumb_height < 16:
        raise ReidError("--top-k and --num-queries must be >= 1 and --thumb-height >= 16")
    if colors and not 2 <= colors <= 256:
        raise ReidError(f"--colors must be 0 (full colour) or 2..256, got {colors}")
    _require_matplotlib()
    exp = Experiment.open(exp_dir)
    settings = exp.eval_settings()  # the experiment's metric, protocol, AP, averaging
    cfg = exp.final_args()["config"]
    metric, excluder = settings.metric, settings.excluder
    emb_dir = exp.embeddings_dir
    qe, ge = read_embeddings(emb_dir / "query.h5"), read_embeddings(emb_dir / "gallery.h5")
    for name, e in (("query.h5", qe), ("gallery.h5", ge)):
        if e.pids is None or e.camids is None or e.paths is None:
            raise ReidError(f"{emb_dir / name} lacks pids, camids or paths; write it with "
                            f"python -m reidcore embed --experiment {exp_dir}")
    check_same_checkpoint(qe, ge, str(emb_dir / "query.h5"), str(emb_dir / "gallery.h5"))
    dist = pairwise_distances(qe.embs, ge.embs, metric=metric)
    exclude = get_excluder(excluder)
    ignored = np.stack([np.asarray(exclude(int(qe.pids[i]), int(qe.camids[i]), ge.pids,
                                           ge.camids, i), dtype=bool)
                        for i in range(len(qe))])
    matches = (qe.pids[:, None] == ge.pids[None, :]) & ~ignored
    valid = np.flatnonzero(matches.any(axis=1))
    if queries:
        bad = [i for i in queries if not 0 <= i < len(qe)]
        if bad:
            raise ReidError(f"query indices {bad} are outside 0..{len(qe) - 1}")
        chosen = list(queries)
    else:
        if not len(valid):
            raise ReidError("no query has a correct gallery match under the protocol")
        rng = np.random.default_rng(seed)
        chosen = sorted(rng.choice(valid, size=min(num_queries, len(valid)), replace=False))

    roots = [Path(cfg["data"]).expanduser()] if cfg.get("data") else []
    rows = []
    for i in chosen:
        q_pid, q_camid = int(qe.pids[i]), int(qe.camids[i])
        items, rank = [], 0
        for j, status in ranked_row(dist[i], q_pid, q_camid, ge.pids, ge.camids, ignored[i],
                                    top_k):
            g_pid, g_camid = int(ge.pids[j]), int(ge.camids[j])
            if status != "ignored":
                rank += 1
            items.append((ge.paths[j], g_pid, g_camid, status,
                          rank if status != "ignored" else None, float(dist[i, j]),
                          _ignored_reason(g_pid, g_camid, q_pid, q_camid)))
        rows.append({"query": (qe.paths[i], q_pid, q_camid,
                               _average_precision(dist[i], matches[i], ignored[i])),
                     "items": items})

    recipe, dataset = exp.recipe, cfg.get("dataset", "?")
    output.mkdir(parents=True, exist_ok=True)
    title = (f"{recipe} on {dataset}: top-{top_k} of {len(ge)} gallery images, "
             f"{metric} distance, {excluder} protocol")
    image = draw_ranked_lists(rows, thumb_height, title, roots)
    paths = {"ranked_lists": output / "ranked_lists.png", "cmc": output / "cmc.png"}
    if colors:
        image = image.quantize(colors=colors, method=Image.Quantize.MEDIANCUT,
                               dither=Image.Dither.NONE)
    image.save(paths["ranked_lists"], optimize=True)

    import attrs

    result, _, _ = evaluate_sets(qe, ge, attrs.evolve(settings, rerank="none",
                                                      max_rank=min(50, len(ge))))
    draw_cmc(np.asarray(result.cmc), float(result.mAP),
             f"CMC: {recipe} on {dataset} ({result.num_valid_queries} queries)", paths["cmc"])
    return paths


def main(argv: list[str]) -> int:
    """``python -m reidcore visualize --experiment DIR [--top-k 10] [--num-queries 8] ...``."""
    args = _parser().parse_args(argv)
    out = args.output or args.experiment / "visualize"
    paths = visualize(args.experiment, out, top_k=args.top_k, num_queries=args.num_queries,
                      queries=args.queries, seed=args.seed, thumb_height=args.thumb_height,
                      colors=args.colors)
    for what, path in paths.items():
        print(f"wrote {what.replace('_', ' ')}: {path}")
    return 0
