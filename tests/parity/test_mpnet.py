"""MPNet parity with transformers: every head, padded batch, losses, hidden states, attentions, loading."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from safetensors.torch import load_file, save_file

import headway
from tests.parity.common import (
    as_multiple_choice,
    assert_outputs_close,
    compare_saved_model,
    labels_for,
    padded_batch,
)

transformers = pytest.importorskip("transformers")

HEADS = ["Model", "ForSequenceClassification", "ForTokenClassification", "ForQuestionAnswering",
         "ForMaskedLM", "ForMultipleChoice"]
VOCAB = 99


def tiny_config(**overrides):
    kwargs = {"vocab_size": VOCAB, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
              "intermediate_size": 37, "max_position_embeddings": 64, "num_labels": 3}
    kwargs.update(overrides)
    return transformers.MPNetConfig(**kwargs)


def batch_for(head: str, config, **kwargs) -> dict[str, torch.Tensor]:
    """A right-padded batch (pad id 1, no token_type_ids) with the labels that make ``head`` compute a loss."""
    batch = padded_batch(config.vocab_size, pairs=False, **kwargs)
    task = head.removeprefix("For")
    if task == "MultipleChoice":
        batch = as_multiple_choice(batch)
    return {**batch, **labels_for(task, batch, config.num_labels, config.vocab_size)}


def head_config(head: str, **overrides):
    return tiny_config(num_labels=2 if head == "ForQuestionAnswering" else 3, **overrides)  # QA: start and end


@pytest.mark.parametrize("head", HEADS)
def test_head_parity(head, tmp_path):
    torch.manual_seed(0)
    config = head_config(head)
    ref = getattr(transformers, "MPNet" + head)(config)
    compared = compare_saved_model(ref, getattr(headway, "MPNet" + head), tmp_path, batch_for(head, config))
    if head != "Model":
        assert "loss" in compared


@pytest.mark.parametrize("problem_type,labels", [
    ("regression", torch.tensor([0.5, -1.0, 2.0])),
    ("multi_label_classification", torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])),
])
def test_sequence_classification_problem_types(problem_type, labels, tmp_path):
    torch.manual_seed(0)
    num_labels = 1 if problem_type == "regression" else 3
    ref = transformers.MPNetForSequenceClassification(tiny_config(num_labels=num_labels, problem_type=problem_type))
    labels = labels[:, None] if num_labels == 1 else labels
    inputs = {**padded_batch(VOCAB, pairs=False), "labels": labels}
    compare_saved_model(ref, headway.MPNetForSequenceClassification, tmp_path, inputs)


def test_long_sequence_uses_far_buckets(tmp_path):
    """Past 128 tokens every offset falls in the last, log-spaced buckets; all must match."""
    torch.manual_seed(0)
    config = tiny_config(max_position_embeddings=300)
    ref = transformers.MPNetModel(config)
    compare_saved_model(ref, headway.MPNetModel, tmp_path, padded_batch(VOCAB, pairs=False, batch=2, seq_len=200))


def test_without_attention_mask_and_with_token_type_ids(tmp_path):
    """No mask: the position bias alone is the SDPA mask. token_type_ids are ignored, as by the reference."""
    torch.manual_seed(0)
    ref = transformers.MPNetModel(tiny_config())
    ids = padded_batch(VOCAB, pairs=False)["input_ids"]
    compare_saved_model(ref, headway.MPNetModel, tmp_path, {"input_ids": ids})
    ours = headway.MPNetModel.from_pretrained(tmp_path)
    with torch.no_grad():
        torch.testing.assert_close(ours(ids, token_type_ids=torch.ones_like(ids)).last_hidden_state,
                                   ours(ids).last_hidden_state, atol=0, rtol=0)


def test_inputs_embeds_and_position_ids(tmp_path):
    """inputs_embeds: sequential positions from padding_idx + 1; explicit position_ids are used as given."""
    torch.manual_seed(0)
    ref = transformers.MPNetModel(tiny_config()).eval()
    ref.save_pretrained(tmp_path)
    ours = headway.MPNetModel.from_pretrained(tmp_path)
    batch = padded_batch(VOCAB, pairs=False)
    embeds = ref.embeddings.word_embeddings(batch["input_ids"]).detach()
    positions = torch.arange(3, 15).expand(3, 12)
    with torch.no_grad():
        for inputs in ({"inputs_embeds": embeds, "attention_mask": batch["attention_mask"]},
                       {**batch, "position_ids": positions}):
            assert_outputs_close(ref(**inputs), ours(**inputs))


def test_too_long_sequence_is_a_clear_error(tmp_path):
    transformers.MPNetModel(tiny_config(max_position_embeddings=10)).save_pretrained(tmp_path)
    ours = headway.MPNetModel.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="maximum of 8 tokens"):
        ours(torch.full((1, 9), 5))
    ours(torch.full((1, 8), 5))  # positions 2..9 fit


def test_base_checkpoint_into_head_model(tmp_path, caplog):
    """The head is newly initialised and named; the unused pooler is reported, like the reference."""
    torch.manual_seed(0)
    transformers.MPNetModel(tiny_config()).save_pretrained(tmp_path)
    _, ref_info = transformers.MPNetForSequenceClassification.from_pretrained(tmp_path, output_loading_info=True)
    with caplog.at_level(logging.WARNING, logger="headway"):
        ours, info = headway.MPNetForSequenceClassification.from_pretrained(tmp_path, output_loading_info=True)
    assert set(info["missing_keys"]) == set(ref_info["missing_keys"]) == {
        "classifier.dense.weight", "classifier.dense.bias", "classifier.out_proj.weight", "classifier.out_proj.bias"}
    assert set(info["unexpected_keys"]) == set(ref_info["unexpected_keys"]) == {"pooler.dense.weight",
                                                                              "pooler.dense.bias"}
    assert "newly initialized" in caplog.text and "classifier.out_proj.weight" in caplog.text
    assert ours(**padded_batch(VOCAB, pairs=False)).logits.isfinite().all()


def test_head_checkpoint_into_bare_model(tmp_path, caplog):
    """A masked-LM checkpoint (``mpnet.`` prefix) into MPNetModel: the encoder equals the reference's."""
    torch.manual_seed(0)
    transformers.MPNetForMaskedLM(tiny_config()).save_pretrained(tmp_path)
    ref, ref_info = transformers.MPNetModel.from_pretrained(tmp_path, output_loading_info=True)
    with caplog.at_level(logging.WARNING, logger="headway"):
        ours, info = headway.MPNetModel.from_pretrained(tmp_path, output_loading_info=True)
    assert set(info["missing_keys"]) == set(ref_info["missing_keys"]) == {"pooler.dense.weight", "pooler.dense.bias"}
    assert set(info["unexpected_keys"]) == set(ref_info["unexpected_keys"])
    assert "lm_head.dense.weight" in caplog.text
    batch = padded_batch(VOCAB, pairs=False)
    with torch.no_grad():
        torch.testing.assert_close(ours(**batch).last_hidden_state, ref(**batch).last_hidden_state,
                                   atol=1e-5, rtol=0)


