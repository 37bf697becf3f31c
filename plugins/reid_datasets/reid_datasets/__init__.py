"""reidcore plugin ``reid-datasets``: dataset readers and the embedded synthetic dataset.

Readers (registered through :mod:`reid_datasets.plugin`, imported lazily by the core):

- ``market1501`` -- :func:`reid_datasets.market1501.read_market1501`
- ``csv`` -- :func:`reid_datasets.csv_reader.read_csv`
- ``folder`` -- :func:`reid_datasets.folder.read_folder`
- ``synthetic`` -- :func:`reid_datasets.synthetic.read_synthetic`

This module imports nothing heavy.
"""

__version__ = "0.1.0"
