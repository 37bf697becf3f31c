"""The core's own registrations, made through the same hooks as any plugin."""

from __future__ import annotations

from reidcore.hookspecs import hookimpl


@hookimpl
def reid_backbones():
    return {
        "resnet18": "reidcore.backbones.torchvision_backbones:resnet18",
        "resnet50": "reidcore.backbones.torchvision_backbones:resnet50",
        "mobilenet_v2": "reidcore.backbones.torchvision_backbones:mobilenet_v2",
    }


@hookimpl
def reid_losses():
    return {"cross_entropy": "reidcore.losses:CrossEntropyLoss"}


@hookimpl
def reid_excluders():
    return {
        name: f"reidcore.evaluation.protocols:exclude_{name}"
        for name in ("market1501", "diagonal", "cuhk03", "none")
    }


@hookimpl
def reid_commands():
    return {
        "visualize": "reidcore.commands.visualize:main",
        "export": "reidcore.commands.export:main",
        "search": "reidcore.commands.search:main",
    }


@hookimpl
def reid_rerankers():
    return {"k-reciprocal": "reidcore.evaluation.rerank_kreciprocal:k_reciprocal_rerank"}
