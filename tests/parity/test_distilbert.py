"""DistilBERT parity with transformers: every head, padded batch, losses, hidden states, attentions,
partial checkpoints, Auto classes, tied weights, sinusoidal positions, save/load round trips, gradients."""

from __future__ import annotations

import logging

import pytest
import torch

import headway
from tests.parity.common import (
    ATOL,
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
# Auto class -> the head it must pick (pre-training maps to masked-LM, as in the reference).
AUTO_CLASSES = [("AutoModel", "Model"), ("AutoModelForSequenceClassification", "ForSequenceClassification"),
                ("AutoModelForTokenClassification", "ForTokenClassification"),
                ("AutoModelForQuestionAnswering", "ForQuestionAnswering"),
                ("AutoModelForMaskedLM", "ForMaskedLM"), ("AutoModelForPreTraining", "ForMaskedLM"),
                ("AutoModelForMultipleChoice", "ForMultipleChoice")]


def tiny_config(**overrides):
    kwargs = {"vocab_size": VOCAB, "dim": 32, "n_layers": 2, "n_heads": 4, "hidden_dim": 37,
              "max_position_embeddings": 64, "num_labels": 3}
    kwargs.update(overrides)
    return transformers.DistilBertConfig(**kwargs)


def distil_batch(**kwargs) -> dict[str, torch.Tensor]:
    """padded_batch without token types, padded with DistilBERT's pad id 0."""
    batch = padded_batch(VOCAB, pairs=False, **kwargs)
    batch["input_ids"] = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, 0)
    return batch


def inputs_for(head: str, config) -> dict[str, torch.Tensor]:
    batch = distil_batch()
    task = head.removeprefix("For")
    if task == "MultipleChoice":
        batch = as_multiple_choice(batch)
    return {**batch, **labels_for(task, batch, config.num_labels, config.vocab_size)}


def ref_model(head: str, **overrides):
    torch.manual_seed(0)
    overrides.setdefault("num_labels", 2 if head == "ForQuestionAnswering" else 3)  # QA: start and end
    config = tiny_config(**overrides)
    return getattr(transformers, "DistilBert" + head)(config)


@pytest.mark.parametrize("head", HEADS)
def test_head_parity(head, tmp_path):
    ref = ref_model(head)
    inputs = inputs_for(head, ref.config)
    compared = compare_saved_model(ref, getattr(headway, "DistilBert" + head), tmp_path, inputs)
    if head != "Model":
        assert "loss" in compared


def test_sinusoidal_positions(tmp_path):
    """The table is initialised like the reference's and stays trainable; checkpoints load as usual."""
    ref = ref_model("ForSequenceClassification", sinusoidal_pos_embds=True)
    ours = headway.DistilBertForSequenceClassification(headway.DistilBertConfig(**ref.config.to_dict()))
    ref_table = ref.distilbert.embeddings.position_embeddings.weight
    our_table = ours.distilbert.embeddings.position_embeddings.weight
    torch.testing.assert_close(our_table, ref_table, atol=1e-6, rtol=0)
    assert our_table.requires_grad == ref_table.requires_grad
    compare_saved_model(ref, headway.DistilBertForSequenceClassification, tmp_path,
                        inputs_for("ForSequenceClassification", ref.config))


def test_sinusoidal_positions_initialised_when_missing_from_checkpoint(tmp_path):
    ref = ref_model("Model", sinusoidal_pos_embds=True)
    state = {k: v for k, v in ref.state_dict().items() if "position_embeddings" not in k}
    ref.save_pretrained(tmp_path)  # for config.json; the weights come from ``state``
    ours = headway.DistilBertModel.from_pretrained(tmp_path, state_dict=state)
    torch.testing.assert_close(ours.embeddings.position_embeddings.weight,
                               ref.embeddings.position_embeddings.weight, atol=1e-6, rtol=0)


def test_token_type_ids_accepted_and_ignored(tmp_path):
    """Like the reference: token_type_ids (e.g. from a BERT tokenizer) change nothing."""
    ref = ref_model("ForSequenceClassification").eval()
    ref.save_pretrained(tmp_path)
    ours = headway.DistilBertForSequenceClassification.from_pretrained(tmp_path)
    batch = distil_batch()
    token_types = torch.ones_like(batch["input_ids"])
    with torch.no_grad():
        plain = ours(**batch).logits
        torch.testing.assert_close(ours(**batch, token_type_ids=token_types).logits, plain, atol=0, rtol=0)
        torch.testing.assert_close(ref(**batch, token_type_ids=token_types).logits, plain, atol=ATOL, rtol=0)


def test_without_mask_and_with_inputs_embeds(tmp_path):
    ref = ref_model("Model").eval()
    ref.save_pretrained(tmp_path)
    ours = headway.DistilBertModel.from_pretrained(tmp_path)
    batch = distil_batch()
    embeds = ref.embeddings.word_embeddings(batch["input_ids"]).detach()
    with torch.no_grad():
        assert_outputs_close(ref(input_ids=batch["input_ids"]), ours(input_ids=batch["input_ids"]))
        assert_outputs_close(ref(inputs_embeds=embeds, attention_mask=batch["attention_mask"]),
                             ours(inputs_embeds=embeds, attention_mask=batch["attention_mask"]))


def test_question_answering_needs_two_labels():
    with pytest.raises(ValueError, match="num_labels should be 2"):
        headway.DistilBertForQuestionAnswering(headway.DistilBertConfig(num_labels=3))


