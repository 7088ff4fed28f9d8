"""BERT parity with transformers: every head, padded batch, losses, hidden states and attentions."""

from __future__ import annotations

import pytest
import torch

import headway
from tests.parity.common import as_multiple_choice, compare_saved_model, labels_for, padded_batch

transformers = pytest.importorskip("transformers")

HEADS = ["Model", "ForSequenceClassification", "ForTokenClassification", "ForQuestionAnswering",
         "ForMaskedLM", "ForPreTraining", "ForMultipleChoice"]


def tiny_config(**overrides):
    kwargs = {"vocab_size": 99, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
              "intermediate_size": 37, "max_position_embeddings": 64, "num_labels": 3}
    kwargs.update(overrides)
    return transformers.BertConfig(**kwargs)


@pytest.mark.parametrize("head", HEADS)
def test_head_parity(head, tmp_path):
    torch.manual_seed(0)
    config = tiny_config(num_labels=2 if head == "ForQuestionAnswering" else 3)  # QA: start and end
    ref = getattr(transformers, "Bert" + head)(config)
    batch = padded_batch(config.vocab_size)
    task = head.removeprefix("For")
    if task == "MultipleChoice":
        batch = as_multiple_choice(batch)
    inputs = {**batch, **labels_for(task, batch, config.num_labels, config.vocab_size)}
    compared = compare_saved_model(ref, getattr(headway, "Bert" + head), tmp_path, inputs)
    if head != "Model":
        assert "loss" in compared


@pytest.mark.parametrize("problem_type,labels", [
    ("regression", torch.tensor([0.5, -1.0, 2.0])),
    ("multi_label_classification", torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])),
    ("single_label_classification", torch.tensor([0, 2, 1])),
])
def test_sequence_classification_problem_types(problem_type, labels, tmp_path):
    torch.manual_seed(0)
    num_labels = 1 if problem_type == "regression" else 3
    config = tiny_config(num_labels=num_labels, problem_type=problem_type)
    ref = transformers.BertForSequenceClassification(config)
    batch = padded_batch(config.vocab_size)
    labels = labels[:, None] if num_labels == 1 else labels
    compare_saved_model(ref, headway.BertForSequenceClassification, tmp_path, {**batch, "labels": labels})


def test_problem_type_inferred_like_reference(tmp_path):
    """No problem_type: float labels with several labels mean multi-label; the config records it."""
    torch.manual_seed(0)
    ref = transformers.BertForSequenceClassification(tiny_config()).eval()
    ref.save_pretrained(tmp_path)
    ours = headway.BertForSequenceClassification.from_pretrained(tmp_path)
    batch = padded_batch(99)
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    with torch.no_grad():
        torch.testing.assert_close(ours(**batch, labels=labels).loss, ref(**batch, labels=labels).loss,
                                   atol=1e-5, rtol=0)
    assert ours.config.problem_type == ref.config.problem_type == "multi_label_classification"


def test_without_token_type_ids_and_mask(tmp_path):
    torch.manual_seed(0)
    ref = transformers.BertModel(tiny_config())
    batch = padded_batch(99)
    compare_saved_model(ref, headway.BertModel, tmp_path, {"input_ids": batch["input_ids"]})


def test_training_mode_gradients_match(tmp_path):
    """With dropout off, gradients of the loss equal the reference's."""
    torch.manual_seed(0)
    config = tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    ref = transformers.BertForSequenceClassification(config)
    ref.save_pretrained(tmp_path)
    ours = headway.BertForSequenceClassification.from_pretrained(tmp_path)
    ref.train()
    ours.train()
    batch = {**padded_batch(99), "labels": torch.tensor([0, 2, 1])}
    ref(**batch).loss.backward()
    ours(**batch).loss.backward()
    ref_grads = dict(ref.named_parameters())
    for name, param in ours.named_parameters():
        torch.testing.assert_close(param.grad, ref_grads[name].grad, atol=1e-5, rtol=0, msg=name)


@pytest.mark.parametrize("head", ["ForSequenceClassification", "ForMaskedLM"])
def test_eval_mode_gradients_match(head, tmp_path):
    """``model(**inputs)`` in eval mode without no_grad runs packed; its gradients equal the reference's."""
    torch.manual_seed(0)
    config = tiny_config()
    ref = getattr(transformers, "Bert" + head)(config)
    ref.save_pretrained(tmp_path)
    ours = getattr(headway, "Bert" + head).from_pretrained(tmp_path)
    ref.eval()
    batch = {**padded_batch(99), **labels_for(head.removeprefix("For"), padded_batch(99), 3, 99)}
    ref_loss, our_loss = ref(**batch).loss, ours(**batch).loss
    torch.testing.assert_close(our_loss, ref_loss, atol=1e-6, rtol=0)
    ref_loss.backward()
    our_loss.backward()
    ref_grads = dict(ref.named_parameters())
    for name, param in ours.named_parameters():
        torch.testing.assert_close(param.grad, ref_grads[name].grad, atol=1e-5, rtol=0, msg=name)
    batch.pop("labels")
    with torch.no_grad():  # the backward dropped the packed copies; the next forward rebuilds them
        torch.testing.assert_close(ours(**batch).logits, ref(**batch).logits, atol=1e-5, rtol=0)
