"""Hook implementations only: names → lazy "module:attr" targets, nothing heavy imported."""

from __future__ import annotations

from reidcore.hookspecs import hookimpl


@hookimpl
def reid_models():
    return {"example-net": "reid_example.model:ExampleNet"}


@hookimpl
def reid_losses():
    return {"contrastive": "reid_example.loss:ContrastiveLoss"}


@hookimpl
def reid_datasets():
    return {"example-colours": "reid_example.dataset:read_colours"}


@hookimpl
def reid_recipes():
    return {"example": "reid_example.recipe:ExampleRecipe"}
