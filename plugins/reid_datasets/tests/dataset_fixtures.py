"""Builders of tiny fixtures reproducing each dataset's official layout (file names, list
files, .mat structures). Images are real, decodable 8x4..16x8 PNG/JPEG files so that the
registry-wide test can open them. Each ``build_<name>(root)`` returns the ``--data`` value.

Datasets of other first-party plugins (reid-pse's ``*-pose-maps`` and ``rap``, reid-san's
``pit`` and ``synthetic-textures``) have builders here too, and :data:`EXPECT` says what
differs for the datasets that are not re-ID benchmarks (RAP: view labels, no query; PIT:
image/texture pairs, training only).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


def write_image(path: Path, seed: int = 0, size: tuple[int, int] = (8, 16)) -> Path:
    """A small random RGB image (``size`` = width, height) in the format of the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return path


# ---------------------------------------------------------------- market1501 / duke

MARKET = {
    "bounding_box_train": [
        "0002_c1s1_000451_03.jpg",
        "0002_c2s1_000551_01.jpg",
        "0007_c3s1_000101_02.jpg",
        "0007_c1s1_000201_01.jpg",
        "0000_c1s1_000001_00.jpg",
        "-1_c1s1_000002_00.jpg",
    ],
    "query": ["0001_c1s1_001051_00.jpg", "0003_c4s1_000001_00.jpg"],
    "bounding_box_test": [
        "0001_c2s1_000151_01.jpg",
        "0003_c6s1_000002_00.jpg",
        "0000_c1s1_000003_00.jpg",
        "-1_c5s1_000004_00.jpg",
    ],
}

DUKE = {
    "bounding_box_train": [
        "0001_c2_f0046182.jpg",
        "0001_c6_f0061238.jpg",
        "0003_c1_f0044158.jpg",
        "0003_c8_f0083251.jpg",
    ],
    "query": ["0005_c2_f0046985.jpg", "0008_c7_f0075218.jpg"],
    "bounding_box_test": [
        "0005_c5_f0051781.jpg",
        "0008_c1_f0044520.jpg",
        "0009_c3_f0023311.jpg",  # a distractor identity: an ordinary id in DukeMTMC-reID
    ],
}


def build_market1501(root: Path) -> Path:
    for folder, names in MARKET.items():
        for i, name in enumerate(names):
            write_image(root / folder / name, i)
    return root


def build_duke(root: Path) -> Path:
    for folder, names in DUKE.items():
        for i, name in enumerate(names):
            write_image(root / folder / name, i)
    return root


# ---------------------------------------------------------------- cuhk03

#: Identities per camera pair in the fixture (the release: 843, 440, 77, 58, 49).
CUHK03_IDS = (3, 2, 1, 1, 1)
#: (variant, pair, identity, image index 1..10) left empty, as in the release.
CUHK03_EMPTY = {("labeled", 1, 2, 9), ("detected", 1, 2, 9), ("detected", 4, 1, 3)}
#: Classic test sets: (pair, identity) 1-based; the release has 20 of 100 identities.
CUHK03_TESTSETS = [[(1, 3), (2, 1)], [(1, 1), (5, 1)]] + [[(3, 1), (4, 1)]] * 18
#: New-protocol test identities (global pids); the others are training identities.
CUHK03_NEW_TEST = {3, 5, 7, 8}
MATLAB_HEADER = (
    b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Mar  6 20:00:00 2017 "
    b"HDF5 schema 1.00 .                     "
)


def cuhk03_image(variant: str, pair: int, ident: int, j: int) -> np.ndarray:
    """The fixture's ``(H, W, 3)`` uint8 image; varying sizes, as the release's crops."""
    seed = [VARIANTS_SEED[variant], pair, ident, j]
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (12 + j, 5 + pair, 3), dtype=np.uint8)


VARIANTS_SEED = {"labeled": 1, "detected": 2}


