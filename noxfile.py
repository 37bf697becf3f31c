"""Every way to install, test, lint and demo reidcore (uv-backed virtualenvs).

    python3 -m pip install "nox[uv]"
    nox -s tests      # core + every plugin installed editable, all test suites
    nox -s lint       # ruff
    nox -s demo       # pse on the embedded synthetic dataset, prints CMC/mAP (+ ECN)
    nox -s gpu        # the CUDA tests (AMP, channels_last, compile, DDP on CUDA); needs a GPU
    nox -s build      # wheels of reidcore and every plugin into dist/
"""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

PLUGINS = [
    "plugins/reid_datasets",
    "plugins/reid_trinet",
    "plugins/reid_pse",
    "plugins/reid_dcnn",
    "plugins/reid_san",
    "plugins/reid_bot",
]


def install_all(session: nox.Session) -> None:
    """The core (with dev extras) and every plugin, editable from the local folders."""
    args = ["-e", ".[dev]"]
    for plugin in PLUGINS:
        args += ["-e", plugin]
    session.install(*args)


@nox.session
def tests(session: nox.Session) -> None:
    """Core and plugin test suites; a plugin that fails to load is an error here."""
    install_all(session)
    session.env["REIDCORE_STRICT_PLUGINS"] = "1"
    session.env.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 2))
    session.run("pytest", "tests", *[f"{p}/tests" for p in PLUGINS], *session.posargs)


@nox.session
def gpu(session: nox.Session) -> None:
    """The CUDA suite tests/gpu (AMP, channels_last, torch.compile, 1-process DDP on NCCL).

    Every test is skipped, with the reason, where CUDA is not available.
    """
    install_all(session)
    session.run("pytest", "tests/gpu", "-m", "gpu", "-ra", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the core, the plugins, tests and benchmarks."""
    session.install("ruff>=0.4")
    session.run("ruff", "check", ".")


@nox.session
def build(session: nox.Session) -> None:
    """Wheels of every distribution (core and plugins) into dist/."""
    session.install("uv")
    for path in [".", *PLUGINS]:
        session.run("uv", "build", "--wheel", "--out-dir", "dist", path)


@nox.session
def demo(session: nox.Session) -> None:
    """PSE (pose maps + views, staged) on the embedded synthetic dataset, CMC/mAP with and
    without ECN re-ranking and the view predictor's held-out accuracy, about 7 min on 2 cores."""
    install_all(session)
    session.run(
        "python", "-m", "reidcore", "run", "pse", "--dataset", "synthetic-pose-maps",
        "--backbone", "resnet18", "--pretrained", "none", "--height", "96", "--width", "48",
        "--batch-p", "16", "--batch-k", "4", "--view-iterations", "60",
        "--new-layers-iterations", "60", "--iterations", "300", "--decay-start-iteration", "150",
        "--lr", "1e-3", "--cache-images", "--workers", "0", "--rerank", "ecn",
        "--checkpoint-every", "200", "--log-every", "20", "--eval-untrained", "--no-progress",
        "--experiment", f"experiments/demo-{os.getpid()}",
        *session.posargs,
    )
