"""The callback protocol of the training loop, its state, and the callbacks the Trainer installs.

Events (each called as ``callback.on_x(args, state, control, **kwargs)``; a callback may return a
changed ``control``): on_init_end, on_train_begin, on_epoch_begin, on_step_begin, on_substep_end,
on_step_end, on_log, on_evaluate, on_save, on_prediction_step, on_predict, on_epoch_end, on_train_end.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from headway.checkpoint import atomic_write_text
from headway.training.arguments import TrainingArguments

logger = logging.getLogger(__name__)

__all__ = [
    "CallbackHandler",
    "DefaultFlowCallback",
    "EarlyStoppingCallback",
    "LogHistoryCallback",
    "ProgressCallback",
    "TensorBoardCallback",
    "TrainerCallback",
    "TrainerControl",
    "TrainerState",
]


@dataclass
class TrainerState:
    """Where training stands; saved as ``trainer_state.json`` in every checkpoint (reference field names).

    One step is one optimiser update (``gradient_accumulation_steps`` forward/backward passes).
    """

    epoch: float | None = 0
    global_step: int = 0
    max_steps: int = 0
    logging_steps: int = 500
    eval_steps: int = 500
    save_steps: int = 500
    train_batch_size: int | None = None
    num_train_epochs: int = 0
    num_input_tokens_seen: int = 0
    total_flos: float = 0
    log_history: list[dict[str, float]] = field(default_factory=list)
    best_metric: float | None = None
    best_global_step: int | None = None
    best_model_checkpoint: str | None = None
    is_local_process_zero: bool = True
    is_world_process_zero: bool = True
    is_hyper_param_search: bool = False
    trial_name: str | None = None
    trial_params: dict[str, Any] | None = None
    stateful_callbacks: dict[str, Any] = field(default_factory=dict)

    def save_to_json(self, json_path: str | Path) -> None:
        """Write the state as JSON, atomically."""
        atomic_write_text(Path(json_path), json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load_from_json(cls, json_path: str | Path) -> TrainerState:
        from headway.jsonfile import read_json

        data = read_json(json_path, what="trainer state")
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def compute_steps(self, args: TrainingArguments, max_steps: int) -> None:
        """Absolute logging/eval/save intervals (a value below 1 is a fraction of ``max_steps``)."""
        for kind in ("logging", "eval", "save"):
            steps = getattr(args, f"{kind}_steps")
            if steps is not None:
                setattr(self, f"{kind}_steps", math.ceil(max_steps * steps) if steps < 1 else int(steps))


@dataclass
class TrainerControl:
    """Flags callbacks set to steer the loop; the step flags are reset at each step."""

    should_training_stop: bool = False
    should_epoch_stop: bool = False
    should_save: bool = False
    should_evaluate: bool = False
    should_log: bool = False

    def _new_training(self) -> None:
        self.should_training_stop = False

    def _new_epoch(self) -> None:
        self.should_epoch_stop = False

    def _new_step(self) -> None:
        self.should_save = self.should_evaluate = self.should_log = False


class TrainerCallback:
    """Base class: override the events you need. ``kwargs`` carry model, optimizer, lr_scheduler,
    processing_class, train_dataloader, eval_dataloader, and ``logs`` (on_log) / ``metrics`` (on_evaluate).
    """

    def on_init_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs): ...
    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs): ...
    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs): ...
    def on_epoch_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs): ...
    def on_epoch_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs): ...
    def on_step_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs): ...
    def on_substep_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs): ...
    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs): ...
    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs): ...
    def on_predict(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs): ...
    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs): ...
    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs): ...
    def on_prediction_step(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs
    ): ...

    def state(self) -> dict[str, Any] | None:
        """What to save in ``trainer_state.json`` to restore this callback on resume (None: nothing)."""
        return None

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state` returned."""


