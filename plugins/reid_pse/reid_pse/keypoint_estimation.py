"""Estimating a dataset's keypoints into ``keypoints.csv``, chunk by chunk, resumable.

What ``python -m reidcore pse keypoints`` runs (:mod:`reid_pse.cli`): every image of the
dataset (train, query, gallery) without a row in the output table is given to a registered
keypoint estimator (``reid_keypoint_estimators``; ``keypointrcnn`` ships with this plugin),
``chunk_size`` images at a time. After each chunk the whole table (the rows so far) is
rewritten atomically (:func:`reidcore.atomic.atomic_write_text`: a reader or a killed run sees
the previous complete table or the new one, never half a row), so a run that is killed resumes
at the first chunk it had not written.

The table is the ``keypoints.csv`` format (:mod:`reid_datasets.keypoints_csv`) with the
estimator's confidences: ``image, x0..x13, y0..y13, v0..v13``; ``x``, ``y`` 1-based pixels
(2 decimals), ``v`` in ``[0, 1]`` (3 decimals), a missing joint ``0, 0, 0``. ``image`` is the
image path relative to the table's folder (POSIX separators) when the image lies under it,
else its absolute path: the keypoint search (:func:`reid_pse.keypoints.attach_keypoints`)
finds the table in the data folder and matches both.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import attrs
import numpy as np
from reid_datasets.keypoints_csv import csv_header, read_keypoints_csv, to_one_based
from tqdm import tqdm

from reid_pse.keypoints import NUM_JOINTS, as_keypoints, estimate_keypoints
from reidcore.atomic import atomic_write_text, is_temp_file


@attrs.frozen
class EstimationSummary:
    """What :func:`estimate_to_csv` did.

    ``images``: rows in the table at the end; ``resumed``: rows already there at the start;
    ``estimated``: images estimated by this run; ``chunks``: tables written;
    ``joints_found``: fraction of the estimated joints with confidence > 0 (NaN when none).
    """

    output: Path
    images: int
    resumed: int
    estimated: int
    chunks: int
    joints_found: float


def table_name(path: str | os.PathLike, base: Path) -> str:
    """The ``image`` key of ``path`` in a table stored in ``base``: relative POSIX path, or the
    absolute path when the image is not under ``base``."""
    full = Path(os.path.abspath(path))
    try:
        return full.relative_to(os.path.abspath(base)).as_posix()
    except ValueError:
        return full.as_posix()


def _fmt(v: float, digits: int) -> str:
    s = f"{v:.{digits}f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def format_row(name: str, keypoints) -> str:
    """One CSV line (no newline) ``name, x0..x13, y0..y13, v0..v13`` (format above)."""
    kp = as_keypoints(keypoints, name)
    xs, ys = to_one_based(kp)
    present = (xs > 0) & (ys > 0)
    vs = np.where(present, kp[:, 2], 0.0)
    if "," in name or '"' in name or "\n" in name:
        name = '"' + name.replace('"', '""') + '"'
    cells = [name, *(_fmt(v, 2) for v in np.where(present, xs, 0.0)),
             *(_fmt(v, 2) for v in np.where(present, ys, 0.0)), *(_fmt(v, 3) for v in vs)]
    return ",".join(cells)


def estimate_to_csv(
    paths: Sequence[str],
    output: str | os.PathLike,
    estimator: str,
    *,
    options: Mapping[str, object] | None = None,
    chunk_size: int = 256,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> EstimationSummary:
    """Estimate the keypoints of ``paths`` not yet in ``output`` and store them there.

    Args:
        paths: image files; duplicates are estimated once.
        output: the table (created with its folder; an existing one is resumed: its rows are
            kept, read with :func:`~reid_datasets.keypoints_csv.read_keypoints_csv`, and its
            images skipped).
        estimator: a registered keypoint estimator (e.g. ``keypointrcnn``).
        options: keyword options for the estimator (e.g. ``{"weights": PATH}``).
        chunk_size: images per estimator call and per table write (>= 1).
        progress: show a tqdm bar over the images to estimate (on stderr).
        log: receives one line per resumed table and per chunk written (default: printed,
            through tqdm when the bar is shown).

    Returns:
        An :class:`EstimationSummary`.

    Raises:
        ValueError: ``chunk_size < 1``.
        KeypointsError: the existing table is malformed (names the file and line), or the
            estimator returns a wrong shape.
        UnknownNameError: ``estimator`` is not registered.
        WeightsError / ImageReadError: the estimator's errors.
    """
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    output = Path(output).expanduser()
    base = output.parent
    lines: list[str] = []
    done: set[str] = set()
    if output.is_file():
        table = read_keypoints_csv(output)  # validated: a malformed table is an error
        done = set(table)
        lines = (_data_lines(output) if _has_v(output)  # stored lines kept exactly
                 else [format_row(name, kp) for name, kp in table.items()])
        (log or print)(f"resuming {output}: {len(done)} images already there")
    for stale in base.glob(f".{output.name}.*.tmp") if base.is_dir() else []:
        if is_temp_file(stale):  # left by a killed write of this table
            stale.unlink(missing_ok=True)
    seen: set[str] = set()
    todo: list[tuple[str, str]] = []
    for p in paths:
        name = table_name(p, base)
        if name not in done and name not in seen and Path(p).name not in done:
            seen.add(name)
            todo.append((str(p), name))
    header = ",".join(csv_header(NUM_JOINTS, visibility=True))
    resumed, chunks, found, total = len(done), 0, 0, 0
    bar = tqdm(total=len(todo), desc=f"keypoints ({estimator})", unit="img",
               disable=not progress)
    log = log or (bar.write if progress else print)
    with bar:
        for start in range(0, len(todo), int(chunk_size)):
            chunk = todo[start:start + int(chunk_size)]
            kps = estimate_keypoints(estimator, [p for p, _ in chunk], **dict(options or {}))
            lines.extend(format_row(name, kp) for (_, name), kp in zip(chunk, kps, strict=True))
            found += int((kps[:, :, 2] > 0).sum())
            total += kps.shape[0] * kps.shape[1]
            atomic_write_text(output, "\n".join([header, *lines]) + "\n")
            chunks += 1
            bar.update(len(chunk))
            log(f"wrote {output}: {len(lines)} images ({start + len(chunk)} of {len(todo)} new)")
    return EstimationSummary(output, len(lines), resumed, len(todo), chunks,
                             found / total if total else float("nan"))


def _has_v(path: Path) -> bool:
    with open(path, encoding="utf-8") as f:
        header = [h.strip() for h in f.readline().split(",")]
    return header == csv_header(NUM_JOINTS, visibility=True)


def _data_lines(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\r\n") for line in f.readlines()[1:] if line.strip()]
