"""SentenceTransformerTrainer under torchrun with dropout on: processes share out whole batches, so keyed
dropout must number a batch's rows by the batch's place in the step (not by the base Trainer's interleaving
of one batch's examples), and two processes then reach one process's weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import headway
from headway.sentence.losses import MultipleNegativesRankingLoss
from headway.sentence.trainer import SentenceTransformerTrainer
from headway.sentence.training_args import SentenceTransformerTrainingArguments
from headway.training import distributed as D

from .tiny_training import TORCHRUN_ARGS as ARGS
from .tiny_training import build_sentence_transformer, datasets, torchrun_train


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """The tiny sentence-transformer with dropout on: hidden 0.2, attention probabilities 0.1."""
    folder = build_sentence_transformer(tmp_path_factory.mktemp("keyed") / "st")
    config = json.loads((folder / "config.json").read_text())
    config.update(hidden_dropout_prob=0.2, attention_probs_dropout_prob=0.1)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize("rows", [3, 2])
def test_batch_rows_numbered_by_the_batch_place_in_the_step(monkeypatch, folder, tmp_path, rows):
    """Process r's micro-batch m is the step's batch m * world + r: its rows get the indices one process
    accumulating every batch gives that batch (a short last batch keeps its place)."""
    model = headway.SentenceTransformer(folder, device="cpu")
    args = SentenceTransformerTrainingArguments(str(tmp_path), **ARGS)
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=datasets()["pairs"], loss=MultipleNegativesRankingLoss(model)
    )
    trainer._keyed_dropout = True
    batch = {"anchor_input_ids": torch.ones(rows, 4, dtype=torch.long)}
    one = {m: trainer._example_indices(batch, m) for m in range(4)}
    for world, rank, micro in ((2, 0, 0), (2, 1, 0), (2, 1, 1), (4, 3, 0)):
        monkeypatch.setattr(D, "world_size", lambda w=world: w)
        monkeypatch.setattr(D, "rank", lambda r=rank: r)
        assert torch.equal(trainer._example_indices(batch, micro), one[micro * world + rank])
    assert one[1].tolist() == [3, 4, 5][:rows]
    trainer._keyed_dropout = False
    assert trainer._example_indices(batch, 0) is None


def test_torchrun_two_processes_match_one_with_dropout(folder, tmp_path):
    """Two processes (DDP, gloo) with a batch each equal one process accumulating the same two batches,
    dropout on."""
    torchrun_train(folder, tmp_path / "two", tmp_path)

    one = headway.SentenceTransformer(folder, device="cpu")
    args = SentenceTransformerTrainingArguments(str(tmp_path / "one"), **ARGS, gradient_accumulation_steps=2)
    trainer = SentenceTransformerTrainer(
        model=one, args=args, train_dataset=datasets()["pairs"], loss=MultipleNegativesRankingLoss(one)
    )
    trainer.train()
    two = headway.SentenceTransformer(tmp_path / "two" / "final", device="cpu")
    pairs = zip(one.state_dict().values(), two.state_dict().values())
    worst = max((a - b).abs().max().item() for a, b in pairs)
    assert worst < 1e-5, worst
    # dropout really ran: the same steps without it end elsewhere
    plain = headway.SentenceTransformer(folder, device="cpu")
    for module in plain.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    for module in plain.modules():
        if hasattr(module, "dropout_p"):
            module.dropout_p = 0.0
    args = SentenceTransformerTrainingArguments(
        str(tmp_path / "plain"), **ARGS, gradient_accumulation_steps=2
    )
    SentenceTransformerTrainer(
        model=plain, args=args, train_dataset=datasets()["pairs"], loss=MultipleNegativesRankingLoss(plain)
    ).train()
    pairs = zip(one.state_dict().values(), plain.state_dict().values())
    assert max((a - b).abs().max().item() for a, b in pairs) > 1e-6