def write_cuhk03_release(path: Path) -> Path:
    """A tiny ``cuhk-03.mat`` in the official MATLAB v7.3 structure, written with h5py.

    ``labeled``/``detected``: ``(1, 5)`` object references to ``(10, n_ids)`` arrays of
    references to ``(3, W, H)`` uint8 images (MATLAB's ``H x W x 3``, transposed by HDF5's
    row-major view), empty cells as MATLAB writes them (``uint64 [0 0]``, attribute
    ``MATLAB_empty``); ``testsets``: ``(1, 20)`` references to ``(2, n)`` double arrays of
    ``(pair, identity)``. Referenced arrays live in ``#refs#``, behind a 512-byte header.
    """
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")

        def put(data, matlab_class: str, empty: bool = False):
            ds = refs.create_dataset(f"r{len(refs)}", data=data)
            ds.attrs["MATLAB_class"] = np.bytes_(matlab_class)
            if empty:
                ds.attrs["MATLAB_empty"] = np.uint8(1)
            return ds.ref

        for variant in ("labeled", "detected"):
            pairs = []
            for pair, n_ids in enumerate(CUHK03_IDS, start=1):
                cell = np.empty((10, n_ids), dtype=h5py.ref_dtype)
                for ident in range(1, n_ids + 1):
                    for j in range(1, 11):
                        if (variant, pair, ident, j) in CUHK03_EMPTY:
                            cell[j - 1, ident - 1] = put(np.zeros(2, np.uint64), "double", True)
                        else:
                            img = cuhk03_image(variant, pair, ident, j)
                            cell[j - 1, ident - 1] = put(img.T, "uint8")
                pairs.append(put(cell, "cell"))
            ds = f.create_dataset(variant, data=np.array([pairs], dtype=h5py.ref_dtype))
            ds.attrs["MATLAB_class"] = np.bytes_("cell")
        tests = [put(np.array(t, np.float64).T, "double") for t in CUHK03_TESTSETS]
        ds = f.create_dataset("testsets", data=np.array([tests], dtype=h5py.ref_dtype))
        ds.attrs["MATLAB_class"] = np.bytes_("cell")
    with open(path, "r+b") as f:
        f.write(MATLAB_HEADER[:116].ljust(128, b" "))
    return path


def cuhk03_images(variant: str) -> list[tuple[str, int, int]]:
    """``(name, global pid, camid)`` of every non-empty fixture image, in release order."""
    out, offset = [], 0
    for pair, n_ids in enumerate(CUHK03_IDS, start=1):
        for ident in range(1, n_ids + 1):
            for j in range(1, 11):
                if (variant, pair, ident, j) not in CUHK03_EMPTY:
                    view = 1 if j <= 5 else 2
                    out.append((f"{pair}_{ident:03d}_{view}_{j:02d}.png", offset + ident, view - 1))
        offset += n_ids
    return out


def write_cuhk03_protocol(path: Path, variant: str) -> dict[str, list[str]]:
    """A new-protocol split file (MATLAB v5, scipy.io) over the fixture's images.

    Test identities :data:`CUHK03_NEW_TEST`: per identity and camera the first image is
    a query, the others gallery. Returns the image names per part, in index order.
    """
    from scipy.io import savemat

    images = cuhk03_images(variant)
    filelist = np.empty((len(images), 1), dtype=object)
    for i, (name, _, _) in enumerate(images):
        filelist[i, 0] = np.array([name])
    parts: dict[str, list[int]] = {"train": [], "query": [], "gallery": []}
    seen = set()
    for i, (_, pid, camid) in enumerate(images, start=1):
        if pid not in CUHK03_NEW_TEST:
            parts["train"].append(i)
        elif (pid, camid) not in seen:
            seen.add((pid, camid))
            parts["query"].append(i)
        else:
            parts["gallery"].append(i)
    savemat(
        str(path),
        {
            "filelist": filelist,
            "labels": np.array([[p] for _, p, _ in images], np.uint16),
            "camId": np.array([[c + 1] for _, _, c in images], np.uint8),
            **{f"{k}_idx": np.array(v, np.uint16).reshape(-1, 1) for k, v in parts.items()},
        },
    )
    return {k: [images[i - 1][0] for i in v] for k, v in parts.items()}