def test_sentence_transformers_style_checkpoint(tmp_path, caplog):
    """all-mpnet-base-v2: config names MPNetForMaskedLM, weights are a bare MPNetModel without the ``mpnet.``
    prefix plus an int64 ``embeddings.position_ids`` buffer."""
    torch.manual_seed(0)
    ref = transformers.MPNetModel(tiny_config()).eval()
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
    batch = padded_batch(VOCAB, pairs=False)
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


@pytest.mark.parametrize("head", HEADS)
def test_auto_classes_pick_mpnet(head, tmp_path):
    torch.manual_seed(0)
    getattr(transformers, "MPNet" + head)(head_config(head)).save_pretrained(tmp_path)
    auto = getattr(headway, "AutoModel" + head.removeprefix("Model"))
    assert type(auto.from_pretrained(tmp_path)) is getattr(headway, "MPNet" + head)
    assert type(headway.AutoConfig.from_pretrained(tmp_path)) is headway.MPNetConfig


def test_tied_decoder_shares_storage(tmp_path):
    torch.manual_seed(0)
    transformers.MPNetForMaskedLM(tiny_config()).save_pretrained(tmp_path)
    for ours in (headway.MPNetForMaskedLM.from_pretrained(tmp_path),
                 headway.MPNetForMaskedLM(headway.MPNetConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=1,
                                                              num_attention_heads=4, intermediate_size=37))):
        embeddings = ours.mpnet.embeddings.word_embeddings.weight
        assert ours.lm_head.decoder.weight is embeddings
        assert ours.lm_head.decoder.weight.data_ptr() == embeddings.data_ptr()
        assert ours.lm_head.decoder.bias is ours.lm_head.bias


@pytest.mark.parametrize("head", HEADS)
def test_save_roundtrip_and_reference_loads_ours(head, tmp_path):
    torch.manual_seed(0)
    config = head_config(head)
    getattr(transformers, "MPNet" + head)(config).save_pretrained(tmp_path / "ref")
    ours = getattr(headway, "MPNet" + head).from_pretrained(tmp_path / "ref")
    ours.save_pretrained(tmp_path / "ours")
    again = getattr(headway, "MPNet" + head).from_pretrained(tmp_path / "ours")
    saved, reloaded = ours.state_dict(), again.state_dict()
    assert saved.keys() == reloaded.keys()
    for name, tensor in saved.items():
        assert torch.equal(tensor, reloaded[name]), name
    assert load_file(tmp_path / "ours" / "model.safetensors").keys() == load_file(
        tmp_path / "ref" / "model.safetensors").keys()
    ref, info = getattr(transformers, "MPNet" + head).from_pretrained(tmp_path / "ours", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    inputs = batch_for(head, config)
    with torch.no_grad():
        assert_outputs_close(ref.eval()(**inputs), ours(**inputs))


@pytest.mark.parametrize("checkpointing", [False, True])
def test_training_mode_gradients_match(checkpointing, tmp_path):
    """With dropout off, gradients of the loss (relative bias table included) equal the reference's."""
    torch.manual_seed(0)
    config = tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    ref = transformers.MPNetForSequenceClassification(config)
    ref.save_pretrained(tmp_path)
    ours = headway.MPNetForSequenceClassification.from_pretrained(tmp_path)
    ours.mpnet.encoder.gradient_checkpointing = checkpointing
    ref.train()
    ours.train()
    batch = {**padded_batch(VOCAB, pairs=False), "labels": torch.tensor([0, 2, 1])}
    ref(**batch).loss.backward()
    ours(**batch).loss.backward()
    ref_grads = dict(ref.named_parameters())
    for name, param in ours.named_parameters():
        torch.testing.assert_close(param.grad, ref_grads[name].grad, atol=1e-5, rtol=0, msg=name)
    assert ours.mpnet.encoder.relative_attention_bias.weight.grad.abs().sum() > 0
