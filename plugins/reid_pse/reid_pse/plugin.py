"""Hook implementations of reid-pse: names mapped to lazily imported targets.

Only strings: listing plugins imports neither torch nor this package's modules.
"""

from __future__ import annotations

from reidcore.hookspecs import hookimpl


@hookimpl
def reid_datasets():
    return {
        "rap": "reid_pse.rap:read_rap",
        "market1501-pose-maps": "reid_pse.readers:read_market1501_pose_maps",
        "duke-pose-maps": "reid_pse.readers:read_duke_pose_maps",
        "csv-pose-maps": "reid_pse.readers:read_csv_pose_maps",
        "folder-pose-maps": "reid_pse.readers:read_folder_pose_maps",
        "synthetic-pose-maps": "reid_pse.readers:read_synthetic_pose_maps",
    }


@hookimpl
def reid_commands():
    return {"pse": "reid_pse.cli:main"}


@hookimpl
def reid_models():
    return {"pse": "reid_pse.model:PSENet"}


@hookimpl
def reid_recipes():
    return {
        "views": "reid_pse.recipe:ViewsRecipe",
        "pose-maps": "reid_pse.recipe:PoseMapsRecipe",
        "pse": "reid_pse.recipe:PSERecipe",
    }


@hookimpl
def reid_keypoint_estimators():
    return {"keypointrcnn": "reid_pse.keypointrcnn:keypointrcnn"}


@hookimpl
def reid_rerankers():
    return {"ecn": "reid_pse.ecn:ecn_rerank", "ecn-orig": "reid_pse.ecn:ecn_orig_rerank"}