class CallbackHandler:
    """Calls every callback's event in order, passing the trainer's objects as keyword arguments."""

    def __init__(self, callbacks: list[TrainerCallback], **objects: Any) -> None:
        self.callbacks: list[TrainerCallback] = []
        for cb in callbacks:
            self.add_callback(cb)
        self.objects = objects  # model, processing_class, optimizer, lr_scheduler, dataloaders

    def add_callback(self, callback: TrainerCallback | type[TrainerCallback]) -> None:
        cb = callback() if isinstance(callback, type) else callback
        if any(type(c) is type(cb) for c in self.callbacks):
            logger.warning("Adding a second %s to the callbacks", type(cb).__name__)
        self.callbacks.append(cb)

    def pop_callback(self, callback: TrainerCallback | type[TrainerCallback]) -> TrainerCallback | None:
        for cb in self.callbacks:
            if cb is callback or (isinstance(callback, type) and type(cb) is callback):
                self.callbacks.remove(cb)
                return cb
        return None

    def call_event(self, event: str, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                   **kwargs: Any) -> TrainerControl:
        for cb in self.callbacks:
            result = getattr(cb, event)(args, state, control, **self.objects, **kwargs)
            if result is not None:
                control = result
        return control


class DefaultFlowCallback(TrainerCallback):
    """Decides when to log, evaluate and save from the ``*_strategy`` / ``*_steps`` arguments."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 1 and args.logging_first_step:
            control.should_log = True
        if args.logging_strategy == "steps" and state.global_step % state.logging_steps == 0:
            control.should_log = True
        eval_due = args.eval_delay <= state.global_step
        if args.eval_strategy == "steps" and state.global_step % state.eval_steps == 0 and eval_due:
            control.should_evaluate = True
        if args.save_strategy == "steps" and state.save_steps > 0 and state.global_step % state.save_steps == 0:
            control.should_save = True
        if state.global_step >= state.max_steps:
            control.should_training_stop = True
            if args.eval_strategy == "steps" and state.global_step % state.eval_steps != 0 and eval_due:
                control.should_evaluate = True
            if args.save_strategy == "steps":
                control.should_save = True
        return control

    def on_epoch_end(self, args, state, control, **kwargs):
        if args.logging_strategy == "epoch":
            control.should_log = True
        if args.eval_strategy == "epoch" and args.eval_delay <= state.epoch:
            control.should_evaluate = True
        if args.save_strategy == "epoch":
            control.should_save = True
        return control


class ProgressCallback(TrainerCallback):
    """A tqdm bar over the optimiser steps showing the last logged loss, and one over prediction batches."""

    def __init__(self) -> None:
        self.training_bar: Any = None
        self.prediction_bar: Any = None

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            from tqdm.auto import tqdm

            self.training_bar = tqdm(total=state.max_steps, initial=state.global_step, dynamic_ncols=True)

    def on_step_end(self, args, state, control, **kwargs):
        if self.training_bar is not None:
            self.training_bar.update(state.global_step - self.training_bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.training_bar is not None and logs:
            shown = {k: f"{v:.4g}" for k, v in logs.items() if k in ("loss", "eval_loss", "learning_rate")}
            if shown:
                self.training_bar.set_postfix(shown, refresh=False)

    def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
        if state.is_world_process_zero and eval_dataloader is not None and hasattr(eval_dataloader, "__len__"):
            if self.prediction_bar is None:
                from tqdm.auto import tqdm

                self.prediction_bar = tqdm(total=len(eval_dataloader), leave=self.training_bar is None,
                                           dynamic_ncols=True)
            self.prediction_bar.update(1)

    def _close_prediction_bar(self) -> None:
        if self.prediction_bar is not None:
            self.prediction_bar.close()
            self.prediction_bar = None

    def on_evaluate(self, args, state, control, **kwargs):
        self._close_prediction_bar()

    def on_predict(self, args, state, control, **kwargs):
        self._close_prediction_bar()

    def on_train_end(self, args, state, control, **kwargs):
        if self.training_bar is not None:
            self.training_bar.close()
            self.training_bar = None


class LogHistoryCallback(TrainerCallback):
    """Appends every log entry to ``output_dir/trainer_log.jsonl``; at the end of training draws the loss
    and evaluation curves to ``output_dir/training_curves.png`` (skipped when matplotlib is missing)."""

    log_name = "trainer_log.jsonl"
    plot_name = "training_curves.png"

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        path = Path(args.output_dir) / self.log_name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({**logs, "step": state.global_step}) + "\n")

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            plot_log_history(state.log_history, Path(args.output_dir) / self.plot_name)


def plot_log_history(log_history: list[dict[str, float]], path: Path) -> Path | None:
    """Training loss and every ``eval_*`` metric against the step, as a PNG; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.debug("matplotlib is not installed: no training curves plotted")
        return None
    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e]
    evals = sorted({k for e in log_history for k in e if k.startswith("eval_")
                    and k not in ("eval_runtime", "eval_samples_per_second", "eval_steps_per_second")})
    if not train and not evals:
        return None
    fig, axes = plt.subplots(1, 1 + bool(evals), figsize=(6 * (1 + bool(evals)), 4), squeeze=False)
    if train:
        axes[0][0].plot(*zip(*train), label="train loss")
    if "eval_loss" in evals:
        axes[0][0].plot(*zip(*[(e["step"], e["eval_loss"]) for e in log_history if "eval_loss" in e]),
                        label="eval loss", marker="o")
    axes[0][0].set(xlabel="step", ylabel="loss")
    if evals:
        for key in [k for k in evals if k != "eval_loss"]:
            axes[0][1].plot(*zip(*[(e["step"], e[key]) for e in log_history if key in e]), label=key, marker="o")
        axes[0][1].set(xlabel="step", ylabel="metric")
    for ax in axes[0]:
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
    return path