def build_cuhk03(root: Path) -> Path:
    """The torchreid ``cuhk03/`` folder: release file and both new-protocol split files."""
    write_cuhk03_release(root / "cuhk03_release" / "cuhk-03.mat")
    for variant in ("labeled", "detected"):
        write_cuhk03_protocol(root / f"cuhk03_new_protocol_config_{variant}.mat", variant)
    return root


# ---------------------------------------------------------------- mars

#: Fixture tracklets per part: (identity folder, camera 1..6, tracklet number, frames).
MARS_TRAIN = [("0001", 1, 1, 3), ("0001", 3, 1, 2), ("0003", 2, 1, 4), ("0003", 2, 2, 1)]
MARS_TEST = [
    ("00-1", 1, 1, 2),  # junk
    ("0000", 4, 1, 1),  # distractor
    ("0002", 1, 1, 2),
    ("0002", 5, 1, 3),
    ("0004", 2, 1, 2),
    ("0004", 6, 1, 1),
    ("0004", 6, 2, 2),
]
#: Rows of MARS_TEST that are queries, 1-based (as in query_IDX.mat).
MARS_QUERY = [3, 5]


def mars_frames(tracks) -> tuple[list[str], np.ndarray]:
    """Frame names in tracklet order and the ``(N, 4)`` start, end, pid, camid rows."""
    names, rows = [], []
    for folder, cam, t, n in tracks:
        start = len(names) + 1
        names += [f"{folder}C{cam}T{t:04d}F{f:03d}.jpg" for f in range(1, n + 1)]
        rows.append([start, len(names), -1 if folder == "00-1" else int(folder), cam])
    return names, np.array(rows, np.float64)


def build_mars(root: Path) -> Path:
    """MARS: bbox_train/, bbox_test/ per identity, info/ name lists and .mat matrices."""
    from scipy.io import savemat

    info = root / "info"
    info.mkdir(parents=True, exist_ok=True)
    for part, tracks in (("train", MARS_TRAIN), ("test", MARS_TEST)):
        names, rows = mars_frames(tracks)
        for i, name in enumerate(names):
            write_image(root / f"bbox_{part}" / name[:4] / name, i)
        (info / f"{part}_name.txt").write_text("\n".join(names) + "\n")
        savemat(str(info / f"tracks_{part}_info.mat"), {f"track_{part}_info": rows})
    savemat(str(info / "query_IDX.mat"), {"query_IDX": np.array([MARS_QUERY], np.float64)})
    return root


# ---------------------------------------------------------------- msmt17

MSMT17 = {
    "list_train.txt": [
        "0000/0000_000_01_0303morning_0015_0.jpg 0",
        "0000/0000_001_05_0303morning_0016_0.jpg 0",
        "0001/0001_000_14_0303noon_0100_1.jpg 1",
        "0001/0001_002_03_0303noon_0103_0.jpg 1",
    ],
    "list_val.txt": ["0000/0000_002_07_0303afternoon_0021_0.jpg 0"],
    "list_query.txt": [
        "0000/0000_000_01_0303morning_0035_0.jpg 0",
        "0002/0002_000_15_0113noon_0012_0.jpg 2",
    ],
    "list_gallery.txt": [
        "0000/0000_001_02_0303morning_0036_0.jpg 0",
        "0002/0002_001_10_0113noon_0018_1.jpg 2",
        "0003/0003_000_09_0113morning_0003_0.jpg 3",
    ],
}


def build_msmt17(root: Path) -> Path:
    """MSMT17_V1: train/ and test/ per identity and the four list files."""
    for i, (file, lines) in enumerate(MSMT17.items()):
        folder = "train" if file in ("list_train.txt", "list_val.txt") else "test"
        for j, line in enumerate(lines):
            write_image(root / folder / line.split()[0], 10 * i + j)
        (root / file).write_text("\n".join(lines) + "\n")
    return root


# ---------------------------------------------------------------- csv, folder, synthetic, combined


