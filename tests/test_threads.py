"""reidcore.threads: the OpenMP wait policy is set on import (before torch loads libgomp)
unless the environment sets it; torch and numba thread counts from one call."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from reidcore.threads import set_threads, thread_settings

CODE = ("import os, sys, reidcore; from reidcore.threads import thread_settings; "
        "s = thread_settings(); print(os.environ['OMP_WAIT_POLICY'], "
        "s['torch_imported_before_reidcore'])")


@pytest.mark.parametrize(("env", "expected"), [(None, "PASSIVE True"), ("ACTIVE", "ACTIVE True")])
def test_wait_policy_is_set_on_import_unless_given(env, expected):
    environ = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if env is not None:
        environ["OMP_WAIT_POLICY"] = env
    # torch first, then reidcore: reported, so that a caller can tell the policy came late
    out = subprocess.run([sys.executable, "-c", "import torch; " + CODE], env=environ,
                         capture_output=True, text=True, check=True).stdout.split()
    assert " ".join(out) == expected
    out = subprocess.run([sys.executable, "-c", CODE], env=environ, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == [expected.split()[0], "False"]


def test_set_threads_sets_torch_and_numba():
    import numba
    import torch

    before = (torch.get_num_threads(), numba.get_num_threads())
    try:
        assert set_threads(1) == 1
        s = thread_settings()
        assert s["torch_threads"] == 1 and s["numba_threads"] == 1
    finally:
        torch.set_num_threads(before[0])
        numba.set_num_threads(before[1])
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match="positive integer"):
            set_threads(bad)


def test_numba_kernels_leave_torch_threads_alone():
    """Before: numba's first parallel kernel started its OpenMP pool, which set the OpenMP
    thread count torch reads to numba's (2 here): a run with OMP_NUM_THREADS=1 trained on 1
    thread before the first evaluation and on 2 after it (a second run in the same process
    took other float paths, so two identical runs ended with different weights)."""
    code = ("import numpy as np, torch; from reidcore.evaluation import evaluate; "
            "before = torch.get_num_threads(); d = np.random.rand(20, 50).astype('float32'); "
            "evaluate(d, np.arange(20) % 5, np.arange(50) % 5, np.zeros(20, int), "
            "np.ones(50, int)); print(before, torch.get_num_threads())")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["1", "1"]