class TensorBoardCallback(TrainerCallback):
    """Writes every numeric log value as a TensorBoard scalar under ``logging_dir`` (``report_to="tensorboard"``)."""

    def __init__(self) -> None:
        self.writer: Any = None

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero and self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=args.logging_dir)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.writer is None:
            return
        for key, value in (logs or {}).items():
            if isinstance(value, (int, float)):
                name = key.replace("eval_", "eval/", 1) if key.startswith("eval_") else f"train/{key}"
                self.writer.add_scalar(name, value, state.global_step)
        self.writer.flush()

    def on_train_end(self, args, state, control, **kwargs):
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class EarlyStoppingCallback(TrainerCallback):
    """Stops training when ``metric_for_best_model`` has not improved (by more than the threshold) for
    ``early_stopping_patience`` evaluations in a row."""

    def __init__(self, early_stopping_patience: int = 1, early_stopping_threshold: float | None = 0.0) -> None:
        if early_stopping_patience < 1:
            raise ValueError(f"early_stopping_patience must be >= 1, got {early_stopping_patience}")
        self.early_stopping_patience = early_stopping_patience
        self.early_stopping_threshold = early_stopping_threshold or 0.0
        self.early_stopping_patience_counter = 0

    def on_train_begin(self, args, state, control, **kwargs):
        if args.metric_for_best_model is None:
            raise ValueError("EarlyStoppingCallback requires metric_for_best_model (or load_best_model_at_end=True)")
        if args.eval_strategy == "no":
            raise ValueError('EarlyStoppingCallback requires eval_strategy "steps" or "epoch"')
        if not args.load_best_model_at_end:
            logger.warning("EarlyStoppingCallback without load_best_model_at_end=True: the best model is not "
                           "reloaded at the end")

    def check_metric_value(self, args: TrainingArguments, state: TrainerState, metric_value: float) -> None:
        best = state.best_metric
        better = best is None or (metric_value > best if args.greater_is_better else metric_value < best)
        if better and (best is None or abs(metric_value - best) > self.early_stopping_threshold):
            self.early_stopping_patience_counter = 0
        else:
            self.early_stopping_patience_counter += 1

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        key = args.metric_for_best_model
        key = key if key.startswith("eval_") else f"eval_{key}"
        value = (metrics or {}).get(key)
        if value is None:
            logger.warning("EarlyStoppingCallback: metric %r not in the evaluation metrics; not stopping", key)
            return
        self.check_metric_value(args, state, value)
        if self.early_stopping_patience_counter >= self.early_stopping_patience:
            control.should_training_stop = True

    def state(self) -> dict[str, Any]:
        return {
            "args": {"early_stopping_patience": self.early_stopping_patience,
                     "early_stopping_threshold": self.early_stopping_threshold},
            "attributes": {"early_stopping_patience_counter": self.early_stopping_patience_counter},
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.early_stopping_patience_counter = state.get("attributes", {}).get("early_stopping_patience_counter", 0)
