"""RoBERTa and XLM-RoBERTa behaviour beyond the shared table (tests/parity/test_families.py): positions
counted from ``pad_token_id + 1`` with padding keeping ``pad_token_id``, and single-segment checkpoints."""

from __future__ import annotations

import pytest
import torch
from transformers.models.roberta.modeling_roberta import RobertaEmbeddings

import headway
from headway.models.roberta import position_ids_from_input_ids
from tests.parity.common import compare_saved_model
from tests.parity.test_families import family


@pytest.mark.parametrize("name", ["Roberta", "XLMRoberta"])
def test_single_segment_checkpoint_without_token_types_or_mask(name, tmp_path):
    """roberta-base's shape: type_vocab_size 1, no token_type_ids; padding still sets positions."""
    row = family(name)
    torch.manual_seed(0)
    ref = row.ref_class("ForSequenceClassification")(row.config(type_vocab_size=1))
    batch = row.batch()
    del batch["token_type_ids"]
    compare_saved_model(ref, row.our_class("ForSequenceClassification"), tmp_path, batch)
    compare_saved_model(ref, row.our_class("ForSequenceClassification"), tmp_path, {"input_ids": batch["input_ids"]},
                        save=False)


def test_position_ids_helper_matches_reference():
    pad = family("Roberta").pad_token_id
    ids = torch.tensor([[0, 7, 8, 2, 1, 1], [0, 1, 9, 2, 1, 1]])  # an inner pad token too
    torch.testing.assert_close(position_ids_from_input_ids(ids, pad),
                               RobertaEmbeddings.create_position_ids_from_input_ids(ids, pad), rtol=0, atol=0)


def test_too_long_input_raises_clearly():
    config = family("Roberta").config()  # 64 positions, the first two taken by padding_idx and below
    model = headway.RobertaModel(headway.RobertaConfig(**config.to_dict()))
    ids = torch.full((1, 63), 7)  # positions 2..64: one past the 64-row table
    with pytest.raises(ValueError, match="maximum of 62 tokens"):
        model(ids)
    model(ids[:, :62])  # the longest input that fits
