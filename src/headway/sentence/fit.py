"""The legacy ``model.fit(train_objectives=[(dataloader, loss)], epochs=..., warmup_steps=...)`` training API.

sentence-transformers 2 trained with ``fit`` over DataLoaders of :class:`InputExample`; version 3 and
later keep the call but run it through the trainer, and so does :func:`fit` here: each DataLoader is read
once into a ``datasets.Dataset`` (columns ``sentence_0``, ``sentence_1``..., and ``label`` unless every
label is 0), the objectives become a dict of data sets and losses batched round-robin, and the optimizer
and schedule are the ones ``fit`` always built (AdamW at 2e-5, linear warm-up and decay). The weights
after ``fit`` equal sentence-transformers 6.2's for the same data and seed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from headway.sentence.evaluation import SentenceEvaluator
from headway.sentence.samplers import BatchSamplers, MultiDatasetBatchSamplers
from headway.training.callbacks import TrainerCallback
from headway.training.schedules import get_scheduler

logger = logging.getLogger(__name__)

__all__ = ["InputExample", "fit"]

# fit's scheduler names -> headway's lr_scheduler_type
SCHEDULERS = {
    "constantlr": "constant",
    "warmupconstant": "constant_with_warmup",
    "warmuplinear": "linear",
    "warmupcosine": "cosine",
    "warmupcosinewithhardrestarts": "cosine_with_restarts",
}


class InputExample:
    """One training example of the legacy API: its texts and a label."""

    def __init__(self, guid: str = "", texts: list[str] | None = None, label: float = 0) -> None:
        self.guid = guid
        self.texts = list(texts or [])
        self.label = label

    def __repr__(self) -> str:
        return f"InputExample(guid={self.guid!r}, label={self.label!r}, texts={'; '.join(self.texts)!r})"


class _EvaluateAtEpochEnd(TrainerCallback):
    """Runs the evaluator after every epoch (``fit`` always did) and reports it as an evaluation."""

    def __init__(self, evaluator: SentenceEvaluator, output_path: str | None) -> None:
        self.evaluator = evaluator
        self.output_path = os.path.join(output_path, "eval") if output_path is not None else None
        self.trainer: Any = None

    def on_epoch_end(
        self, args: Any, state: Any, control: Any, model: nn.Module | None = None, **kwargs: Any
    ) -> None:
        if self.output_path is not None:
            os.makedirs(self.output_path, exist_ok=True)
        metrics = self.evaluator(
            model, output_path=self.output_path, epoch=state.epoch, steps=state.global_step
        )
        if not isinstance(metrics, dict):
            metrics = {"evaluator": metrics}
        metrics = {k if k.startswith("eval_") else f"eval_{k}": v for k, v in metrics.items()}
        if self.trainer is not None:
            self.trainer.callback_handler.call_event("on_evaluate", args, state, control, metrics=metrics)


def _primary(evaluator: SentenceEvaluator | None, metrics: dict[str, float]) -> float | None:
    key = getattr(evaluator, "primary_metric", None) or "evaluator"
    return next((value for name, value in metrics.items() if name.endswith(key)), None)


class _ReportScore(TrainerCallback):
    """Calls fit's ``callback(score, epoch, steps)`` with the evaluator's primary score."""

    def __init__(self, callback: Callable[[float, float, int], None], evaluator: SentenceEvaluator) -> None:
        self.callback = callback
        self.evaluator = evaluator

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None, **kwargs: Any
    ) -> None:
        score = _primary(self.evaluator, metrics or {})
        if score is not None:
            self.callback(score, state.epoch, state.global_step)


class _SaveModel(TrainerCallback):
    """Saves the model to ``output_path``: at each better evaluation score, or at the end without an evaluator."""

    def __init__(self, output_path: str, evaluator: SentenceEvaluator | None, save_best_model: bool) -> None:
        self.output_path = output_path
        self.evaluator = evaluator
        self.save_best_model = save_best_model
        self.best: float | None = None

    def on_evaluate(
        self,
        args: Any,
        state: Any,
        control: Any,
        metrics: dict[str, float] | None = None,
        model: nn.Module | None = None,
        **kwargs: Any,
    ) -> None:
        if self.evaluator is None or not self.save_best_model:
            return
        score = _primary(self.evaluator, metrics or {})
        better = getattr(self.evaluator, "greater_is_better", True)
        if score is not None and (self.best is None or (score > self.best if better else score < self.best)):
            self.best = score
            model.save(self.output_path)

    def on_train_end(
        self, args: Any, state: Any, control: Any, model: nn.Module | None = None, **kwargs: Any
    ) -> None:
        if self.evaluator is None:
            model.save(self.output_path)


def _default_checkpoint_dir() -> str:
    """``checkpoints/model``, or ``checkpoints/model_N`` when that exists and is not empty."""
    name, n = "checkpoints/model", 1
    while Path(name).exists() and any(Path(name).iterdir()):
        name, n = f"checkpoints/model_{n}", n + 1
    return name


def _read_objective(loader: DataLoader) -> Any:
    """A DataLoader of InputExamples -> a ``datasets.Dataset`` of its texts (and labels), in its order."""
    from datasets import Dataset

    loader.collate_fn = lambda batch: batch
    texts, labels = [], []
    for batch in loader:
        for example in batch:
            texts.append(example.texts)
            labels.append(example.label)
    data = Dataset.from_dict({f"sentence_{i}": list(column) for i, column in enumerate(zip(*texts))})
    try:
        all_zero = set(labels) == {0}
    except TypeError:  # unhashable labels (arrays) are real labels
        all_zero = False
    return data if all_zero else data.add_column("label", labels)


def fit(
    model: nn.Module,
    train_objectives: Iterable[tuple[DataLoader, nn.Module]],
    evaluator: SentenceEvaluator | None = None,
    epochs: int = 1,
    steps_per_epoch: int | None = None,
    scheduler: str = "WarmupLinear",
    warmup_steps: int = 10000,
    optimizer_class: type[torch.optim.Optimizer] = torch.optim.AdamW,
    optimizer_params: dict[str, Any] | None = None,
    weight_decay: float = 0.01,
    evaluation_steps: int = 0,
    output_path: str | None = None,
    save_best_model: bool = True,
    max_grad_norm: float = 1,
    use_amp: bool = False,
    callback: Callable[[float, float, int], None] | None = None,
    show_progress_bar: bool = True,
    checkpoint_path: str | None = None,
    checkpoint_save_steps: int = 500,
    checkpoint_save_total_limit: int = 0,
    resume_from_checkpoint: bool = False,
) -> None:
    """Train ``model`` on ``(DataLoader of InputExample, loss)`` objectives, as sentence-transformers' ``fit``.

    Args:
        model: The SentenceTransformer.
        train_objectives: ``(dataloader, loss)`` pairs; the loader's batch size is the training batch size.
        evaluator: Run every ``evaluation_steps`` steps and after every epoch.
        epochs: Passes over the data.
        steps_per_epoch: With one epoch, stop after this many steps.
        scheduler: "constantlr", "warmupconstant", "warmuplinear", "warmupcosine" or
            "warmupcosinewithhardrestarts".
        warmup_steps: Steps of linear warm-up.
        optimizer_class / optimizer_params / weight_decay: The optimizer (AdamW, lr 2e-5, decay 0.01
            except biases and LayerNorm weights).
        output_path: Where the model is saved: at each best evaluation, or at the end without an evaluator.
        save_best_model: Save at each better evaluation score.
        max_grad_norm: Gradient clipping.
        use_amp: float16 autocast (CUDA).
        callback: ``callback(score, epoch, steps)`` after each evaluation.
        show_progress_bar: Show the trainer's progress bar.
        checkpoint_path / checkpoint_save_steps / checkpoint_save_total_limit: Trainer checkpoints.
        resume_from_checkpoint: Resume from the latest checkpoint in ``checkpoint_path``.
    """
    from datasets import DatasetDict

    from headway.sentence.trainer import SentenceTransformerTrainer
    from headway.sentence.training_args import SentenceTransformerTrainingArguments

    objectives = list(train_objectives)
    if not objectives:
        raise ValueError("fit() needs at least one (dataloader, loss) objective")
    loaders, losses = zip(*objectives)
    batch_size, batch_sampler, data = 8, BatchSamplers.BATCH_SAMPLER, {}
    for i, loader in enumerate(loaders, start=1):
        if type(loader).__name__ == "NoDuplicatesDataLoader":
            batch_sampler = BatchSamplers.NO_DUPLICATES
        size = getattr(loader, "batch_size", None) or getattr(loader.batch_sampler, "batch_size", None)
        batch_size = size or batch_size
        data[f"_dataset_{i}"] = _read_objective(loader)
    data = DatasetDict(data)
    named_losses = {f"_dataset_{i}": loss for i, loss in enumerate(losses, start=1)}
    max_steps = -1
    if steps_per_epoch:
        if epochs == 1:
            max_steps = steps_per_epoch
        else:
            logger.warning(
                "steps_per_epoch only applies with epochs=1; training on the whole data each epoch"
            )
            steps_per_epoch = None
    args = SentenceTransformerTrainingArguments(
        output_dir=checkpoint_path or _default_checkpoint_dir(),
        batch_sampler=batch_sampler,
        multi_dataset_batch_sampler=MultiDatasetBatchSamplers.ROUND_ROBIN,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size,
        num_train_epochs=epochs,
        max_steps=max_steps,
        eval_strategy="steps" if evaluation_steps and evaluation_steps > 0 else "no",
        eval_steps=evaluation_steps or None,
        max_grad_norm=max_grad_norm,
        fp16=use_amp,
        disable_tqdm=not show_progress_bar,
        save_strategy="steps" if checkpoint_path is not None else "no",
        save_steps=checkpoint_save_steps,
        save_total_limit=checkpoint_save_total_limit,
    )
    if not steps_per_epoch:
        steps_per_epoch = min(len(part) // batch_size for part in data.values())
    total_steps = max_steps if max_steps > 0 else int(steps_per_epoch * epochs) * len(losses)

    named = list(nn.ModuleDict({"model": model, **named_losses}).named_parameters())
    no_decay = ("bias", "LayerNorm.bias", "LayerNorm.weight")
    groups = [
        {
            "params": [p for n, p in named if not any(nd in n for nd in no_decay)],
            "weight_decay": weight_decay,
        },
        {"params": [p for n, p in named if any(nd in n for nd in no_decay)], "weight_decay": 0.0},
    ]
    optimizer = optimizer_class(
        groups, **(optimizer_params if optimizer_params is not None else {"lr": 2e-5})
    )
    kind = SCHEDULERS.get(scheduler.lower())
    if kind is None:
        raise ValueError(f"Unknown scheduler {scheduler!r}; expected one of {sorted(SCHEDULERS)} (any case)")
    schedule = get_scheduler(kind, optimizer, num_warmup_steps=warmup_steps, num_training_steps=total_steps)

    callbacks: list[TrainerCallback] = []
    at_epoch_end = None
    if evaluator is not None:
        at_epoch_end = _EvaluateAtEpochEnd(evaluator, output_path)
        callbacks.append(at_epoch_end)
        if callback is not None:
            callbacks.append(_ReportScore(callback, evaluator))
    if output_path is not None:
        callbacks.append(_SaveModel(output_path, evaluator, save_best_model))
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=data,
        loss=named_losses,
        evaluator=evaluator,
        optimizers=(optimizer, schedule),
        callbacks=callbacks,
    )
    if at_epoch_end is not None:
        at_epoch_end.trainer = trainer
    resume: str | None = None
    if checkpoint_path is not None and resume_from_checkpoint:
        from headway.training.checkpointing import get_last_checkpoint

        resume = get_last_checkpoint(checkpoint_path)
        if resume is None:
            logger.warning("No checkpoint in %s to resume from: training from the start", checkpoint_path)
    trainer.train(resume_from_checkpoint=resume)
