"""Gradient accumulation: batch 8 x 1 step == batch 4 x 2 == batch 2 x 4, padding included."""

from __future__ import annotations

import pytest
import torch

from headway import DataCollatorForTokenClassification, Trainer, TrainingArguments

from .conftest import tiny_bert, wnut_slice


def _token_dataset(tok, n=16):
    rows = []
    for words, tags in wnut_slice(n):
        enc = tok(words, is_split_into_words=True, truncation=True, max_length=64)
        previous, labels = None, []
        for w in enc.word_ids():
            labels.append(-100 if w is None or w == previous else int(tags[w] != "O") + int(tags[w][:1] == "I"))
            previous = w
        rows.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels})
    return rows


def _train(tok, tmp_path, batch, accumulation, steps=2):
    model = tiny_bert("BertForTokenClassification", num_labels=3)
    args = TrainingArguments(str(tmp_path / f"{batch}x{accumulation}"), per_device_train_batch_size=batch,
                             gradient_accumulation_steps=accumulation, max_steps=steps, learning_rate=1e-3,
                             weight_decay=0.01, save_strategy="no", logging_steps=1, report_to="none",
                             disable_tqdm=True, seed=3)
    trainer = Trainer(model, args, train_dataset=_token_dataset(tok), processing_class=tok,
                      data_collator=DataCollatorForTokenClassification(tok))
    trainer.train()
    return trainer


def test_accumulation_matches_large_batch(tokenizer, tmp_path):
    big = _train(tokenizer, tmp_path, 8, 1)
    lengths = {len(r["input_ids"]) for r in _token_dataset(tokenizer)}
    assert len(lengths) > 4  # the micro-batches are padded differently
    for batch, accumulation in ((4, 2), (2, 4)):
        small = _train(tokenizer, tmp_path, batch, accumulation)
        worst = max((a - b).abs().max().item()
                    for a, b in zip(big.model.state_dict().values(), small.model.state_dict().values()))
        print(f"\n8x1 vs {batch}x{accumulation}: max weight difference {worst:.3g}")
        assert worst < 1e-6, (batch, accumulation, worst)
        big_losses = [h["loss"] for h in big.state.log_history if "loss" in h]
        small_losses = [h["loss"] for h in small.state.log_history if "loss" in h]
        assert small_losses == pytest.approx(big_losses, abs=1e-6)


def test_loss_is_token_mean_of_whole_batch(tokenizer, tmp_path):
    """The logged loss of an accumulated step is sum(token losses) / tokens over all micro-batches."""
    data = _token_dataset(tokenizer)
    trainer = _train(tokenizer, tmp_path, 4, 2, steps=1)
    model = tiny_bert("BertForTokenClassification", num_labels=3)
    order = list(trainer.get_train_dataloader().sampler)[:8]
    collator = DataCollatorForTokenClassification(tokenizer)
    total, count = 0.0, 0
    with torch.no_grad():
        for chunk in (order[:4], order[4:]):
            batch = collator([data[i] for i in chunk])
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            total += torch.nn.functional.cross_entropy(logits.reshape(-1, 3), batch["labels"].reshape(-1),
                                                       reduction="sum", ignore_index=-100).item()
            count += (batch["labels"] != -100).sum().item()
    logged = trainer.state.log_history[0]["loss"]
    assert logged == pytest.approx(total / count, abs=1e-6)


def test_split_by_length_pieces(tokenizer):
    from headway.training.utils import split_by_length

    rows = _token_dataset(tokenizer, 16)
    batch = DataCollatorForTokenClassification(tokenizer)(rows)
    assert len(split_by_length(dict(batch), min_saving=0.99)) == 1  # not worth it: kept whole
    parts = split_by_length(dict(batch), min_saving=0.0)
    assert len(parts) == 2
    assert sum(p["input_ids"].shape[0] for p in parts) == 16
    assert sum(p["input_ids"].numel() for p in parts) < batch["input_ids"].numel()
    for p in parts:
        assert p["labels"].shape == p["input_ids"].shape and bool(p["attention_mask"][:, -1].any())
    assert sum(int((p["labels"] != -100).sum()) for p in parts) == int((batch["labels"] != -100).sum())
    left = dict(batch, attention_mask=batch["attention_mask"].flip(1))  # left padding: not split
    assert len(split_by_length(left, min_saving=0.0)) == 1
    odd = dict(batch, scores=torch.zeros_like(batch["input_ids"], dtype=torch.float))  # unknown wide tensor
    assert len(split_by_length(odd, min_saving=0.0)) == 1
    decoder_like = dict(batch, labels=batch["input_ids"].clone())  # labels not padded like the inputs
    assert len(split_by_length(decoder_like, min_saving=0.0)) == 1


@pytest.mark.parametrize("split", [True, False])
def test_split_batches_by_length_same_update(tokenizer, tmp_path, split):
    rows = _token_dataset(tokenizer)

    def run(flag):
        model = tiny_bert("BertForTokenClassification", num_labels=3)
        args = TrainingArguments(str(tmp_path / str(flag)), per_device_train_batch_size=8, max_steps=2,
                                 learning_rate=1e-3, save_strategy="no", logging_steps=1, report_to="none",
                                 disable_tqdm=True, seed=3, split_batches_by_length=flag)
        trainer = Trainer(model, args, train_dataset=rows, processing_class=tokenizer,
                          data_collator=DataCollatorForTokenClassification(tokenizer))
        trainer.train()
        return trainer

    a, b = run(split), run(None)  # None: automatic (on for headway models on CPU)
    assert b._split_by_length is True
    worst = max((x - y).abs().max().item() for x, y in zip(a.model.state_dict().values(),
                                                           b.model.state_dict().values()))
    assert worst < 1e-6
    assert [h["loss"] for h in a.state.log_history if "loss" in h] == pytest.approx(
        [h["loss"] for h in b.state.log_history if "loss" in h], abs=1e-6)
    assert [h["epoch"] for h in a.state.log_history] == [h["epoch"] for h in b.state.log_history] == [0.5, 1.0, 1.0]
