"""RAP reader: fixture annotation files mirroring RAP v1 and v2 (MATLAB v5 and v7.3)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from reid_pse import rap
from reid_pse.rap import RAP2_VIEWPOINT_COLUMN, load_annotation, parse_annotation, read_rap
from reid_pse.views import view_labels

from reidcore import registry
from reidcore.errors import DatasetError


@pytest.fixture(autouse=True)
def _index_cache(tmp_path_factory, monkeypatch):
    """Parsed-index caches go into a temporary $REIDCORE_CACHE, never ~/.cache."""
    monkeypatch.setenv("REIDCORE_CACHE", str(tmp_path_factory.mktemp("reidcore-cache")))


# ---------------------------------------------------------------- fixtures

V1_FACE_COLUMNS = (51, 52, 53, 54)  # faceFront, faceBack, faceLeft, faceRight in RAP v1
#: (image name, RAP viewpoints set) per fixture image; two images have no single viewpoint.
IMAGES = [
    ("CAM01_2014-02-15_20140215161032-20140215162620_tarid0_frame218_line1.png", ["front"]),
    ("CAM01_2014-02-15_20140215161032-20140215162620_tarid0_frame240_line1.png", ["back"]),
    ("CAM02_2014-02-17_20140217101540-20140217102128_tarid87_frame4213_line1.png", ["left"]),
    ("CAM12_2014-03-05_20140305110334-20140305111754_tarid910_frame6704_line1.png", ["right"]),
    ("CAM25_2014-03-12_20140312171259-20140312171839_tarid176_frame1596_line1.png", ["front"]),
    ("CAM25_2014-03-12_20140312171259-20140312171839_tarid176_frame1600_line1.png", []),
    (
        "CAM31_2014-03-02_20140302144041-20140302144525_tarid252_frame2836_line1.png",
        ["front", "left"],
    ),
    ("CAM31_2014-03-02_20140302144041-20140302144525_tarid252_frame2900_line1.png", ["back"]),
]
ORDER = ("front", "back", "left", "right")
PIDS = [5, 5, 7, -1, 9, 9, 11, 11]  # v2 person_identity
#: Partitions, 1-based rows: (train, test); v2 splits train further into train/val.
PARTITIONS = [([1, 2, 3, 4, 5, 6], [7, 8]), ([3, 4, 5, 6, 7, 8], [1, 2])]


def v1_annotation() -> dict:
    """A RAP v1 ``RAP_annotation`` struct (fields in the official order), as Python values:
    dicts are structs, lists are (n, 1) cells, arrays are numeric matrices."""
    names = [f"attr{i}" for i in range(92)]
    for col, view in zip(
        V1_FACE_COLUMNS, ("faceFront", "faceBack", "faceLeft", "faceRight"), strict=True
    ):
        names[col] = view
    names[:3] = ["Female", "AgeLess16", "Age17-30"]
    label = np.zeros((len(IMAGES), 92))
    label[:, 0] = 1  # an unrelated attribute
    for row, (_, views) in enumerate(IMAGES):
        for v in views:
            label[row, V1_FACE_COLUMNS[ORDER.index(v)]] = 1
    return {
        "partion": [
            {"trainindex": np.array([train], float), "testindex": np.array([test], float)}
            for train, test in PARTITIONS
        ],
        "label": label,
        "attribute_chinese": list(names),
        "attribute_eng": names,
        "position": np.zeros((len(IMAGES), 16)),
        "imagesname": [name for name, _ in IMAGES],
        "attribute_exp": list(names),
    }


def v2_annotation(viewpoint_name: str = "unnamed-112", column: int = RAP2_VIEWPOINT_COLUMN) -> dict:
    """A RAP v2 struct: one categorical viewpoint column (1..4, 0 = none), person ids."""
    names = [f"attr{i}" for i in range(152)]
    names[column] = viewpoint_name
    data = np.zeros((len(IMAGES), 152))
    for row, (_, views) in enumerate(IMAGES):
        data[row, column] = ORDER.index(views[0]) + 1 if len(views) == 1 else 0
    return {
        "name": [name for name, _ in IMAGES],
        "data": data,
        "attribute": names,
        "selected_attribute": np.arange(1, 55, dtype=float)[None, :],
        "partition_attribute": [
            {
                "train_index": np.array([train[:-1]], float),
                "val_index": np.array([train[-1:]], float),
                "test_index": np.array([test], float),
            }
            for train, test in PARTITIONS
        ],
        "person_identity": np.array(PIDS, float)[:, None],
        "partition_reid": {
            "train_identity": np.array([[5.0, 7.0]]),
            "test_identity": np.array([[9.0, 11.0]]),
        },
    }


def _to_savemat(value):
    if isinstance(value, dict):
        return {k: _to_savemat(v) for k, v in value.items()}
    if isinstance(value, list):
        cell = np.empty((len(value), 1), dtype=object)
        for i, item in enumerate(value):
            cell[i, 0] = _to_savemat(item)
        return cell
    return value


def write_v5(path: Path, struct: dict) -> None:
    from scipy.io import savemat

    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(path, {"RAP_annotation": _to_savemat(struct)})


def write_v73(path: Path, struct: dict) -> None:
    """The struct in MATLAB's v7.3 (HDF5) layout: structs are groups, cells datasets of
    object references into ``#refs#``, chars uint16 columns, matrices transposed."""
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    counter = itertools.count()
    with h5py.File(path, "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")

        def put(value, parent, key):
            if isinstance(value, dict):
                obj = parent.create_group(key)
                for k, v in value.items():
                    put(v, obj, k)
                cls = "struct"
            elif isinstance(value, str):
                obj = parent.create_dataset(key, data=np.array([[ord(c)] for c in value], "u2"))
                cls = "char"
            elif isinstance(value, list):  # an (n, 1) cell is an (1, n) dataset in HDF5
                items = [put(v, refs, f"r{next(counter)}") for v in value]
                data = np.array([[item.ref for item in items]], dtype=h5py.ref_dtype)
                obj = parent.create_dataset(key, data=data)
                cls = "cell"
            else:
                obj = parent.create_dataset(key, data=np.atleast_2d(np.asarray(value, float)).T)
                cls = "double"
            obj.attrs["MATLAB_class"] = np.bytes_(cls)
            return obj

        put(struct, f, "RAP_annotation")
    with open(path, "r+b") as fh:
        fh.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64".ljust(116, b" "))


