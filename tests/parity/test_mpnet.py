"""MPNet behaviour beyond the shared table (tests/parity/test_families.py): relative-position buckets far
from the query, explicit position ids, the length limit, the unused pooler reported like the reference,
and the sentence-transformers checkpoint layout (all-mpnet-base-v2)."""

from __future__ import annotations

import json
import logging

import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file

import headway
from tests.parity.common import assert_outputs_close, compare_saved_model
from tests.parity.test_families import family

ROW = family("MPNet")
POOLER = {"pooler.dense.weight", "pooler.dense.bias"}


def ref_model(head: str = "Model", **overrides):
    torch.manual_seed(0)
    return ROW.ref_class(head)(ROW.config(head, **overrides))


def test_long_sequence_uses_far_buckets(tmp_path):
    """Past 128 tokens every offset falls in the last, log-spaced buckets; all must match."""
    compare_saved_model(ref_model(max_position_embeddings=300), headway.MPNetModel, tmp_path,
                        ROW.batch(batch=2, seq_len=200))


def test_explicit_position_ids(tmp_path):
    """Explicit position_ids are used as given."""
    ref = ref_model().eval()
    ref.save_pretrained(tmp_path)
    ours = headway.MPNetModel.from_pretrained(tmp_path)
    inputs = {**ROW.batch(), "position_ids": torch.arange(3, 15).expand(3, 12)}
    with torch.no_grad():
        assert_outputs_close(ref(**inputs), ours(**inputs))


def test_too_long_sequence_is_a_clear_error(tmp_path):
    ref_model(max_position_embeddings=10).save_pretrained(tmp_path)
    ours = headway.MPNetModel.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="maximum of 8 tokens"):
        ours(torch.full((1, 9), 5))
    ours(torch.full((1, 8), 5))  # positions 2..9 fit


def test_unused_pooler_reported_like_reference(tmp_path, caplog):
    """Unlike the BERT and RoBERTa heads, MPNet's report the base checkpoint's pooler, as the reference."""
    ref_model().save_pretrained(tmp_path / "base")
    _, ref_info = transformers.MPNetForSequenceClassification.from_pretrained(
        tmp_path / "base", output_loading_info=True)
    with caplog.at_level(logging.WARNING, logger="headway"):
        _, info = headway.MPNetForSequenceClassification.from_pretrained(tmp_path / "base", output_loading_info=True)
    assert set(info["missing_keys"]) == set(ref_info["missing_keys"]) == {
        "classifier.dense.weight", "classifier.dense.bias", "classifier.out_proj.weight", "classifier.out_proj.bias"}
    assert set(info["unexpected_keys"]) == set(ref_info["unexpected_keys"]) == POOLER

    ref_model("ForMaskedLM").save_pretrained(tmp_path / "mlm")
    _, ref_info = transformers.MPNetModel.from_pretrained(tmp_path / "mlm", output_loading_info=True)
    _, info = headway.MPNetModel.from_pretrained(tmp_path / "mlm", output_loading_info=True)
    assert set(info["missing_keys"]) == set(ref_info["missing_keys"]) == POOLER


def test_sentence_transformers_style_checkpoint(tmp_path, caplog):
    """all-mpnet-base-v2: config names MPNetForMaskedLM, weights are a bare MPNetModel without the ``mpnet.``
    prefix plus an int64 ``embeddings.position_ids`` buffer."""
    ref = ref_model().eval()
    ref.save_pretrained(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    state["embeddings.position_ids"] = torch.arange(64, dtype=torch.int64)[None]
    save_file(state, tmp_path / "model.safetensors", metadata={"format": "pt"})
    config = json.loads((tmp_path / "config.json").read_text())
    config["architectures"] = ["MPNetForMaskedLM"]
    (tmp_path / "config.json").write_text(json.dumps(config))

    with caplog.at_level(logging.WARNING, logger="headway"):
        model = headway.AutoModel.from_pretrained(tmp_path)
    assert type(model) is headway.MPNetModel
    assert caplog.text == ""  # the stored position_ids are dropped silently
    batch = ROW.batch()
    with torch.no_grad():
        assert_outputs_close(ref(**batch), model(**batch))

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="headway"):
        mlm, info = headway.AutoModelForMaskedLM.from_pretrained(tmp_path, output_loading_info=True)
    assert type(mlm) is headway.MPNetForMaskedLM
    head = {"lm_head.dense.weight", "lm_head.dense.bias", "lm_head.layer_norm.weight", "lm_head.layer_norm.bias",
            "lm_head.bias"}
    assert set(info["missing_keys"]) == head
    assert "newly initialized" in caplog.text and "lm_head.dense.weight" in caplog.text
    assert "position_ids" not in caplog.text
    assert mlm.lm_head.decoder.weight is mlm.mpnet.embeddings.word_embeddings.weight
    with torch.no_grad():
        torch.testing.assert_close(mlm.mpnet(**batch).last_hidden_state, ref(**batch).last_hidden_state,
                                   atol=1e-5, rtol=0)
        assert mlm(**batch).logits.isfinite().all()


@pytest.mark.parametrize("checkpointing", [False, True])
def test_relative_attention_bias_is_trained(checkpointing):
    """The shared relative-position table gets a gradient (the table compares its value with the reference's)."""
    model = headway.MPNetForSequenceClassification(headway.MPNetConfig(**ROW.config().to_dict())).train()
    if checkpointing:
        model.gradient_checkpointing_enable()
    model(**ROW.batch(), labels=torch.tensor([0, 2, 1])).loss.backward()
    assert model.mpnet.encoder.relative_attention_bias.weight.grad.abs().sum() > 0
