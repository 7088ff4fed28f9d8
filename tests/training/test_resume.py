"""Checkpoints: atomic folders, weights_only-readable states, pruning, and bitwise-exact resume."""

from __future__ import annotations

import json

import pytest
import torch

from headway import Trainer, TrainerCallback, TrainingArguments

from .conftest import SENTENCES, tiny_bert


class StopAt(TrainerCallback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True
            control.should_save = True


def _dataset(tok, n=12):
    texts = [f"{SENTENCES[i % 4]} {'again ' * (i % 5)}" for i in range(n)]
    enc = tok(texts, truncation=True)
    return [{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i], "label": i % 2}
            for i in range(n)]


def _args(out, **kw):
    base = {"per_device_train_batch_size": 4, "max_steps": 8, "learning_rate": 5e-3, "weight_decay": 0.01, "warmup_steps": 2,
                "logging_steps": 1, "save_steps": 100, "report_to": "none", "disable_tqdm": True, "seed": 1}
    base.update(kw)
    return TrainingArguments(str(out), **base)


def _trainer(tok, out, callbacks=None, **kw):
    # Dropout on, so the restored RNG state matters; 12 examples / 4 = 3 batches: step 4 is mid-epoch 2.
    model = tiny_bert("BertForSequenceClassification", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    return Trainer(model, _args(out, **kw), train_dataset=_dataset(tok), processing_class=tok, callbacks=callbacks)


def _losses(trainer):
    return [(h["step"], h["loss"]) for h in trainer.state.log_history if "loss" in h]


@pytest.mark.parametrize("accumulation", [1, 2])
def test_resume_is_bitwise_exact(tokenizer, tmp_path, accumulation):
    full = _trainer(tokenizer, tmp_path / "full", gradient_accumulation_steps=accumulation)
    full.train()

    first = _trainer(tokenizer, tmp_path / "split", callbacks=[StopAt(3)], gradient_accumulation_steps=accumulation)
    first.train()
    assert first.state.global_step == 3
    resumed = _trainer(tokenizer, tmp_path / "split", gradient_accumulation_steps=accumulation)
    resumed.train(resume_from_checkpoint=True)  # the latest: checkpoint-3

    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert _losses(resumed) == _losses(full)


def test_checkpoint_contents_load_with_weights_only(tokenizer, tmp_path):
    trainer = _trainer(tokenizer, tmp_path, max_steps=4, save_steps=2)
    trainer.train()
    folder = tmp_path / "checkpoint-4"
    names = {p.name for p in folder.iterdir()}
    assert {"model.safetensors", "config.json", "optimizer.pt", "scheduler.pt", "rng_state.pth",
            "trainer_state.json", "training_args.json", "tokenizer.json"} <= names
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth"):
        torch.load(folder / name, weights_only=True)
    state = json.loads((folder / "trainer_state.json").read_text())
    assert state["global_step"] == 4 and len(state["log_history"]) == 4
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_save_total_limit_keeps_newest_and_best(tokenizer, tmp_path):
    data = _dataset(tokenizer)
    trainer = _trainer(tokenizer, tmp_path, max_steps=8, save_steps=2, eval_strategy="steps", eval_steps=2,
                       save_total_limit=2, load_best_model_at_end=True, metric_for_best_model="loss",
                       greater_is_better=True)  # "best" = highest loss: the earliest checkpoints
    trainer.eval_dataset = data
    trainer.train()
    best = trainer.state.best_model_checkpoint
    kept = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("checkpoint-"))
    assert best is not None and best.endswith(kept[0])
    assert kept[-1] == "checkpoint-8" and len(kept) == 2


def test_load_best_model_at_end_restores_best_weights(tokenizer, tmp_path):
    from safetensors.torch import load_file

    trainer = _trainer(tokenizer, tmp_path, max_steps=6, save_steps=2, eval_strategy="steps", eval_steps=2,
                       load_best_model_at_end=True, metric_for_best_model="loss", greater_is_better=True)
    trainer.eval_dataset = _dataset(tokenizer)
    trainer.train()
    saved = load_file(f"{trainer.state.best_model_checkpoint}/model.safetensors")
    assert torch.equal(saved["classifier.weight"], trainer.model.classifier.weight.detach())


def test_missing_checkpoint_errors(tokenizer, tmp_path):
    trainer = _trainer(tokenizer, tmp_path)
    with pytest.raises(ValueError, match="no checkpoint in"):
        trainer.train(resume_from_checkpoint=True)
    with pytest.raises(FileNotFoundError, match="is not a checkpoint folder"):
        trainer.train(resume_from_checkpoint=str(tmp_path / "nowhere"))
