"""RoBERTa and XLM-RoBERTa parity with transformers: every head, padded batch, losses, hidden states,
attentions, partial checkpoints, Auto classes, tied weights, save/load round trips, gradients."""

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


FAMILIES = ["Roberta", "XLMRoberta"]
HEADS = ["Model", "ForSequenceClassification", "ForTokenClassification", "ForQuestionAnswering",
         "ForMaskedLM", "ForMultipleChoice"]
VOCAB = 99
# Auto class -> the head it must pick (pre-training maps to masked-LM, as in the reference).
AUTO_CLASSES = [("AutoModel", "Model"), ("AutoModelForSequenceClassification", "ForSequenceClassification"),
                ("AutoModelForTokenClassification", "ForTokenClassification"),
                ("AutoModelForQuestionAnswering", "ForQuestionAnswering"),
                ("AutoModelForMaskedLM", "ForMaskedLM"), ("AutoModelForPreTraining", "ForMaskedLM"),
                ("AutoModelForMultipleChoice", "ForMultipleChoice")]
PAD = 1  # RoBERTa's padding id: padded_batch pads with 1 and draws real tokens from [5, vocab)


def tiny_config(family: str, **overrides):
    kwargs = {"vocab_size": VOCAB, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
              "intermediate_size": 37, "max_position_embeddings": 64, "num_labels": 3}
    kwargs.update(overrides)
    return getattr(transformers, family + "Config")(**kwargs)


def inputs_for(head: str, config, *, pairs: bool = True) -> dict[str, torch.Tensor]:
    """A padded batch (positions stay below padding_idx + 1 + 12 < 64) with the labels ``head`` needs."""
    batch = padded_batch(config.vocab_size, pairs=pairs)
    task = head.removeprefix("For")
    if task == "MultipleChoice":
        batch = as_multiple_choice(batch)
    return {**batch, **labels_for(task, batch, config.num_labels, config.vocab_size)}


def ref_model(family: str, head: str, **overrides):
    torch.manual_seed(0)
    config = tiny_config(family, num_labels=2 if head == "ForQuestionAnswering" else 3, **overrides)
    return getattr(transformers, family + head)(config)


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("family", FAMILIES)
def test_head_parity(family, head, tmp_path):
    ref = ref_model(family, head)
    inputs = inputs_for(head, ref.config)
    compared = compare_saved_model(ref, getattr(headway, family + head), tmp_path, inputs)
    if head != "Model":
        assert "loss" in compared


@pytest.mark.parametrize("family", FAMILIES)
def test_single_segment_checkpoint_without_token_types_or_mask(family, tmp_path):
    """roberta-base's shape: type_vocab_size 1, no token_type_ids; padding still sets positions."""
    ref = ref_model(family, "ForSequenceClassification", type_vocab_size=1)
    batch = padded_batch(VOCAB, pairs=False)
    compare_saved_model(ref, getattr(headway, family + "ForSequenceClassification"), tmp_path, batch)
    compare_saved_model(ref, getattr(headway, family + "ForSequenceClassification"), tmp_path,
                        {"input_ids": batch["input_ids"]})


def test_inputs_embeds_use_sequential_positions(tmp_path):
    ref = ref_model("Roberta", "Model").eval()
    ref.save_pretrained(tmp_path)
    ours = headway.RobertaModel.from_pretrained(tmp_path)
    batch = padded_batch(VOCAB, pairs=False)
    embeds = ref.embeddings.word_embeddings(batch["input_ids"]).detach()
    with torch.no_grad():
        assert_outputs_close(ref(inputs_embeds=embeds, attention_mask=batch["attention_mask"]),
                             ours(inputs_embeds=embeds, attention_mask=batch["attention_mask"]))


def test_position_ids_helper_matches_reference():
    from transformers.models.roberta.modeling_roberta import RobertaEmbeddings

    from headway.models.roberta import position_ids_from_input_ids

    ids = torch.tensor([[0, 7, 8, 2, 1, 1], [0, 1, 9, 2, 1, 1]])  # an inner pad token too
    torch.testing.assert_close(position_ids_from_input_ids(ids, PAD),
                               RobertaEmbeddings.create_position_ids_from_input_ids(ids, PAD), rtol=0, atol=0)


def test_too_long_input_raises_clearly():
    model = headway.RobertaModel(headway.RobertaConfig(**tiny_config("Roberta").to_dict()))
    ids = torch.full((1, 63), 7)  # positions 2..64: one past the 64-row table
    with pytest.raises(ValueError, match="maximum of 62 tokens"):
        model(ids)
    model(ids[:, :62])  # the longest input that fits


@pytest.mark.parametrize("head", HEADS[1:])
@pytest.mark.parametrize("family", FAMILIES)
def test_base_checkpoint_into_head(family, head, tmp_path, caplog):
    """The encoder loads, the head is initialised and named in the warning, as the reference reports."""
    base = ref_model(family, "Model").eval()
    base.save_pretrained(tmp_path)
    with caplog.at_level(logging.WARNING, logger="headway"):
        ours, info = getattr(headway, family + head).from_pretrained(tmp_path, output_loading_info=True)
    _, ref_info = getattr(transformers, family + head).from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"], "the head should be reported as newly initialised"
    assert all(not k.startswith("roberta.") for k in info["missing_keys"]), info["missing_keys"]
    # The same keys; the reference also names the alias lm_head.decoder.bias of lm_head.bias.
    assert set(info["missing_keys"]) == set(ref_info["missing_keys"]) - {"lm_head.decoder.bias"}
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "newly initialized" in warning
    assert all(k in warning for k in info["missing_keys"])
    assert not info["unexpected_keys"]  # the pooler of the base checkpoint is dropped silently
    for name, tensor in ours.state_dict().items():
        assert not tensor.is_meta and torch.isfinite(tensor).all(), name
    batch = padded_batch(VOCAB)
    with torch.no_grad():
        torch.testing.assert_close(ours.roberta(**batch).last_hidden_state, base(**batch).last_hidden_state,
                                   atol=ATOL, rtol=0)


