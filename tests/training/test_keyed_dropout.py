"""Keyed dropout under the Trainer: with dropout on, the weights do not depend on how the global batch is
cut (accumulation, per-device batch, the CPU split by length) nor on gradient checkpointing. The
process-count test is in test_distributed.py."""

from __future__ import annotations

import pytest

from headway import Trainer, TrainingArguments
from headway.training.utils import example_indices

from .conftest import SENTENCES, tiny_bert

DROPOUT = {"hidden_dropout_prob": 0.2, "attention_probs_dropout_prob": 0.3}


@pytest.fixture(scope="module")
def rows(tokenizer):
    texts = [f"{s} {w}" for s in SENTENCES for w in ("yes", "no, not at all", "maybe later today")][:16]
    enc = tokenizer(texts, truncation=True)
    return [
        {"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i], "labels": i % 2}
        for i in range(len(texts))
    ]


def _train(rows, tokenizer, tmp_path, batch: int, accumulation: int = 1, dropout=DROPOUT, **kwargs):
    # lr 1e-3: Adam turns the rounding noise of gradients that are zero in exact arithmetic (key biases)
    # into steps of about lr, which at 1e-2 reach 1e-5 whatever the dropout.
    model = tiny_bert("BertForSequenceClassification", num_labels=2, **dropout)
    args = TrainingArguments(
        str(tmp_path / f"run{batch}x{accumulation}"),
        per_device_train_batch_size=batch,
        gradient_accumulation_steps=accumulation,
        max_steps=3,
        learning_rate=1e-3,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        seed=7,
        use_cpu=True,
        **kwargs,
    )
    Trainer(model, args, train_dataset=rows, processing_class=tokenizer).train()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _diff(a, b) -> float:
    return max((a[k] - b[k]).abs().max().item() for k in a)


def test_accumulation_and_batch_cuts_reach_the_same_weights(rows, tokenizer, tmp_path):
    whole = _train(rows, tokenizer, tmp_path, 8)
    for batch, accumulation in ((4, 2), (2, 4)):
        assert _diff(whole, _train(rows, tokenizer, tmp_path, batch, accumulation)) < 1e-5
    # dropout is really on: without it the weights differ
    assert _diff(whole, _train(rows, tokenizer, tmp_path, 8, dropout={})) > 1e-4


def test_keyed_dropout_off_is_torchs_rng(rows, tokenizer, tmp_path):
    keyed = _train(rows, tokenizer, tmp_path, 8)
    off = _train(rows, tokenizer, tmp_path, 8, keyed_dropout=False)
    assert _diff(keyed, off) > 1e-4
    # torch's RNG is drawn per forward: accumulating the same batch in two halves changes the weights
    assert _diff(off, _train(rows, tokenizer, tmp_path, 4, 2, keyed_dropout=False)) > 1e-4


def test_gradient_checkpointing_keeps_the_masks(rows, tokenizer, tmp_path):
    plain = _train(rows, tokenizer, tmp_path, 4, 2)
    assert _diff(plain, _train(rows, tokenizer, tmp_path, 4, 2, gradient_checkpointing=True)) < 1e-6


def test_example_indices_interleave_like_the_sampler():
    # 2 processes, batch 2, accumulation 2: the 8 rows of the step are numbered once each, as one
    # process with batch 8 numbers them (the sampler deals the epoch's order out rank by rank).
    seen = [example_indices(i, 2, 2, 2, rank).tolist() for i in range(2) for rank in range(2)]
    assert seen == [[0, 2], [1, 3], [4, 6], [5, 7]]
    assert example_indices(0, 8, 8, 1, 0).tolist() == list(range(8))
    assert example_indices(1, 3, 4, 1, 0).tolist() == [4, 5, 6]  # a short last micro-batch