@pytest.mark.parametrize("head", HEADS[1:])
def test_base_checkpoint_into_head(head, tmp_path, caplog):
    """The encoder loads, the head is initialised and named in the warning, as the reference reports."""
    base = ref_model("Model", num_labels=2 if head == "ForQuestionAnswering" else 3).eval()
    base.save_pretrained(tmp_path)
    with caplog.at_level(logging.WARNING, logger="headway"):
        ours, info = getattr(headway, "DistilBert" + head).from_pretrained(tmp_path, output_loading_info=True)
    _, ref_info = getattr(transformers, "DistilBert" + head).from_pretrained(
        tmp_path, output_loading_info=True)
    assert info["missing_keys"], "the head should be reported as newly initialised"
    assert sorted(info["missing_keys"]) == sorted(ref_info["missing_keys"])
    assert not info["unexpected_keys"]
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "newly initialized" in warning
    assert all(k in warning for k in info["missing_keys"])
    for name, tensor in ours.state_dict().items():
        assert not tensor.is_meta and torch.isfinite(tensor).all(), name
    batch = distil_batch()
    with torch.no_grad():
        torch.testing.assert_close(ours.distilbert(**batch).last_hidden_state,
                                   base(**batch).last_hidden_state, atol=ATOL, rtol=0)


@pytest.mark.parametrize("head", ["ForSequenceClassification", "ForMaskedLM"])
def test_head_checkpoint_into_bare_model(head, tmp_path):
    ref = ref_model(head).eval()
    ref.save_pretrained(tmp_path)
    ours, info = headway.DistilBertModel.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"]
    assert info["unexpected_keys"] and all(not k.startswith("distilbert.") for k in info["unexpected_keys"])
    batch = distil_batch()
    with torch.no_grad():
        torch.testing.assert_close(ours(**batch).last_hidden_state, ref.distilbert(**batch).last_hidden_state,
                                   atol=ATOL, rtol=0)


def test_auto_classes_pick_family(tmp_path):
    ref_model("ForMaskedLM", num_labels=2).save_pretrained(tmp_path)  # 2: what QA needs
    assert type(headway.AutoConfig.from_pretrained(tmp_path)) is headway.DistilBertConfig
    for auto, head in AUTO_CLASSES:
        model = getattr(headway, auto).from_pretrained(tmp_path)
        assert type(model) is getattr(headway, "DistilBert" + head), auto


def test_tied_mlm_projector_shares_storage(tmp_path):
    ref_model("ForMaskedLM").save_pretrained(tmp_path)
    ours = headway.DistilBertForMaskedLM.from_pretrained(tmp_path)
    assert ours.vocab_projector.weight is ours.distilbert.embeddings.word_embeddings.weight
    assert ours.vocab_projector.weight.data_ptr() == ours.get_input_embeddings().weight.data_ptr()
    fresh = headway.DistilBertForMaskedLM(ours.config)
    assert fresh.vocab_projector.weight is fresh.distilbert.embeddings.word_embeddings.weight


@pytest.mark.parametrize("head", HEADS)
def test_save_pretrained_round_trip(head, tmp_path):
    """headway's save loads back identically in headway, and in transformers with equal outputs."""
    ref = ref_model(head).eval()
    ref.save_pretrained(tmp_path / "ref")
    ours = getattr(headway, "DistilBert" + head).from_pretrained(tmp_path / "ref")
    ours.save_pretrained(tmp_path / "ours")
    again = getattr(headway, "DistilBert" + head).from_pretrained(tmp_path / "ours")
    first, second = ours.state_dict(), again.state_dict()
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name
    back, info = getattr(transformers, "DistilBert" + head).from_pretrained(
        tmp_path / "ours", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    inputs = inputs_for(head, ref.config)
    with torch.no_grad():
        assert_outputs_close(back(**inputs), again(**inputs))


@pytest.mark.parametrize("head", ["ForSequenceClassification", "ForMaskedLM"])
def test_training_mode_gradients_match(head, tmp_path):
    """With dropout off, gradients of the loss equal the reference's (tied projector included)."""
    ref = ref_model(head, dropout=0.0, attention_dropout=0.0, seq_classif_dropout=0.0)
    ref.save_pretrained(tmp_path)
    ours = getattr(headway, "DistilBert" + head).from_pretrained(tmp_path)
    ref.train()
    ours.train()
    inputs = inputs_for(head, ref.config)
    ref(**inputs).loss.backward()
    ours(**inputs).loss.backward()
    ref_params = dict(ref.named_parameters(remove_duplicate=False))
    for name, param in ours.named_parameters():
        torch.testing.assert_close(param.grad, ref_params[name].grad, atol=ATOL, rtol=0, msg=name)


def test_config_defaults_and_aliases_match_reference():
    ours, ref = headway.DistilBertConfig(), transformers.DistilBertConfig()
    assert ours.model_type == ref.model_type
    for field in ("vocab_size", "max_position_embeddings", "sinusoidal_pos_embds", "n_layers", "n_heads",
                  "dim", "hidden_dim", "dropout", "attention_dropout", "activation", "initializer_range",
                  "qa_dropout", "seq_classif_dropout", "pad_token_id", "tie_word_embeddings",
                  "hidden_size", "num_attention_heads", "num_hidden_layers"):
        assert getattr(ours, field) == getattr(ref, field), field
    aliased = headway.DistilBertConfig(hidden_size=64, num_attention_heads=8, num_hidden_layers=3)
    assert (aliased.dim, aliased.n_heads, aliased.n_layers) == (64, 8, 3)
    aliased.hidden_size = 16
    assert aliased.dim == 16
    assert "hidden_size" not in aliased.to_dict()  # saved under the family's own name only