def build_rap(root: Path, struct: dict, *, v73: bool = False, images: bool = True) -> Path:
    (write_v73 if v73 else write_v5)(root / "RAP_annotation" / "RAP_annotation.mat", struct)
    if images:
        (root / "RAP_dataset").mkdir(parents=True, exist_ok=True)
        for name, _ in IMAGES:
            Image.new("RGB", (4, 8), (10, 20, 30)).save(root / "RAP_dataset" / name)
    return root


def _rows(samples):
    return [
        (Path(s.path).name, s.pid, s.camid, s.extras["view"], s.extras["rap_view"]) for s in samples
    ]


def _name(i: int) -> str:
    return IMAGES[i - 1][0]


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("v73", [False, True], ids=["v5", "v7.3"])
def test_v1_split_views_and_cameras(tmp_path, v73):
    root = build_rap(tmp_path, v1_annotation(), v73=v73)
    split = read_rap(root)
    assert split.name == "rap" and split.query == ()
    assert _rows(split.train) == [
        (_name(1), -1, 0, "front", "faceFront"),
        (_name(2), -1, 0, "back", "faceBack"),
        (_name(3), -1, 1, "side", "faceLeft"),
        (_name(4), -1, 11, "side", "faceRight"),
        (_name(5), -1, 24, "front", "faceFront"),
    ]  # image 6 has no viewpoint
    assert _rows(split.gallery) == [(_name(8), -1, 30, "back", "faceBack")]  # 7 has two
    assert all(Path(s.path).parent == root / "RAP_dataset" for s in split.train)
    assert view_labels(split.train).tolist() == [0, 1, 2, 2, 0]
    other = read_rap(root, split_id=1)
    assert [Path(s.path).name for s in other.train] == [_name(i) for i in (3, 4, 5, 8)]
    assert [Path(s.path).name for s in other.gallery] == [_name(1), _name(2)]
    everything = read_rap(root, all_images=True)
    assert len(everything.train) == 6 and everything.gallery == ()


def test_v5_and_v73_files_parse_alike(tmp_path):
    write_v5(tmp_path / "a.mat", v1_annotation())
    write_v73(tmp_path / "b.mat", v1_annotation())
    a = parse_annotation(load_annotation(tmp_path / "a.mat"), tmp_path / "a.mat")
    b = parse_annotation(load_annotation(tmp_path / "b.mat"), tmp_path / "b.mat")
    assert a.version == b.version == 1 and a.names == b.names
    assert np.array_equal(a.rap_views, b.rap_views)
    assert a.rap_views.tolist() == [0, 1, 2, 3, 0, -1, -1, 1]
    for (tr_a, te_a), (tr_b, te_b) in zip(a.splits, b.splits, strict=True):
        assert np.array_equal(tr_a, tr_b) and np.array_equal(te_a, te_b)
    assert a.splits[0][0].tolist() == [0, 1, 2, 3, 4, 5]  # 0-based


@pytest.mark.parametrize("v73", [False, True], ids=["v5", "v7.3"])
def test_v2_person_identity_trainval_and_viewpoint_column(tmp_path, v73):
    root = build_rap(tmp_path, v2_annotation(), v73=v73)
    split = read_rap(root)
    assert _rows(split.train) == [
        (_name(1), 5, 0, "front", "faceFront"),
        (_name(2), 5, 0, "back", "faceBack"),
        (_name(3), 7, 1, "side", "faceLeft"),
        (_name(4), -1, 11, "side", "faceRight"),
        (_name(5), 9, 24, "front", "faceFront"),  # 6 (the val image) has no viewpoint
    ]
    assert _rows(split.gallery) == [(_name(8), 11, 30, "back", "faceBack")]


