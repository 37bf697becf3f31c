"""MARS reader (video re-ID): tracklets of frames, as the official protocol defines.

Layout (Zheng et al., "MARS: A Video Benchmark for Large-Scale Person Re-identification",
ECCV 2016; ``bbox_train.zip``, ``bbox_test.zip`` and the ``info/`` folder of the official
MARS-evaluation code; torchreid's ``mars/`` folder)::

    DIR/bbox_train/0001/0001C1T0001F001.jpg ...   509,914 frames of 625 identities
    DIR/bbox_test/0002/0002C1T0001F001.jpg ...    681,089 frames; 0000/ distractors,
    DIR/bbox_test/00-1/00-1C1T0001F001.jpg ...    00-1/ junk
    DIR/info/train_name.txt         one frame name per line, in tracklet order
    DIR/info/test_name.txt
    DIR/info/tracks_train_info.mat  'track_train_info': (8298, 4) rows
    DIR/info/tracks_test_info.mat   'track_test_info': (12180, 4) rows
    DIR/info/query_IDX.mat          'query_IDX': (1, 1980) rows of track_test_info, 1-based

A frame name ``PPPPCcTttttFfff.jpg`` holds the identity ``PPPP`` (``0000`` distractor,
``00-1`` junk; also its folder), the camera ``c`` (1..6), the tracklet ``tttt`` and the
frame ``fff``. A track row is ``(start, end, pid, camid)``: its frames are lines
``start..end`` (1-based, inclusive) of the name file; ``camid`` is 1-based.

**Samples.** Every sample is one frame; ``extras["tracklet"]`` is the 0-based row of its
track in ``tracks_<part>_info.mat`` (an int, unique within train, and within the test
rows shared by query and gallery), ``camid`` is 0-based.

- ``train``: the frames of every training tracklet with pid > 0, sorted by tracklet
  then frame; ``train_frames=N`` keeps N evenly spaced frames per tracklet (all by default).
- ``query``: the frames of the 1,980 tracklets of ``query_IDX``.
- ``gallery``: the frames of all 12,180 test tracklets, as the official evaluation
  does (the queries included: a query's own tracklet has its pid and camera, so the
  Market-1501 rule excludes it), distractors (pid 0) and junk (pid -1) included.

**Evaluation (the MARS protocol)**: pool the frame features of each tracklet of query and
gallery (the official code averages them) into one feature per ``(part, tracklet)``, then
rank with the Market-1501 rule: gallery tracklets of the query's pid and camera, and junk
(pid -1), are ignored. The tracklet's pid and camid are those of its frames.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from reid_datasets._common import cached_split, require_root
from reidcore.data import Sample, Split
from reidcore.errors import DatasetError

LAYOUT = (
    "DIR/bbox_train/<pid>/<pid>C1T0001F001.jpg, DIR/bbox_test/<pid>/..., DIR/info/"
    "train_name.txt, DIR/info/test_name.txt, DIR/info/tracks_train_info.mat "
    "('track_train_info'), DIR/info/tracks_test_info.mat ('track_test_info') and "
    "DIR/info/query_IDX.mat ('query_IDX') from the official MARS release."
)
INFO_FILES = (
    "train_name.txt",
    "test_name.txt",
    "tracks_train_info.mat",
    "tracks_test_info.mat",
    "query_IDX.mat",
)


def find_mars_root(root: Path) -> Path:
    """``root`` if it holds ``info/``, else a single sub-folder (e.g. ``MARS/``) that does."""
    if (root / "info").is_dir() or (root / "bbox_train").is_dir():
        return root
    subs = [p for p in root.iterdir() if p.is_dir() and (p / "info").is_dir()]
    return subs[0] if len(subs) == 1 else root


def _load_matrix(path: Path, key: str) -> np.ndarray:
    from scipy.io import loadmat

    if not path.is_file():
        raise DatasetError(f"Missing MARS file {path}. Expected layout: {LAYOUT}")
    try:
        mat = loadmat(str(path))
    except Exception as exc:  # noqa: BLE001 -- scipy raises many kinds
        raise DatasetError(f"Cannot read {path} as a MATLAB file: {exc}") from exc
    if key not in mat:
        raise DatasetError(f"{path} has no {key!r} matrix. Expected layout: {LAYOUT}")
    return np.asarray(mat[key]).astype(np.int64)


def _names(path: Path) -> list[str]:
    if not path.is_file():
        raise DatasetError(f"Missing MARS file {path}. Expected layout: {LAYOUT}")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _tracklets(
    names: list[str], tracks: np.ndarray, info: Path, images: Path
) -> list[tuple[int, int, list[str]]]:
    """``(pid, camid 0-based, frame paths)`` per track row; checks names against the row."""
    if tracks.ndim != 2 or tracks.shape[1] != 4:
        raise DatasetError(f"{info}: expected an (N, 4) matrix of start, end, pid, camid rows")
    out = []
    folders: dict[str, set[str]] = {}
    for row, (start, end, pid, camid) in enumerate(tracks.tolist()):
        if not 1 <= start <= end <= len(names):
            raise DatasetError(
                f"{info}: row {row + 1} spans frames {start}..{end}, outside 1..{len(names)}"
            )
        frames = names[start - 1 : end]
        for frame in frames:
            if frame[:4] != f"{pid:0>4}" or frame[5:6] != str(camid):
                raise DatasetError(
                    f"{info}: row {row + 1} (pid {pid}, camera {camid}) holds frame {frame} of "
                    "another identity or camera"
                )
        folder = images / frames[0][:4]
        if folder.name not in folders:
            if not folder.is_dir():
                raise DatasetError(f"Missing folder {folder}. Expected layout: {LAYOUT}")
            folders[folder.name] = set(os.listdir(folder))
        missing = [f for f in frames if f not in folders[folder.name]]
        if missing:
            raise DatasetError(f"Missing frame {folder / missing[0]} (listed in {info.name})")
        out.append((pid, camid - 1, [str(folder / f) for f in frames]))
    return out


def _pick(paths: list[str], n: int | None) -> list[str]:
    if n is None or n >= len(paths):
        return paths
    idx = np.linspace(0, len(paths) - 1, n).round().astype(int)
    return [paths[i] for i in idx]


def _build(base: Path, name: str, train_frames: int | None) -> Split:
    info = base / "info"
    if not info.is_dir():
        raise DatasetError(f"Missing folder {info}. Expected layout: {LAYOUT}")
    train_tracks = _tracklets(
        _names(info / "train_name.txt"),
        _load_matrix(info / "tracks_train_info.mat", "track_train_info"),
        info / "tracks_train_info.mat",
        base / "bbox_train",
    )
    test_tracks = _tracklets(
        _names(info / "test_name.txt"),
        _load_matrix(info / "tracks_test_info.mat", "track_test_info"),
        info / "tracks_test_info.mat",
        base / "bbox_test",
    )
    query_idx = _load_matrix(info / "query_IDX.mat", "query_IDX").ravel() - 1
    if query_idx.size == 0 or query_idx.min() < 0 or query_idx.max() >= len(test_tracks):
        raise DatasetError(
            f"{info / 'query_IDX.mat'}: query_IDX must list rows 1..{len(test_tracks)}"
        )
    train = [
        Sample(path, pid, camid, {"tracklet": t})
        for t, (pid, camid, paths) in enumerate(train_tracks)
        if pid > 0
        for path in _pick(paths, train_frames)
    ]
    if not train:
        raise DatasetError(f"{info / 'tracks_train_info.mat'} lists no training tracklet")

    def frames(rows) -> list[Sample]:
        return [
            Sample(path, test_tracks[t][0], test_tracks[t][1], {"tracklet": int(t)})
            for t in rows
            for path in test_tracks[t][2]
        ]

    return Split(name, train, frames(query_idx), frames(range(len(test_tracks))))


def read_mars(
    root: str | os.PathLike | None,
    *,
    train_frames: int | None = None,
    name: str = "mars",
    cache: bool = True,
) -> Split:
    """Read MARS (see the module docstring for the layout, samples and protocol).

    Args:
        root: the MARS folder (or a parent holding a single one).
        train_frames: frames kept per training tracklet, evenly spaced (``None``: all).
        name: the :attr:`Split.name`.
        cache: use and write the parsed-index cache (keyed by ``info/`` and every
            identity folder).

    Returns:
        A :class:`~reidcore.data.Split` of frames with ``extras["tracklet"]``.

    Raises:
        DatasetError: ``root`` is ``None`` or missing; a folder, info file, matrix or frame
            is missing; a track row is out of range or holds frames of another identity or
            camera. The message names the file and the expected layout.
    """
    if train_frames is not None:
        try:
            train_frames = int(train_frames)
        except (TypeError, ValueError):
            train_frames = 0
        if train_frames < 1:
            raise DatasetError("mars: train_frames must be a positive int or None")
    base = find_mars_root(require_root(root, "mars", LAYOUT))

    def key_paths() -> list[Path]:
        paths = [base / "info" / f for f in INFO_FILES]
        for part in ("bbox_train", "bbox_test"):
            folder = base / part
            paths.append(folder)
            if folder.is_dir():
                paths += [folder / d for d in sorted(os.listdir(folder))]
        return paths

    return cached_split(
        "mars",
        base,
        key_paths,
        lambda: _build(base, name, train_frames),
        options={"name": name, "train_frames": train_frames},
        cache=cache,
    )