def build_csv(root: Path) -> Path:
    """triplet-reid CSV lists: ``identity,relative/path.jpg[,camid]``."""
    lists = {
        "train.csv": [
            ("alice", "img/a1.jpg", 0),
            ("alice", "img/a2.jpg", 1),
            ("bob", "img/b1.jpg", 0),
        ],
        "query.csv": [("carol", "img/c1.jpg", 0)],
        "gallery.csv": [("carol", "img/c2.jpg", 1), ("dave", "img/d1.jpg", 2)],
    }
    for i, (file, rows) in enumerate(lists.items()):
        for j, (_, rel, _) in enumerate(rows):
            write_image(root / rel, 10 * i + j)
        (root / file).write_text("".join(f"{p},{r},{c}\n" for p, r, c in rows))
    return root


def build_folder(root: Path) -> Path:
    """Person_reID_baseline's prepare.py layout: ``train/<pid>/*.jpg`` etc."""
    for i, rel in enumerate(
        [
            "train/0002/0002_c1s1_000451_03.jpg",
            "train/0002/0002_c3s1_000551_01.jpg",
            "train/0007/0007_c2s1_000101_02.jpg",
            "query/0001/0001_c2s1_001051_00.jpg",
            "gallery/0001/0001_c4s1_000151_01.jpg",
            "gallery/0000/0000_c6s1_000001_00.jpg",
        ]
    ):
        write_image(root / rel, i)
    return root


SYNTHETIC_KWARGS = dict(
    num_train_ids=2, num_test_ids=2, num_cameras=2, images_per_camera=2, height=32, width=16
)


def build_synthetic(root: Path) -> Path:
    """The synthetic dataset's cache folder (generated by the reader itself)."""
    root.mkdir(parents=True, exist_ok=True)
    return root


def build_combined(root: Path) -> str:
    """``market1501=DIR1,duke=DIR2`` over the Market-1501 and DukeMTMC-reID fixtures."""
    return f"market1501={build_market1501(root / 'market')},duke={build_duke(root / 'duke')}"


# ---------------------------------------------------------------- reid-pse: pose maps, RAP


