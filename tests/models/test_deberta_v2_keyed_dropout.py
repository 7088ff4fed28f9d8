"""DeBERTa-v2's relative-position table is one tensor every example uses: under keyed dropout its mask must be
keyed by the step alone (``Dropout(shared=True)``), never taken for per-example rows. Without that, a table
whose length is a multiple of the batch size got a mask that changed with the batch's size and examples, so
N processes sharing a global batch did not reach one process's weights."""

from __future__ import annotations

import pytest
import torch

import headway
from headway.nn.dropout import DropoutKeys, keyed_dropout


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    config = headway.DebertaV2Config(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        relative_attention=True,
        max_relative_positions=4,
        pos_att_type=["c2p", "p2c"],
        position_biased_input=False,
        hidden_dropout_prob=0.5,
        attention_probs_dropout_prob=0.0,
    )
    return headway.AutoModel.from_config(config).train()


def _table_masks(model: torch.nn.Module, batch: int, first_example: int) -> torch.Tensor:
    """The dropped entries of the position table in the layer's attention, for one keyed forward."""
    seen: list[torch.Tensor] = []
    attention = model.encoder.layer[0].attention.self
    handle = attention.pos_dropout.register_forward_hook(lambda module, args, out: seen.append(out == 0))
    ids = torch.randint(5, 50, (batch, 6), generator=torch.Generator().manual_seed(batch))
    try:
        keys = DropoutKeys(3, 7, list(range(first_example, first_example + batch)), seq_len=6)
        with keyed_dropout(keys):
            model(input_ids=ids)
    finally:
        handle.remove()
    (mask,) = seen
    return mask


def test_position_table_mask_does_not_depend_on_the_batch(model):
    table_rows = 2 * model.config.max_relative_positions  # 8: a multiple of every batch size below
    reference = _table_masks(model, 1, 0)
    assert reference.shape[0] == table_rows and 0 < reference.float().mean() < 1
    for batch, first in ((2, 0), (4, 4), (8, 0), (8, 16)):
        assert torch.equal(_table_masks(model, batch, first), reference), (batch, first)
