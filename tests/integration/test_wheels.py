"""Built wheels (not editable) installed into a fresh virtualenv, beside a third-party plugin.

Builds the wheels of reidcore, every first-party plugin and the example plugin of
docs/example-plugin with ``uv build``, installs them into a new uv virtualenv, and checks
what a user sees: ``python -m reidcore plugins``, one epoch of the example recipe, and the
example plugin's own tests (which use reidcore.testing's fixtures).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DISTS = [".", "plugins/reid_datasets", "plugins/reid_trinet", "plugins/reid_pse",
         "plugins/reid_dcnn", "plugins/reid_san", "plugins/reid_bot", "docs/example-plugin"]
UV = shutil.which("uv") or str(Path(sys.executable).parent / "uv")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(UV).exists(), reason="uv is not installed (pip install uv)"),
]


def sh(*cmd, cwd=None, timeout=900) -> subprocess.CompletedProcess:
    """Run outside the checkout (``python -c`` would import reidcore from the cwd)."""
    res = subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                         cwd=cwd or tempfile.gettempdir(),
                         timeout=timeout, env={**os.environ, "REIDCORE_STRICT_PLUGINS": "1"})
    assert res.returncode == 0, f"{cmd} failed:\n{res.stdout}\n{res.stderr}"
    return res


# what a build leaves in its project folder, and what a copy of the sources leaves out
BUILD_LEFTOVERS = ("build", "dist", "*.egg-info")
_SKIP = shutil.ignore_patterns(*BUILD_LEFTOVERS, "__pycache__", ".nox", ".git", ".venv",
                               ".pytest_cache", ".ruff_cache", "experiments")
_ROOT_ONLY = {"plugins", "docs", "tests", "benchmarks"}  # not part of the reidcore wheel


def leftovers() -> set[Path]:
    """Build outputs in the source tree's project folders (build/, dist/, *.egg-info)."""
    return {p for path in DISTS for pattern in BUILD_LEFTOVERS for p in (ROOT / path).glob(pattern)}


def build_wheel(project: Path, out_dir: Path, scratch: Path) -> None:
    """``uv build --wheel`` of a copy of ``project``: setuptools writes build/ and
    PKG.egg-info next to the pyproject.toml it builds, so never build in the checkout."""

    def skip(folder: str, names: list[str]) -> set[str]:
        top = {n for n in names if n in _ROOT_ONLY} if Path(folder) == ROOT else set()
        return set(_SKIP(folder, names)) | top

    copy = scratch / (project.name if project != ROOT else "reidcore-src")
    shutil.copytree(project, copy, ignore=skip)
    sh(UV, "build", "--wheel", "--out-dir", out_dir, copy)


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheels")
    dist = tmp / "dist"
    before = leftovers()
    for path in DISTS:
        build_wheel(ROOT / path, dist, tmp / "src")
    # issue 13: the tests leave no build/ or egg-info behind in the source tree
    assert leftovers() <= before, sorted(map(str, leftovers() - before))
    wheels = sorted(dist.glob("*.whl"))
    names = {w.name.split("-")[0] for w in wheels}
    assert names == {"reidcore", "reid_datasets", "reid_trinet", "reid_pse", "reid_dcnn",
                     "reid_san", "reid_bot", "reid_example"}, names
    sh(UV, "venv", "--python", sys.executable, tmp / "venv")
    python = tmp / "venv" / "bin" / "python"
    sh(UV, "pip", "install", "--python", python, *wheels, "pytest")
    return python


def test_installed_wheels_are_not_editable_and_list_every_plugin(venv_python):
    res = sh(venv_python, "-c", "import reidcore, reid_trinet; print(reidcore.__file__)")
    assert "site-packages" in res.stdout and str(ROOT) not in res.stdout
    out = sh(venv_python, "-m", "reidcore", "plugins").stdout
    for plugin in ("reidcore", "datasets", "trinet", "example"):
        assert any(line.startswith(plugin + " ") for line in out.splitlines()), out
    assert "reid-example" in out and "recipes: example" in out and "models: example-net" in out


def test_example_plugin_trains_one_epoch(venv_python, tmp_path):
    # example-colours: 6 training identities × 2 cameras × 3 images = 36 images;
    # P×K = 4×3 = 12 images per batch, so one epoch is 3 iterations.
    exp = tmp_path / "exp"
    sh(venv_python, "-m", "reidcore", "run", "example", "--data", tmp_path / "colours",
       "--iterations", "3", "--workers", "0", "--experiment", exp)
    report = json.loads((exp / "report.json").read_text())
    assert report["recipe"] == "example" and report["train"]["iteration"] == 3
    assert 0.0 <= report["mAP"] <= 1.0


def test_example_plugin_own_tests_pass(venv_python):
    tests = ROOT / "docs" / "example-plugin" / "tests"
    sh(venv_python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", tests, tests)
