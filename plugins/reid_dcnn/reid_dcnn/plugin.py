"""Hook implementations of reid-dcnn (lazy targets only)."""

from __future__ import annotations

from reidcore.hookspecs import hookimpl


@hookimpl
def reid_models():
    return {"dcnn": "reid_dcnn.model:DCNN"}


@hookimpl
def reid_losses():
    return {"identification_verification": "reid_dcnn.loss:IdentificationVerificationLoss"}


@hookimpl
def reid_recipes():
    return {"dcnn": "reid_dcnn.recipe:DCNNRecipe"}
