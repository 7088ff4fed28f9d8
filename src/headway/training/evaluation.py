"""Evaluation and prediction for the Trainer: ``evaluate``, ``predict``, the loop and its step.

Kept apart from the training loop so each file reads top to bottom; :class:`~headway.training.trainer.
Trainer` inherits these methods. Predictions come back as NumPy arrays in dataset order; sequences of
different lengths are padded with -100 along the second axis, as the reference does.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

from headway.training import distributed as D
from headway.training.utils import (
    EvalPrediction,
    PredictionOutput,
    nested_concat,
    nested_numpy,
    nested_take,
    speed_metrics,
    to_python_number,
)

logger = logging.getLogger(__name__)

__all__ = ["EvaluationMixin"]


class EvaluationMixin:
    """``evaluate`` / ``predict`` and their loop; needs the attributes the Trainer sets."""

    def _eval_sampler(self, dataset: Any) -> Any:
        if isinstance(dataset, IterableDataset):
            return None
        return D.EpochSampler(len(dataset), shuffle=False, num_replicas=D.world_size(), rank=D.rank())

    def get_eval_dataloader(self, eval_dataset: Any = None) -> DataLoader:
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        if dataset is None:
            raise ValueError("evaluate() needs an eval_dataset (given to the Trainer or to evaluate())")
        dataset = self._remove_unused_columns(dataset, "evaluation")
        return self._dataloader(dataset, self.args.eval_batch_size, self._eval_sampler(dataset), "evaluation")

    def get_test_dataloader(self, test_dataset: Any) -> DataLoader:
        dataset = self._remove_unused_columns(test_dataset, "test")
        return self._dataloader(dataset, self.args.eval_batch_size, self._eval_sampler(dataset), "test")

    def _eval_model(self) -> nn.Module:
        # FSDP must run its own forward (it gathers the shards); DDP's adds nothing without gradients.
        return self.model_wrapped if D.is_fsdp(self.model_wrapped) else self.model

    def evaluate(self, eval_dataset: Any = None, ignore_keys: list[str] | None = None,
                 metric_key_prefix: str = "eval") -> dict[str, float]:
        """Loss and ``compute_metrics`` over the evaluation set; keys start with ``metric_key_prefix``.

        A dict of datasets is evaluated one by one, each name added to the prefix.
        """
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        if isinstance(dataset, dict):
            metrics: dict[str, float] = {}
            for name, data in dataset.items():
                metrics.update(self.evaluate(data, ignore_keys, f"{metric_key_prefix}_{name}"))
            return metrics
        loader = self.get_eval_dataloader(dataset)
        start = time.time()
        output = self.evaluation_loop(loader, "Evaluation", prediction_loss_only=True if self.compute_metrics is None
                                      else None, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)
        total_batch = self.args.eval_batch_size * D.world_size()
        output.metrics.update(speed_metrics(metric_key_prefix, start, num_samples=output.num_samples,
                                            num_steps=math.ceil(output.num_samples / total_batch)))
        self.log(output.metrics)
        self._event("on_evaluate", metrics=output.metrics)
        self.control.should_evaluate = False  # handled (the reference's CallbackHandler resets it too)
        return output.metrics

    def predict(self, test_dataset: Any, ignore_keys: list[str] | None = None,
                metric_key_prefix: str = "test") -> PredictionOutput:
        """Predictions (NumPy, dataset order), labels when the dataset has them, and metrics."""
        loader = self.get_test_dataloader(test_dataset)
        start = time.time()
        output = self.evaluation_loop(loader, "Prediction", ignore_keys=ignore_keys,
                                      metric_key_prefix=metric_key_prefix)
        total_batch = self.args.eval_batch_size * D.world_size()
        output.metrics.update(speed_metrics(metric_key_prefix, start, num_samples=output.num_samples,
                                            num_steps=math.ceil(output.num_samples / total_batch)))
        self._event("on_predict", metrics=output.metrics)
        return PredictionOutput(output.predictions, output.label_ids, output.metrics)

    def evaluation_loop(self, dataloader: DataLoader, description: str, prediction_loss_only: bool | None = None,
                        ignore_keys: list[str] | None = None, metric_key_prefix: str = "eval") -> _LoopOutput:
        """Run :meth:`prediction_step` over ``dataloader``; gather losses, predictions and labels."""
        args = self.args
        loss_only = prediction_loss_only if prediction_loss_only is not None else args.prediction_loss_only
        model = self._eval_model()
        _reshard(model)
        model.eval()
        self.callback_handler.objects["eval_dataloader"] = dataloader
        logger.info("***** Running %s *****  batch size %d", description, args.eval_batch_size)
        loss_sum = torch.zeros((), device=args.device, dtype=torch.float64)
        seen = with_loss = 0
        preds: list[Any] = []
        labels: list[Any] = []
        padded_from = _first_padded_index(dataloader)
        for inputs in dataloader:
            loss, logits, label = self.prediction_step(model, inputs, loss_only, ignore_keys=ignore_keys)
            size = _batch_size(inputs)
            real = max(0, min(size, padded_from - seen))  # examples the sampler repeated to even out ranks
            seen += size
            if loss is not None and real:
                loss_sum += loss.double() * real
                with_loss += real
            if logits is not None:
                if self.preprocess_logits_for_metrics is not None:
                    logits = self.preprocess_logits_for_metrics(logits, label)
                preds.append(nested_numpy(logits))
            if label is not None:
                labels.append(nested_numpy(label))
            self._event("on_prediction_step")
        _reshard(model)
        total_loss = D.all_reduce(loss_sum).item()
        counts = D.all_reduce(torch.tensor([seen, with_loss], device=args.device))
        seen_all, with_loss_all = (int(c) for c in counts.tolist())
        predictions = self._gather(nested_concat(preds), dataloader)
        label_ids = self._gather(nested_concat(labels), dataloader)
        num_samples = len(dataloader.dataset) if not isinstance(dataloader.dataset, IterableDataset) else seen_all

        metrics: dict[str, Any] = {}
        if self.compute_metrics is not None and predictions is not None and label_ids is not None:
            metrics = to_python_number(self.compute_metrics(EvalPrediction(predictions, label_ids)))
        if with_loss_all:
            metrics["loss"] = total_loss / with_loss_all
        metrics = {k if k.startswith(f"{metric_key_prefix}_") else f"{metric_key_prefix}_{k}": v
                   for k, v in metrics.items()}
        return _LoopOutput(predictions, label_ids, metrics, num_samples)

    def _gather(self, local: Any, dataloader: DataLoader) -> Any:
        """Predictions of all processes back in dataset order (the sampler strides by rank)."""
        if D.world_size() == 1 or local is None:
            return local
        parts = D.all_gather_objects(local)
        joined = nested_concat(list(parts))
        per_rank = len(dataloader.sampler)
        world = D.world_size()
        n = len(dataloader.dataset)
        order = np.array([(g % world) * per_rank + g // world for g in range(n)])
        return nested_take(joined, order)

    def prediction_step(self, model: nn.Module, inputs: dict[str, Any], prediction_loss_only: bool,
                        ignore_keys: list[str] | None = None) -> tuple[Any, Any, Any]:
        """(loss, logits, labels) of one batch, without gradients; each may be None."""
        has_labels = bool(self.label_names) and all(inputs.get(k) is not None for k in self.label_names)
        inputs = self._prepare_inputs(inputs)
        if ignore_keys is None:
            config = getattr(D.unwrap_model(self.model), "config", None)
            ignore_keys = list(getattr(config, "keys_to_ignore_at_inference", None) or ["past_key_values"])
        labels = None
        if has_labels:
            labels = tuple(inputs[k].detach() for k in self.label_names)
            labels = labels[0] if len(labels) == 1 else labels
        with torch.no_grad(), self.compute_loss_context_manager():
            if has_labels:
                loss, outputs = self.compute_loss(model, dict(inputs), return_outputs=True)
                loss = loss.detach().mean()
            else:
                loss, outputs = None, model(**inputs)
        if prediction_loss_only:
            return loss, None, None
        if hasattr(outputs, "items"):
            logits = tuple(v for k, v in outputs.items() if k not in [*ignore_keys, "loss"] and v is not None)
        else:
            logits = tuple(outputs[1:] if has_labels else outputs)
        logits = tuple(x.detach() if isinstance(x, torch.Tensor) else x for x in logits)
        return loss, (logits[0] if len(logits) == 1 else logits), labels


class _LoopOutput:
    def __init__(self, predictions: Any, label_ids: Any, metrics: dict[str, Any], num_samples: int) -> None:
        self.predictions = predictions
        self.label_ids = label_ids
        self.metrics = metrics
        self.num_samples = num_samples


def _reshard(model: nn.Module) -> None:
    """FSDP: drop gathered copies of the weights, so the next forward gathers the current ones."""
    if D.is_fsdp(model):
        for module in model.modules():
            if hasattr(module, "reshard"):
                module.reshard()


def _first_padded_index(dataloader: DataLoader) -> int:
    """Local position from which this process's sampler repeats examples (to give every rank as many)."""
    sampler = dataloader.sampler
    if not isinstance(sampler, D.EpochSampler) or sampler.num_replicas == 1:
        return 2**62
    # local position i holds global position i * world + rank; positions >= n are repeats
    return max(0, -(-(sampler.n - sampler.rank) // sampler.num_replicas))


def _batch_size(inputs: Any) -> int:
    for value in (inputs.values() if hasattr(inputs, "values") else inputs):
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            return value.shape[0]
    return 0
