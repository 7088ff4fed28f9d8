"""headway's Trainer takes the same optimiser steps as the reference transformers.Trainer."""

from __future__ import annotations

import accelerate  # noqa: F401  (the reference Trainer needs it)
import pytest
import torch
import transformers

from headway import Trainer, TrainingArguments

from .conftest import SENTENCES


def _reference_model(head: str, folder):
    config = transformers.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=37, max_position_embeddings=128, hidden_dropout_prob=0.0,
                                     attention_probs_dropout_prob=0.0, num_labels=3)
    torch.manual_seed(0)
    model = getattr(transformers, head)(config)
    model.save_pretrained(folder)
    return model


def _data(tok, head):
    texts = SENTENCES + [s.upper() for s in SENTENCES]
    enc = tok(texts, truncation=True)
    rows = []
    for i in range(len(texts)):
        row = {k: enc[k][i] for k in ("input_ids", "attention_mask", "token_type_ids")}
        n = len(row["input_ids"])
        row["labels"] = i % 3 if head.endswith("SequenceClassification") else [
            -100 if j in (0, n - 1) else (i + j) % 3 for j in range(n)]
        rows.append(row)
    return rows


@pytest.mark.parametrize("head", ["BertForSequenceClassification", "BertForTokenClassification"])
def test_same_weights_after_optimizer_steps(head, tokenizer, ref_tokenizer, tmp_path):
    import headway

    ref_model = _reference_model(head, tmp_path / "init")
    ours = getattr(headway, head).from_pretrained(tmp_path / "init")
    collator_ref = transformers.DataCollatorForTokenClassification(ref_tokenizer) if "Token" in head else None
    collator = headway.DataCollatorForTokenClassification(tokenizer) if "Token" in head else None
    common = {"per_device_train_batch_size": 8, "max_steps": 3, "learning_rate": 1e-3, "weight_decay": 0.1, "warmup_steps": 2,
                  "lr_scheduler_type": "linear", "max_grad_norm": 0.05, "logging_steps": 1, "save_strategy": "no", "report_to": "none",
                  "disable_tqdm": True, "use_cpu": True, "seed": 0}
    ref_trainer = transformers.Trainer(
        ref_model, transformers.TrainingArguments(str(tmp_path / "ref"), **common),
        train_dataset=_data(ref_tokenizer, head), processing_class=ref_tokenizer, data_collator=collator_ref)
    ref_out = ref_trainer.train()
    trainer = Trainer(ours, TrainingArguments(str(tmp_path / "ours"), **common), train_dataset=_data(tokenizer, head),
                      processing_class=tokenizer, data_collator=collator)
    out = trainer.train()

    ref_state = ref_model.state_dict()
    worst = max((v - ref_state[k]).abs().max().item() for k, v in ours.state_dict().items())
    print(f"\n{head}: max |headway - reference| after 3 steps = {worst:.3g}")
    assert worst < 1e-6, worst
    moved = max((v - transformers.AutoModel.from_pretrained(tmp_path / "init").state_dict().get(
        k.removeprefix("bert."), v)).abs().max().item() for k, v in ours.state_dict().items())
    assert moved > 1e-4  # the steps did change the weights
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    ref_losses = [h["loss"] for h in ref_trainer.state.log_history if "loss" in h]
    assert losses == pytest.approx(ref_losses, abs=1e-6)
    lrs = [h["learning_rate"] for h in trainer.state.log_history if "learning_rate" in h]
    assert lrs == pytest.approx([h["learning_rate"] for h in ref_trainer.state.log_history if "learning_rate" in h])
    norms = [h["grad_norm"] for h in trainer.state.log_history if "grad_norm" in h]
    assert min(norms) > 0.05  # clipping was active
    assert norms == pytest.approx([h["grad_norm"] for h in ref_trainer.state.log_history if "grad_norm" in h],
                                  rel=1e-5)
    assert out.global_step == ref_out.global_step == 3
    assert out.training_loss == pytest.approx(ref_out.training_loss, abs=1e-6)