@pytest.mark.parametrize("head", ["ForSequenceClassification", "ForMaskedLM", "ForMultipleChoice"])
@pytest.mark.parametrize("family", FAMILIES)
def test_head_checkpoint_into_bare_model(family, head, tmp_path):
    ref = ref_model(family, head).eval()
    ref.save_pretrained(tmp_path)
    ours, info = getattr(headway, family + "Model").from_pretrained(tmp_path, output_loading_info=True)
    _, ref_info = getattr(transformers, family + "Model").from_pretrained(tmp_path, output_loading_info=True)
    # The pooler, unless the head had one.
    assert sorted(info["missing_keys"]) == sorted(ref_info["missing_keys"])
    assert info["unexpected_keys"] and all(not k.startswith("roberta.") for k in info["unexpected_keys"])
    batch = padded_batch(VOCAB)
    with torch.no_grad():
        torch.testing.assert_close(ours(**batch).last_hidden_state, ref.roberta(**batch).last_hidden_state,
                                   atol=ATOL, rtol=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_auto_classes_pick_family(family, tmp_path):
    ref_model(family, "ForMaskedLM").save_pretrained(tmp_path)
    assert type(headway.AutoConfig.from_pretrained(tmp_path)).__name__ == family + "Config"
    for auto, head in AUTO_CLASSES:
        model = getattr(headway, auto).from_pretrained(tmp_path)
        assert type(model) is getattr(headway, family + head), auto


@pytest.mark.parametrize("family", FAMILIES)
def test_tied_mlm_decoder_shares_storage(family, tmp_path):
    ref_model(family, "ForMaskedLM").save_pretrained(tmp_path)
    ours = getattr(headway, family + "ForMaskedLM").from_pretrained(tmp_path)
    decoder = ours.get_output_embeddings()
    assert decoder.weight is ours.get_input_embeddings().weight
    assert decoder.weight.data_ptr() == ours.roberta.embeddings.word_embeddings.weight.data_ptr()
    assert decoder.bias is ours.lm_head.bias
    fresh = getattr(headway, family + "ForMaskedLM")(ours.config)  # tied when built, too
    assert fresh.lm_head.decoder.weight is fresh.roberta.embeddings.word_embeddings.weight


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("family", FAMILIES)
def test_save_pretrained_round_trip(family, head, tmp_path):
    """headway's save loads back identically in headway, and in transformers with equal outputs."""
    ref = ref_model(family, head).eval()
    ref.save_pretrained(tmp_path / "ref")
    ours = getattr(headway, family + head).from_pretrained(tmp_path / "ref")
    ours.save_pretrained(tmp_path / "ours")
    again = getattr(headway, family + head).from_pretrained(tmp_path / "ours")
    first, second = ours.state_dict(), again.state_dict()
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name
    back, info = getattr(transformers, family + head).from_pretrained(
        tmp_path / "ours", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    inputs = inputs_for(head, ref.config)
    with torch.no_grad():
        assert_outputs_close(back(**inputs), again(**inputs))


@pytest.mark.parametrize("family,head", [("Roberta", "ForSequenceClassification"), ("Roberta", "ForMaskedLM"),
                                         ("XLMRoberta", "ForTokenClassification")])
def test_training_mode_gradients_match(family, head, tmp_path):
    """With dropout off, gradients of the loss equal the reference's (tied decoder included)."""
    ref = ref_model(family, head, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    ref.save_pretrained(tmp_path)
    ours = getattr(headway, family + head).from_pretrained(tmp_path)
    ref.train()
    ours.train()
    inputs = inputs_for(head, ref.config)
    ref(**inputs).loss.backward()
    ours(**inputs).loss.backward()
    ref_params = dict(ref.named_parameters(remove_duplicate=False))
    for name, param in ours.named_parameters():
        torch.testing.assert_close(param.grad, ref_params[name].grad, atol=ATOL, rtol=0, msg=name)


def test_gradient_checkpointing_gives_same_gradients(tmp_path):
    ref_model("Roberta", "ForSequenceClassification").save_pretrained(tmp_path)
    grads = []
    for checkpointing in (False, True):
        model = headway.RobertaForSequenceClassification.from_pretrained(
            tmp_path, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0).train()
        model.roberta.encoder.gradient_checkpointing = checkpointing
        model(**inputs_for("ForSequenceClassification", model.config)).loss.backward()
        grads.append({n: p.grad for n, p in model.named_parameters()})
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, atol=1e-6, rtol=0, msg=name)


@pytest.mark.parametrize("family", FAMILIES)
def test_config_defaults_match_reference(family):
    ours, ref = getattr(headway, family + "Config")(), getattr(transformers, family + "Config")()
    assert ours.model_type == ref.model_type
    for field in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                  "intermediate_size", "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob",
                  "max_position_embeddings", "type_vocab_size", "initializer_range", "layer_norm_eps",
                  "pad_token_id", "bos_token_id", "eos_token_id", "classifier_dropout", "tie_word_embeddings"):
        assert getattr(ours, field) == getattr(ref, field), field
