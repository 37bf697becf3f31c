"""A toy dataset: each identity is a colour; images are written on first use (no download)."""

from __future__ import annotations

from pathlib import Path

from reidcore.data.records import Split
from reidcore.errors import DatasetError
from reidcore.testing import read_tiny_market, write_tiny_market


def read_colours(root: Path | None, num_ids: int = 12, seed: int = 0) -> Split:
    """Read (and, if ``root`` is empty or missing, first write) the toy colour dataset.

    Layout: Market-1501 style (``bounding_box_train/``, ``query/``, ``bounding_box_test/``),
    ``num_ids`` identities, half for training, 2 cameras, 3 images per camera, 32×16 pixels.

    The keyword parameters after ``root`` are the reader's options: ``--dataset-option
    num_ids=10`` (repeatable; the value is converted to the default's type, an unknown key
    is an error) and ``python -m reidcore list datasets`` shows them. They shape a folder
    that is written here; an existing folder is read as it is.

    Raises:
        DatasetError: ``root`` was not given (pass ``--data DIR``).
    """
    if root is None:
        raise DatasetError("example-colours needs a folder: pass --data DIR (it is created)")
    if not (root / "bounding_box_train").is_dir():
        write_tiny_market(root, num_ids=num_ids, seed=seed)
    return read_tiny_market(root, name="example-colours")


#: the evaluation protocol (a registered excluder) ``run`` uses for this dataset unless
#: ``--excluder`` is given: the Market-1501 one (same identity and camera is junk)
read_colours.reid_protocol = "market1501"
