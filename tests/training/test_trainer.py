"""Trainer behaviour: callbacks, logging, evaluation metrics, data handling, precision switches."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from headway import (
    DataCollatorWithPadding,
    EarlyStoppingCallback,
    Trainer,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
    default_data_collator,
)
from headway.training.callbacks import plot_log_history

from .conftest import SENTENCES, tiny_bert


def _rows(tok, n=8, extra=False):
    texts = [SENTENCES[i % 4] + " !" * i for i in range(n)]
    enc = tok(texts)
    rows = [{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i], "label": i % 2}
            for i in range(n)]
    if extra:
        for r, t in zip(rows, texts):
            r["text"] = t
    return rows


def _args(out, **kw):
    base = {"report_to": "none", "disable_tqdm": True, "save_strategy": "no", "logging_steps": 1, "seed": 0,
                "per_device_train_batch_size": 4, "learning_rate": 5e-3}
    base.update(kw)
    return TrainingArguments(str(out), **base)


class Recorder(TrainerCallback):
    def __init__(self):
        self.events = []

    def __getattribute__(self, name):
        if name.startswith("on_"):
            def record(args, state, control, **kwargs):
                self.events.append(name)
                assert isinstance(state, TrainerState) and isinstance(control, TrainerControl)
                assert "model" in kwargs and "optimizer" in kwargs
            return record
        return super().__getattribute__(name)


def test_callback_events_and_log_file(tokenizer, tmp_path):
    rec = Recorder()
    trainer = Trainer(tiny_bert(), _args(tmp_path, max_steps=4, eval_strategy="steps", eval_steps=2, save_steps=4,
                                         save_strategy="steps", disable_tqdm=False),
                      train_dataset=_rows(tokenizer), eval_dataset=_rows(tokenizer, 4), processing_class=tokenizer,
                      callbacks=[rec])
    trainer.train()
    ev = rec.events
    assert ev[0] == "on_init_end" and ev[1] == "on_train_begin" and ev[-1] == "on_train_end"
    assert ev.count("on_step_begin") == ev.count("on_step_end") == 4
    assert ev.count("on_epoch_begin") == ev.count("on_epoch_end") == 2
    assert ev.count("on_evaluate") == 2 and ev.count("on_save") == 1
    assert ev.count("on_prediction_step") == 2 and ev.count("on_log") == 4 + 2 + 1
    lines = [json.loads(x) for x in (tmp_path / "trainer_log.jsonl").read_text().splitlines()]
    assert lines == trainer.state.log_history
    assert {"loss", "grad_norm", "learning_rate", "epoch", "step"} <= set(lines[0])
    assert "train_runtime" in lines[-1] and "train_samples_per_second" in lines[-1]


def test_training_curves_png(tmp_path):
    import matplotlib  # noqa: F401
    history = [{"loss": 1.0, "step": 1}, {"loss": 0.5, "step": 2}, {"eval_loss": 0.7, "eval_f1": 0.3, "step": 2}]
    path = plot_log_history(history, tmp_path / "curves.png")
    assert path is not None and path.read_bytes()[:4] == b"\x89PNG"


def test_control_flags_stop_training(tokenizer, tmp_path):
    class StopAfterTwo(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 2:
                control.should_training_stop = True
            return control

    trainer = Trainer(tiny_bert(), _args(tmp_path, max_steps=10), train_dataset=_rows(tokenizer),
                      processing_class=tokenizer, callbacks=[StopAfterTwo])
    assert trainer.train().global_step == 2


def test_early_stopping(tokenizer, tmp_path):
    def metrics(pred):
        return {"constant": 1.0}

    trainer = Trainer(tiny_bert(), _args(tmp_path, max_steps=20, eval_strategy="steps", eval_steps=1,
                                         save_strategy="steps", save_steps=1, load_best_model_at_end=True,
                                         metric_for_best_model="constant", save_total_limit=1),
                      train_dataset=_rows(tokenizer), eval_dataset=_rows(tokenizer, 4), processing_class=tokenizer,
                      compute_metrics=metrics, callbacks=[EarlyStoppingCallback(early_stopping_patience=2)])
    result = trainer.train()
    assert result.global_step == 3  # best at 1, no improvement at 2 and 3
    assert trainer.state.best_model_checkpoint.endswith("checkpoint-1")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("checkpoint")) == ["checkpoint-1"]
    with pytest.raises(ValueError, match="early_stopping_patience must be >= 1"):
        EarlyStoppingCallback(0)


def test_evaluate_metrics_and_predictions(tokenizer, tmp_path):
    def accuracy(eval_pred):
        logits, labels = eval_pred
        return {"accuracy": float((logits.argmax(-1) == labels).mean())}

    trainer = Trainer(tiny_bert(), _args(tmp_path), eval_dataset=_rows(tokenizer, 6), processing_class=tokenizer,
                      compute_metrics=accuracy)
    metrics = trainer.evaluate()
    assert {"eval_loss", "eval_accuracy", "eval_runtime", "eval_samples_per_second",
            "eval_steps_per_second", "epoch"} <= set(metrics)
    several = trainer.evaluate({"a": _rows(tokenizer, 2), "b": _rows(tokenizer, 3)})
    assert "eval_a_loss" in several and "eval_b_accuracy" in several
    output = trainer.predict(_rows(tokenizer, 6))
    assert output.predictions.shape == (6, 2) and output.label_ids.tolist() == [0, 1, 0, 1, 0, 1]
    assert output.metrics["test_accuracy"] == metrics["eval_accuracy"]
    assert trainer.state.log_history[-1]["eval_b_loss"] == several["eval_b_loss"]


def test_evaluation_sees_the_latest_weights(tokenizer, tmp_path):
    """Evaluate, train further, evaluate: the second evaluation uses the trained weights."""
    rows = _rows(tokenizer)
    trainer = Trainer(tiny_bert(), _args(tmp_path, max_steps=4, eval_strategy="steps", eval_steps=2),
                      train_dataset=rows, eval_dataset=rows, processing_class=tokenizer)
    trainer.train()
    last_eval = [h["eval_loss"] for h in trainer.state.log_history if "eval_loss" in h][-1]
    trainer.save_model(tmp_path / "final")
    fresh = type(trainer.model).from_pretrained(tmp_path / "final")
    again = Trainer(fresh, _args(tmp_path / "b"), eval_dataset=rows, processing_class=tokenizer)
    assert again.evaluate()["eval_loss"] == pytest.approx(last_eval, abs=1e-6)


class TorchDataset(Dataset):
    def __init__(self, rows):
        self.rows = rows

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]


@pytest.mark.parametrize("kind", ["list", "torch", "datasets"])
def test_unused_columns_are_dropped(tokenizer, tmp_path, kind):
    rows = _rows(tokenizer, extra=True)
    if kind == "torch":
        data = TorchDataset(rows)
    elif kind == "datasets":
        import datasets

        data = datasets.Dataset.from_list(rows)
    else:
        data = rows
    trainer = Trainer(tiny_bert(), _args(tmp_path, max_steps=2), train_dataset=data, processing_class=tokenizer)
    assert isinstance(trainer.data_collator, DataCollatorWithPadding)
    trainer.train()
    no_tok = Trainer(tiny_bert(), _args(tmp_path))
    assert no_tok.data_collator is default_data_collator


def test_no_usable_column_is_an_error(tokenizer, tmp_path):
    import datasets
    data = datasets.Dataset.from_dict({"text": ["a", "b"]})
    trainer = Trainer(tiny_bert(), _args(tmp_path, max_steps=1), train_dataset=data, processing_class=tokenizer)
    with pytest.raises(ValueError, match="No column of the training set"):
        trainer.train()


def test_tokenizer_alias_and_errors(tokenizer, tmp_path):
    trainer = Trainer(tiny_bert(), _args(tmp_path), tokenizer=tokenizer)
    assert trainer.processing_class is tokenizer
    with pytest.raises(ValueError, match="needs a train_dataset"):
        trainer.train()
    with pytest.raises(ValueError, match="needs a model or a model_init"):
        Trainer(None, _args(tmp_path))
    with pytest.raises(TypeError, match="headway TrainingArguments"):
        Trainer(tiny_bert(), args={"output_dir": str(tmp_path)})


@pytest.mark.parametrize("switch", [{"bf16": True}, {"gradient_checkpointing": True}, {"group_by_length": True},
                                    {"optim": "adamw_torch"}, {"lr_scheduler_type": "cosine", "warmup_ratio": 0.5},
                                    {"dataloader_num_workers": 1}, {"torch_compile": False, "max_grad_norm": 0.0}])
def test_switches_train(tokenizer, tmp_path, switch):
    trainer = Trainer(tiny_bert(), _args(tmp_path, max_steps=3, **switch), train_dataset=_rows(tokenizer),
                      processing_class=tokenizer)
    result = trainer.train()
    assert result.global_step == 3 and np.isfinite(result.training_loss)


def test_sequence_labels_count_examples_with_accumulation(tokenizer, tmp_path):
    """Sequence-level labels: 4 x 2 accumulation equals batch 8 (the count is examples)."""
    rows = _rows(tokenizer, 8)
    states = []
    for batch, acc in ((8, 1), (4, 2), (3, 3)):  # 3 x 3: uneven micro-batches (3, 3, 2)
        trainer = Trainer(tiny_bert(), _args(tmp_path / f"{batch}", max_steps=1, per_device_train_batch_size=batch,
                                             gradient_accumulation_steps=acc, learning_rate=1e-3), train_dataset=rows,
                          processing_class=tokenizer)
        trainer.train()
        states.append(trainer.model.state_dict())
    for other in states[1:]:
        assert max((states[0][k] - other[k]).abs().max().item() for k in other) < 1e-6


def test_custom_compute_loss_receives_num_items(tokenizer, tmp_path):
    seen = []

    class MyTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if model.training:
                seen.append(int(num_items_in_batch))
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    MyTrainer(tiny_bert(), _args(tmp_path, max_steps=1, gradient_accumulation_steps=2),
              train_dataset=_rows(tokenizer), processing_class=tokenizer).train()
    assert seen == [8, 8]


def test_weight_decay_groups(tokenizer, tmp_path):
    trainer = Trainer(tiny_bert(), _args(tmp_path, weight_decay=0.1))
    opt = trainer.create_optimizer()
    decay, no_decay = opt.param_groups
    names = {id(p): n for n, p in trainer.model.named_parameters()}
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(not names[id(p)].endswith("bias") and "LayerNorm" not in names[id(p)] for p in decay["params"])
    assert any("LayerNorm" in names[id(p)] for p in no_decay["params"])
    assert opt.defaults.get("fused") is True
    torch.testing.assert_close(len(decay["params"]) + len(no_decay["params"]),
                               len(list(trainer.model.parameters())))


def test_predict_without_labels(tokenizer, tmp_path):
    rows = [{k: v for k, v in r.items() if k != "label"} for r in _rows(tokenizer, 5)]
    output = Trainer(tiny_bert(), _args(tmp_path), processing_class=tokenizer).predict(rows)
    assert output.predictions.shape == (5, 2) and output.label_ids is None
    assert "test_loss" not in output.metrics and "test_runtime" in output.metrics


def test_iterable_dataset_with_max_steps(tokenizer, tmp_path):
    rows = _rows(tokenizer, 8)

    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            while True:
                yield from rows

    trainer = Trainer(tiny_bert(), _args(tmp_path, max_steps=3), train_dataset=Stream(), processing_class=tokenizer)
    assert trainer.train().global_step == 3
    with pytest.raises(ValueError, match="needs max_steps > 0"):
        Trainer(tiny_bert(), _args(tmp_path), train_dataset=Stream(), processing_class=tokenizer).train()


def test_report_to_tensorboard_needs_the_package(tmp_path):
    import importlib.util

    if importlib.util.find_spec("tensorboard") is not None:
        pytest.skip("tensorboard is installed")
    with pytest.raises(ValueError, match="needs the 'tensorboard' package"):
        TrainingArguments(str(tmp_path), report_to="tensorboard")
