"""Hook implementations of ``reid-datasets`` (entry point ``reidcore: datasets``).

Imports nothing heavy: readers are named as ``"module:attr"`` strings that the
core imports on first use.
"""

from __future__ import annotations

from reidcore.hookspecs import hookimpl


@hookimpl
def reid_datasets():
    return {
        "market1501": "reid_datasets.market1501:read_market1501",
        "duke": "reid_datasets.duke:read_duke",
        "cuhk03": "reid_datasets.cuhk03:read_cuhk03",
        "cuhk03-labeled": "reid_datasets.cuhk03:read_cuhk03_labeled",
        "cuhk03-detected": "reid_datasets.cuhk03:read_cuhk03_detected",
        "cuhk03-classic-labeled": "reid_datasets.cuhk03:read_cuhk03_classic_labeled",
        "cuhk03-classic-detected": "reid_datasets.cuhk03:read_cuhk03_classic_detected",
        "mars": "reid_datasets.mars:read_mars",
        "msmt17": "reid_datasets.msmt17:read_msmt17",
        "msmt17-trainval": "reid_datasets.msmt17:read_msmt17_trainval",
        "combined": "reid_datasets.combined:read_combined",
        "csv": "reid_datasets.csv_reader:read_csv",
        "folder": "reid_datasets.folder:read_folder",
        "synthetic": "reid_datasets.synthetic:read_synthetic",
    }
