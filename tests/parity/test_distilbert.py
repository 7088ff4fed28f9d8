"""DistilBERT behaviour beyond the shared table (tests/parity/test_families.py): sinusoidal position
tables, the question-answering head's two labels, and BERT-style config aliases."""

from __future__ import annotations

import pytest
import torch
import transformers

import headway
from tests.parity.common import compare_saved_model
from tests.parity.test_families import family

ROW = family("DistilBert")


def ref_model(head: str, **overrides):
    torch.manual_seed(0)
    return ROW.ref_class(head)(ROW.config(head, **overrides))


def test_sinusoidal_positions(tmp_path):
    """The table is initialised like the reference's and stays trainable; checkpoints load as usual."""
    ref = ref_model("ForSequenceClassification", sinusoidal_pos_embds=True)
    ours = headway.DistilBertForSequenceClassification(headway.DistilBertConfig(**ref.config.to_dict()))
    ref_table = ref.distilbert.embeddings.position_embeddings.weight
    our_table = ours.distilbert.embeddings.position_embeddings.weight
    torch.testing.assert_close(our_table, ref_table, atol=1e-6, rtol=0)
    assert our_table.requires_grad == ref_table.requires_grad
    compare_saved_model(ref, headway.DistilBertForSequenceClassification, tmp_path,
                        ROW.inputs("ForSequenceClassification"))


def test_sinusoidal_positions_initialised_when_missing_from_checkpoint(tmp_path):
    ref = ref_model("Model", sinusoidal_pos_embds=True)
    state = {k: v for k, v in ref.state_dict().items() if "position_embeddings" not in k}
    ref.save_pretrained(tmp_path)  # for config.json; the weights come from ``state``
    ours = headway.DistilBertModel.from_pretrained(tmp_path, state_dict=state)
    torch.testing.assert_close(ours.embeddings.position_embeddings.weight,
                               ref.embeddings.position_embeddings.weight, atol=1e-6, rtol=0)


def test_question_answering_needs_two_labels():
    with pytest.raises(ValueError, match="num_labels should be 2"):
        headway.DistilBertForQuestionAnswering(headway.DistilBertConfig(vocab_size=99, num_labels=3, **ROW.config_kwargs))


def test_config_aliases_like_reference():
    """BERT's field names read and write DistilBERT's own; only the latter are saved."""
    ours, ref = headway.DistilBertConfig(), transformers.DistilBertConfig()
    for alias in ("hidden_size", "num_attention_heads", "num_hidden_layers"):
        assert getattr(ours, alias) == getattr(ref, alias), alias
    aliased = headway.DistilBertConfig(hidden_size=64, num_attention_heads=8, num_hidden_layers=3)
    assert (aliased.dim, aliased.n_heads, aliased.n_layers) == (64, 8, 3)
    aliased.hidden_size = 16
    assert aliased.dim == 16
    assert "hidden_size" not in aliased.to_dict()  # saved under the family's own name only
