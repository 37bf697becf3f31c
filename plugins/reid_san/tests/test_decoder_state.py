"""SA-Dec's weights from a checkpoint state (reid_san.decoder_state)."""

from __future__ import annotations

import pytest
import torch
from reid_san.decoder_state import DECODER_PREFIX, decoder_keys

from reidcore.errors import ExperimentError


def test_decoder_keys_strip_the_prefix_and_ignore_other_terms():
    w = torch.ones(2)
    state = {"model": {"decoder.x": torch.zeros(1)},
             "criterion": {f"{DECODER_PREFIX}0.weight": w, "terms.id.weight": torch.zeros(3)}}
    assert decoder_keys(state, "ckpt.pt") == {"0.weight": w}


@pytest.mark.parametrize("state", [{}, {"criterion": None}, {"criterion": {"terms.x": 1}}])
def test_no_decoder_weights_names_the_source(state):
    with pytest.raises(ExperimentError, match=r"exp/ckpt\.pt holds no SA-Dec weights"):
        decoder_keys(state, "exp/ckpt.pt")
