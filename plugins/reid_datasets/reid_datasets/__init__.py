"""reidcore plugin ``reid-datasets``: dataset readers and the embedded synthetic dataset.

Readers (registered through :mod:`reid_datasets.plugin`, imported lazily by the core);
each module's docstring gives the official layout, protocol and sources:

- ``market1501`` -- :func:`reid_datasets.market1501.read_market1501`
- ``duke`` -- :func:`reid_datasets.duke.read_duke` (DukeMTMC-reID)
- ``cuhk03`` (detected), ``cuhk03-labeled``, ``cuhk03-detected`` (new 767/700 protocol),
  ``cuhk03-classic-labeled``, ``cuhk03-classic-detected`` (20 classic splits,
  ``split_id=``) -- :func:`reid_datasets.cuhk03.read_cuhk03`
- ``mars`` -- :func:`reid_datasets.mars.read_mars` (video: frames with
  ``extras["tracklet"]``; pool features per tracklet to evaluate)
- ``msmt17``, ``msmt17-trainval`` -- :func:`reid_datasets.msmt17.read_msmt17`
- ``combined`` -- :func:`reid_datasets.combined.read_combined`
  (``--data "market1501=DIR1,duke=DIR2"``: train on all, evaluate on the first)
- ``csv`` -- :func:`reid_datasets.csv_reader.read_csv`
- ``folder`` -- :func:`reid_datasets.folder.read_folder`
- ``synthetic`` -- :func:`reid_datasets.synthetic.read_synthetic`

Every reader keeps the dataset's original pids (``Split.train_labels`` relabels training
pids to ``0..n-1``), logs a one-line summary on load, caches its parsed index in
``$REIDCORE_CACHE/index/`` (default ``~/.cache/reidcore``; see
:func:`reid_datasets._common.cached_split`) and raises
:class:`~reidcore.errors.DatasetError` naming the missing folder or file and the
expected layout.

This module imports nothing heavy.
"""

__version__ = "0.1.0"