def test_v2_viewpoint_found_by_name(tmp_path):
    ann = v2_annotation(viewpoint_name="viewpoint", column=120)
    parsed = parse_annotation(ann, tmp_path / "x.mat")
    assert parsed.version == 2
    assert parsed.rap_views.tolist() == [0, 1, 2, 3, 0, -1, -1, 1]
    assert parsed.pids.tolist() == PIDS


def test_registered_and_cached(tmp_path):
    root = build_rap(tmp_path, v1_annotation())
    assert "rap" in registry.registry("dataset").names()
    first = registry.load_dataset("rap", root)
    again = registry.load_dataset("rap", root)  # through the parsed-index cache
    assert _rows(first.train) == _rows(again.train) and _rows(first.gallery) == _rows(again.gallery)
    assert read_rap(root, split_id="1").train == read_rap(root, split_id=1).train  # CLI strings


def test_annotation_at_the_root_is_accepted(tmp_path):
    write_v5(tmp_path / "RAP_annotation.mat", v1_annotation())
    build_rap(tmp_path / "unused", v1_annotation())
    (tmp_path / "unused" / "RAP_dataset").rename(tmp_path / "RAP_dataset")
    assert len(read_rap(tmp_path, cache=False).train) == 5


# ---------------------------------------------------------------- errors


def test_missing_root_and_files(tmp_path):
    with pytest.raises(DatasetError, match="needs a data folder"):
        read_rap(None)
    with pytest.raises(DatasetError, match="does not exist"):
        read_rap(tmp_path / "nope")
    with pytest.raises(DatasetError, match=r"RAP_annotation[/\\]RAP_annotation.mat"):
        read_rap(tmp_path)
    build_rap(tmp_path, v1_annotation(), images=False)
    with pytest.raises(DatasetError, match="Missing RAP image folder .*RAP_dataset"):
        read_rap(tmp_path, cache=False)
    (tmp_path / "RAP_dataset").mkdir()
    Image.new("RGB", (4, 8)).save(tmp_path / "RAP_dataset" / _name(1))
    with pytest.raises(DatasetError, match=f"7 of the 8 images .* missing .*first: {_name(2)}"):
        read_rap(tmp_path, cache=False)


def test_not_a_mat_file_and_no_struct(tmp_path):
    bad = tmp_path / "RAP_annotation" / "RAP_annotation.mat"
    bad.parent.mkdir()
    bad.write_text("not a MATLAB file")
    with pytest.raises(DatasetError, match="Cannot read .*RAP_annotation.mat"):
        load_annotation(bad)
    from scipy.io import savemat

    savemat(bad, {"something_else": np.zeros(3)})
    with pytest.raises(DatasetError, match="holds no 'RAP_annotation' struct .*something_else"):
        load_annotation(bad)


@pytest.mark.parametrize(
    "field, message",
    [
        ("imagesname", r"lacks the image names \(field 'imagesname' or 'name'\)"),
        ("label", r"lacks the attribute labels \(field 'label' or 'data'\)"),
        ("attribute_eng", "lacks the attribute names"),
        ("partion", "lacks the train/test partition"),
    ],
)
def test_missing_fields_are_named(tmp_path, field, message):
    ann = v1_annotation()
    del ann[field]
    write_v5(tmp_path / "x.mat", ann)
    with pytest.raises(DatasetError, match=message):
        parse_annotation(load_annotation(tmp_path / "x.mat"), tmp_path / "x.mat")


def test_malformed_annotations(tmp_path):
    where = tmp_path / "x.mat"
    ann = v1_annotation()
    ann["partion"][0]["testindex"] = np.array([[7, 9]], float)
    with pytest.raises(DatasetError, match="partition 0 testindex has an index outside 1..8"):
        parse_annotation(ann, where)
    ann = v1_annotation()
    ann["label"] = ann["label"][:5]
    with pytest.raises(DatasetError, match="8 image names but attribute labels of shape"):
        parse_annotation(ann, where)
    ann = v1_annotation()
    ann["attribute_eng"] = [n.replace("face", "x") for n in ann["attribute_eng"]]
    with pytest.raises(DatasetError, match="no view labels found"):
        parse_annotation(ann, where)
    ann = v2_annotation()
    ann["data"][0, RAP2_VIEWPOINT_COLUMN] = 7
    with pytest.raises(DatasetError, match="data column 112.* must hold 1..4"):
        parse_annotation(ann, where)
    ann = v2_annotation()
    ann["person_identity"] = ann["person_identity"][:3]
    with pytest.raises(DatasetError, match="person_identity has 3 entries, 8 images"):
        parse_annotation(ann, where)


def test_split_id_is_checked(tmp_path):
    root = build_rap(tmp_path, v1_annotation())
    with pytest.raises(DatasetError, match=r"split_id must be in 0..1 .*got 2"):
        read_rap(root, split_id=2, cache=False)
    with pytest.raises(DatasetError, match="split_id must be an int"):
        read_rap(root, split_id="first")


def test_module_layout_names_the_files():
    assert "RAP_annotation/RAP_annotation.mat" in rap.LAYOUT and "RAP_dataset/" in rap.LAYOUT