def write_keypoints_csv(root: Path, seed: int = 0) -> Path:
    """``root/keypoints.csv`` (the reid-pse/reid-san table: ``image,x0..x13,y0..y13``,
    1-based pixels) with random in-image joints for every image file under ``root``."""
    from reid_datasets.keypoints_csv import csv_header

    rng = np.random.default_rng(seed)
    rows = []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".png")):
        with Image.open(path) as img:
            w, h = img.size
        xs, ys = rng.uniform(1, w, 14), rng.uniform(1, h, 14)
        rows.append([path.relative_to(root).as_posix(), *[f"{v:.2f}" for v in (*xs, *ys)]])
    with open(root / "keypoints.csv", "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(csv_header())
        writer.writerows(rows)
    return root


def with_keypoints(build):
    """A builder of the ``<base>-pose-maps`` variant: the base fixture plus keypoints.csv."""

    def build_pose_maps(root: Path) -> Path:
        return write_keypoints_csv(build(root))

    build_pose_maps.__name__ = f"{build.__name__}_pose_maps"
    return build_pose_maps


#: RAP v1 fixture: (image name, RAP viewpoint column 51..54 = front, back, left, right).
RAP_IMAGES = [
    ("CAM01_2014-02-15_20140215161032-20140215162620_tarid0_frame218_line1.png", 51),
    ("CAM01_2014-02-15_20140215161032-20140215162620_tarid0_frame240_line1.png", 52),
    ("CAM02_2014-02-17_20140217101540-20140217102128_tarid87_frame4213_line1.png", 53),
    ("CAM12_2014-03-05_20140305110334-20140305111754_tarid910_frame6704_line1.png", 54),
]


def _cell(values: list) -> np.ndarray:
    cell = np.empty((len(values), 1), dtype=object)
    for i, v in enumerate(values):
        cell[i, 0] = v
    return cell


def build_rap(root: Path) -> Path:
    """RAP v1: ``RAP_annotation/RAP_annotation.mat`` (MATLAB v5) and ``RAP_dataset/``."""
    from scipy.io import savemat

    names = [f"attr{i}" for i in range(92)]
    names[51:55] = ["faceFront", "faceBack", "faceLeft", "faceRight"]
    label = np.zeros((len(RAP_IMAGES), 92))
    for row, (name, column) in enumerate(RAP_IMAGES):
        label[row, column] = 1
        write_image(root / "RAP_dataset" / name, row)
    partition = {"trainindex": np.array([[1.0, 2.0, 3.0]]), "testindex": np.array([[4.0]])}
    struct = {
        "partion": _cell([partition]),
        "label": label,
        "attribute_chinese": _cell(names),
        "attribute_eng": _cell(names),
        "position": np.zeros((len(RAP_IMAGES), 16)),
        "imagesname": _cell([name for name, _ in RAP_IMAGES]),
        "attribute_exp": _cell(names),
    }
    (root / "RAP_annotation").mkdir(parents=True, exist_ok=True)
    savemat(root / "RAP_annotation" / "RAP_annotation.mat", {"RAP_annotation": struct})
    return root


# ---------------------------------------------------------------- reid-san: PIT


def build_pit(root: Path) -> Path:
    """PIT's folder layout: ``images/<stem>.png`` paired with ``textures/<stem>.png``."""
    for i, stem in enumerate(("person_0001", "person_0002", "person_0003")):
        write_image(root / "images" / f"{stem}.png", i, size=(8, 16))
        write_image(root / "textures" / f"{stem}.png", 100 + i, size=(16, 16))
    return root


@dataclass(frozen=True)
class Expect:
    """What the registry-wide test checks of a dataset read from its fixture.

    Attributes:
        parts: the parts that must be non-empty.
        min_train_pid: the lowest pid allowed in ``train`` (MSMT17's pid 0 is a person;
            RAP v1 has no person labels: -1).
        index_cache: the reader writes a parsed-index cache into ``$REIDCORE_CACHE/index/``.
        extras: keys every sample's ``extras`` holds.
    """

    parts: tuple[str, ...] = ("train", "query", "gallery")
    min_train_pid: int = 1
    index_cache: bool = True
    extras: tuple[str, ...] = ()


POSE = Expect(extras=("keypoints", "keypoint_source"))

#: Dataset name -> what differs from ``Expect()``.
EXPECT: dict[str, Expect] = {
    "msmt17": Expect(min_train_pid=0),
    "msmt17-trainval": Expect(min_train_pid=0),
    "synthetic": Expect(index_cache=False, extras=("keypoints", "view")),
    "market1501-pose-maps": POSE,
    "duke-pose-maps": POSE,
    "csv-pose-maps": POSE,
    "folder-pose-maps": POSE,
    "synthetic-pose-maps": Expect(index_cache=False, extras=("keypoints", "view")),
    "rap": Expect(parts=("train", "gallery"), min_train_pid=-1, extras=("view", "rap_view")),
    "pit": Expect(parts=("train",), index_cache=False, extras=("texture",)),
    "synthetic-textures": Expect(index_cache=False, extras=("keypoints", "view", "texture")),
}

#: Registered dataset name -> (fixture builder, reader keyword arguments).
BUILDERS = {
    "market1501": (build_market1501, {}),
    "duke": (build_duke, {}),
    "cuhk03": (build_cuhk03, {}),
    "cuhk03-labeled": (build_cuhk03, {}),
    "cuhk03-detected": (build_cuhk03, {}),
    "cuhk03-classic-labeled": (build_cuhk03, {}),
    "cuhk03-classic-detected": (build_cuhk03, {}),
    "mars": (build_mars, {}),
    "msmt17": (build_msmt17, {}),
    "msmt17-trainval": (build_msmt17, {}),
    "combined": (build_combined, {}),
    "csv": (build_csv, {}),
    "folder": (build_folder, {}),
    "synthetic": (build_synthetic, SYNTHETIC_KWARGS),
    "market1501-pose-maps": (with_keypoints(build_market1501), {}),
    "duke-pose-maps": (with_keypoints(build_duke), {}),
    "csv-pose-maps": (with_keypoints(build_csv), {}),
    "folder-pose-maps": (with_keypoints(build_folder), {}),
    "synthetic-pose-maps": (build_synthetic, SYNTHETIC_KWARGS),
    "rap": (build_rap, {}),
    "pit": (build_pit, {}),
    "synthetic-textures": (build_synthetic, {**SYNTHETIC_KWARGS, "texture_size": 16}),
}
