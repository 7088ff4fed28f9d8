"""Trainer: the reference's training loop for headway models (and any ``nn.Module`` returning a loss).

This file holds the set-up, the data, the optimiser and the work on one micro-batch; the loop itself is
:mod:`headway.training.loop`, checkpoints :mod:`headway.training.checkpointing` and evaluation
:mod:`headway.training.evaluation` (mixins :class:`Trainer` inherits).

Subclass hooks (for the decoder, encoder-decoder and sentence trainers): :meth:`compute_loss`,
:meth:`prediction_step`, :meth:`training_step`, :meth:`create_optimizer`, :meth:`create_scheduler`,
:meth:`evaluation_loop`, ``label_names``, and the loop's (:mod:`headway.training.loop`): ``_wrap_model`` /
``_ddp_kwargs``, ``_begin_epoch``, ``_example_indices``, ``_clip_parameters``. A model receives
``num_items_in_batch`` in ``forward`` and returns a loss already divided by it when its class sets
``accepts_loss_kwargs = True``, its forward names the argument, or it is a causal LM whose forward takes
``**kwargs`` (:func:`~headway.training.utils.accepts_loss_kwargs`). A peft ``PeftModel`` is looked through
to its base model for these checks, the label names and the columns kept.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import re
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

from headway.training import distributed as D
from headway.training.arguments import TrainingArguments
from headway.training.callbacks import (
    CallbackHandler,
    DefaultFlowCallback,
    LogHistoryCallback,
    ProgressCallback,
    TensorBoardCallback,
    TrainerCallback,
    TrainerControl,
    TrainerState,
)
from headway.training.checkpointing import CheckpointMixin
from headway.training.collators import DataCollatorWithPadding, default_data_collator
from headway.training.evaluation import EvaluationMixin
from headway.training.loop import TrainingLoopMixin
from headway.training.schedules import get_scheduler
from headway.training.utils import (
    RemoveColumnsCollator,
    accepts_loss_kwargs,
    find_label_names,
    is_causal_lm,
    set_seed,
    unwrap_peft,
)

logger = logging.getLogger(__name__)

__all__ = ["Trainer"]

_NO_DECAY = re.compile(r"bias|layernorm|rmsnorm|(?:^|\.)norm(?:$|\.)|_norm(?:$|\.)", re.IGNORECASE)


class Trainer(TrainingLoopMixin, CheckpointMixin, EvaluationMixin):
    """Train, evaluate and predict with a model, the ``transformers.Trainer`` way.

    Args:
        model: the model to train (a headway ``PreTrainedModel`` or an ``nn.Module`` returning a loss).
        args: the hyper-parameters (default: ``TrainingArguments(output_dir="tmp_trainer")``).
        data_collator: batches examples (default: padding with ``processing_class`` when given, else
            ``default_data_collator``).
        train_dataset / eval_dataset: a ``datasets.Dataset``, a torch ``Dataset`` or a list of dicts;
            ``eval_dataset`` may be a dict of them (metrics get the name as prefix).
        processing_class: the tokenizer (saved with the model); ``tokenizer=`` is the older name.
        model_init: builds the model when ``model`` is None.
        compute_loss_func: ``f(outputs, labels, num_items_in_batch)`` replacing the model's loss.
        compute_metrics: ``f(EvalPrediction) -> dict`` of metrics.
        callbacks: extra callbacks (instances or classes).
        optimizers: ``(optimizer, lr_scheduler)`` to use instead of AdamW and ``lr_scheduler_type``.
        preprocess_logits_for_metrics: ``f(logits, labels) -> logits`` applied per batch in evaluation.
    """

    def __init__(
        self,
        model: nn.Module | None = None,
        args: TrainingArguments | None = None,
        data_collator: Callable | None = None,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        processing_class: Any = None,
        model_init: Callable[[], nn.Module] | None = None,
        compute_loss_func: Callable | None = None,
        compute_metrics: Callable | None = None,
        callbacks: list[TrainerCallback | type[TrainerCallback]] | None = None,
        optimizers: tuple[torch.optim.Optimizer | None, Any] = (None, None),
        preprocess_logits_for_metrics: Callable | None = None,
        *,
        tokenizer: Any = None,
    ) -> None:
        self.args = args if args is not None else TrainingArguments(output_dir="tmp_trainer")
        if not isinstance(self.args, TrainingArguments):
            raise TypeError(f"args must be a headway TrainingArguments, got {type(self.args).__name__}")
        set_seed(self.args.seed, deterministic=self.args.full_determinism)
        D.init_distributed(self.args)
        if model is None:
            if model_init is None:
                raise ValueError("Trainer needs a model or a model_init function")
            model = model_init()
        if tokenizer is not None and processing_class is not None and tokenizer is not processing_class:
            raise ValueError("Pass the tokenizer once: as processing_class (tokenizer= is its older name)")
        self.model_init = model_init
        self.model = model.to(self.args.device)
        self.model_wrapped: nn.Module = self.model
        self._is_wrapped = False  # model_wrapped is set by the loop's first run (_wrap_model)
        self.processing_class = processing_class if processing_class is not None else tokenizer
        if data_collator is None:
            has_pad = self.processing_class is not None and hasattr(self.processing_class, "pad")
            data_collator = (
                DataCollatorWithPadding(self.processing_class) if has_pad else default_data_collator
            )
        self.data_collator = data_collator
        self.train_dataset = train_dataset
        self.eval_dataset = eval_dataset
        self.compute_loss_func = compute_loss_func
        self.compute_metrics = compute_metrics
        self.preprocess_logits_for_metrics = preprocess_logits_for_metrics
        self.optimizer, self.lr_scheduler = optimizers
        if self.optimizer is not None and self.args.fsdp and self.args.world_size > 1:
            raise ValueError(
                "A ready-made optimizer cannot be used with fsdp: it must be built on the sharded model"
            )
        self.scaler = torch.amp.GradScaler("cuda") if self.args.fp16 else None

        inner = unwrap_peft(D.unwrap_model(self.model))  # peft's forward is generic: read the base model's
        self.model_accepts_loss_kwargs = accepts_loss_kwargs(inner)
        self._loss_shifts_labels = is_causal_lm(inner)
        self.label_names = (
            self.args.label_names if self.args.label_names is not None else find_label_names(inner)
        )
        self._signature_columns: list[str] | None = None

        defaults: list[TrainerCallback] = [DefaultFlowCallback(), LogHistoryCallback()]
        if "tensorboard" in self.args.report_to:
            defaults.append(TensorBoardCallback())
        if not self.args.disable_tqdm:
            defaults.append(ProgressCallback())
        self.callback_handler = CallbackHandler(
            defaults + list(callbacks or []),
            model=self.model,
            processing_class=self.processing_class,
            optimizer=self.optimizer,
            lr_scheduler=self.lr_scheduler,
            train_dataloader=None,
            eval_dataloader=None,
        )
        self.state = TrainerState(
            is_local_process_zero=self.args.local_process_index == 0,
            is_world_process_zero=self.args.process_index == 0,
        )
        self.control = TrainerControl()
        self.is_in_train = False
        self._tr_loss = torch.zeros((), device=self.args.device)
        self._current_flos = 0.0
        self._keyed_dropout = False  # set by the loop (keyed_dropout_hooks)
        self.control = self.callback_handler.call_event("on_init_end", self.args, self.state, self.control)

    # -- callbacks ---------------------------------------------------------------------------------------------
    def add_callback(self, callback: TrainerCallback | type[TrainerCallback]) -> None:
        self.callback_handler.add_callback(callback)

    def pop_callback(self, callback: TrainerCallback | type[TrainerCallback]) -> TrainerCallback | None:
        return self.callback_handler.pop_callback(callback)

    def remove_callback(self, callback: TrainerCallback | type[TrainerCallback]) -> None:
        self.callback_handler.pop_callback(callback)

    def _event(self, name: str, **kwargs: Any) -> None:
        self.control = self.callback_handler.call_event(name, self.args, self.state, self.control, **kwargs)

    def is_world_process_zero(self) -> bool:
        return self.args.process_index == 0

    # -- data ------------------------------------------------------------------------------------------------------
    def _set_signature_columns_if_needed(self) -> None:
        if self._signature_columns is None:
            params = inspect.signature(unwrap_peft(D.unwrap_model(self.model)).forward).parameters
            self._signature_columns = [*params, "label", "label_ids", *self.label_names]

    def _remove_unused_columns(self, dataset: Any, description: str) -> Any:
        """Drop ``datasets.Dataset`` columns the model's forward does not take (``remove_unused_columns``)."""
        if not self.args.remove_unused_columns or not hasattr(dataset, "column_names"):
            return dataset
        self._set_signature_columns_if_needed()
        ignored = [c for c in dataset.column_names if c not in self._signature_columns]
        if ignored:
            logger.info(
                "Columns %s of the %s set are not arguments of %s.forward and are dropped",
                ignored,
                description,
                type(D.unwrap_model(self.model)).__name__,
            )
        if len(ignored) == len(dataset.column_names):
            raise ValueError(
                f"No column of the {description} set ({dataset.column_names}) is an argument of the "
                "model's forward; set remove_unused_columns=False if that is intended"
            )
        return dataset.remove_columns(ignored) if ignored else dataset

    def _collator_for(self, dataset: Any) -> Callable:
        if not self.args.remove_unused_columns or hasattr(dataset, "column_names"):
            return self.data_collator
        self._set_signature_columns_if_needed()
        return RemoveColumnsCollator(self.data_collator, set(self._signature_columns))

    def _lengths(self, dataset: Any) -> list[int]:
        column = self.args.length_column_name
        if hasattr(dataset, "column_names") and column in dataset.column_names:
            return list(dataset[column])
        name = getattr(self.processing_class, "model_input_names", ["input_ids"])[0]
        if hasattr(dataset, "column_names"):
            return [len(x) for x in dataset[name]]
        return [len(example[name]) for example in dataset]

    def _get_train_sampler(self, dataset: Any) -> torch.utils.data.Sampler | None:
        """This process's :class:`EpochSampler` (seeded by ``data_seed`` or ``seed``, shuffled per epoch)."""
        if isinstance(dataset, IterableDataset):
            return None
        grouped = self.args.train_sampling_strategy == "group_by_length"
        return D.EpochSampler(
            len(dataset),
            shuffle=self.args.train_sampling_strategy != "sequential",
            seed=self.args.data_seed if self.args.data_seed is not None else self.args.seed,
            num_replicas=D.world_size(),
            rank=D.rank(),
            drop_last=self.args.dataloader_drop_last,
            lengths=self._lengths(dataset) if grouped else None,
            group_size=self.args.train_batch_size * self.args.gradient_accumulation_steps,
        )

    def _dataloader(
        self, dataset: Any, batch_size: int, sampler: Any, description: str, drop_last: bool = False
    ) -> DataLoader:
        dataset = self._remove_unused_columns(dataset, description)
        workers = self.args.dataloader_num_workers
        extra: dict[str, Any] = {}
        if workers > 0:
            extra = {
                "persistent_workers": self.args.dataloader_persistent_workers,
                "prefetch_factor": self.args.dataloader_prefetch_factor,
            }
        # A private generator: creating the iterator must not draw from the global RNG (exact resume).
        generator = torch.Generator().manual_seed(self.args.seed)
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            collate_fn=self._collator_for(dataset),
            num_workers=workers,
            drop_last=drop_last,
            generator=generator,
            pin_memory=self.args.dataloader_pin_memory and self.args.device.type == "cuda",
            **extra,
        )

    def get_train_dataloader(self) -> DataLoader:
        if self.train_dataset is None:
            raise ValueError("Trainer.train() needs a train_dataset")
        dataset = self._remove_unused_columns(self.train_dataset, "training")
        return self._dataloader(
            dataset,
            self.args.train_batch_size,
            self._get_train_sampler(dataset),
            "training",
            drop_last=self.args.dataloader_drop_last,
        )

    def num_examples(self, dataloader: DataLoader) -> int:
        return len(dataloader.dataset)

    # -- optimiser -----------------------------------------------------------------------------------------------
    def get_decay_parameter_names(self, model: nn.Module) -> list[str]:
        """Parameters that get weight decay: all but biases and normalisation weights."""
        names = []
        for module_name, module in model.named_modules():
            if "Norm" in type(module).__name__:
                continue
            for name, _ in module.named_parameters(recurse=False):
                full = f"{module_name}.{name}" if module_name else name
                if not _NO_DECAY.search(full):
                    names.append(full)
        return names

    def create_optimizer(self, model: nn.Module | None = None) -> torch.optim.Optimizer:
        """AdamW (fused where the device supports it) over decay / no-decay parameter groups."""
        if self.optimizer is not None:
            return self.optimizer
        model = model if model is not None else self.model_wrapped
        decay = set(self.get_decay_parameter_names(model))
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        groups = [
            {"params": [p for n, p in named if n in decay], "weight_decay": self.args.weight_decay},
            {"params": [p for n, p in named if n not in decay], "weight_decay": 0.0},
        ]
        args = self.args
        if args.optim == "sgd":
            self.optimizer = torch.optim.SGD(groups, lr=args.learning_rate)
            return self.optimizer
        kwargs: dict[str, Any] = {
            "lr": args.learning_rate,
            "betas": (args.adam_beta1, args.adam_beta2),
            "eps": args.adam_epsilon,
        }
        if args.optim == "adamw_torch_fused":
            kwargs["fused"] = True
        elif args.optim == "adamw_torch_foreach":
            kwargs["foreach"] = True
        self.optimizer = torch.optim.AdamW(groups, **kwargs)
        return self.optimizer

    def create_scheduler(
        self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None
    ) -> Any:
        if self.lr_scheduler is None:
            self.lr_scheduler = get_scheduler(
                self.args.lr_scheduler_type,
                optimizer or self.optimizer,
                num_warmup_steps=self.args.get_warmup_steps(num_training_steps),
                num_training_steps=num_training_steps,
                scheduler_specific_kwargs=self.args.lr_scheduler_kwargs,
            )
            self._created_lr_scheduler = True
        return self.lr_scheduler

    def _get_learning_rate(self) -> float:
        lr = (
            self.lr_scheduler.get_last_lr()[0]
            if self.lr_scheduler is not None
            else self.optimizer.param_groups[0]["lr"]
        )
        return lr.item() if torch.is_tensor(lr) else lr

    # -- one micro-batch --------------------------------------------------------------------------------------------
    def _prepare_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        device = self.args.device
        non_blocking = device.type == "cuda"
        return {
            k: v.to(device, non_blocking=non_blocking) if isinstance(v, torch.Tensor) else v
            for k, v in inputs.items()
        }

    def autocast_smart_context_manager(self) -> contextlib.AbstractContextManager:
        """bfloat16 / float16 autocast when ``bf16`` / ``fp16`` is set."""
        if self.args.bf16:
            return torch.autocast(self.args.device.type, dtype=torch.bfloat16)
        if self.args.fp16:
            return torch.autocast(self.args.device.type, dtype=torch.float16)
        return contextlib.nullcontext()

    compute_loss_context_manager = autocast_smart_context_manager

    def training_step(
        self, model: nn.Module, inputs: dict[str, Any], num_items_in_batch: torch.Tensor | int | None = None
    ) -> torch.Tensor:
        """Forward and backward of one micro-batch; returns its (normalised) loss, detached."""
        model.train()
        inputs = self._prepare_inputs(inputs)
        with self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs, num_items_in_batch=num_items_in_batch)
        if num_items_in_batch is None:
            loss = loss / self.current_gradient_accumulation_steps
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            loss.backward()
        return loss.detach()

    def _default_split_by_length(self, inner: nn.Module) -> bool:
        """``split_batches_by_length=None``: split on CPU for headway's own heads (per-item mean losses),
        not for an encoder-decoder, a ``compute_loss_func`` or an overridden :meth:`compute_loss`."""
        from headway.modeling import PreTrainedModel

        return (
            isinstance(inner, PreTrainedModel)
            and self.args.device.type == "cpu"
            and not getattr(inner.config, "is_encoder_decoder", False)
            and self.compute_loss_func is None
            and type(self).compute_loss is Trainer.compute_loss
        )

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        """The model's loss; with ``num_items_in_batch``, rescaled to sum(item losses) / num_items_in_batch.

        headway heads return the mean over this micro-batch's label items, so ``mean x count / total``
        is the loss of the whole accumulated (and distributed) batch. Models with
        ``accepts_loss_kwargs = True`` get ``num_items_in_batch`` and do this themselves.
        """
        labels = inputs.pop("labels", None) if self.compute_loss_func is not None else inputs.get("labels")
        if self.model_accepts_loss_kwargs and num_items_in_batch is not None:
            inputs = {**inputs, "num_items_in_batch": num_items_in_batch}
        outputs = model(**inputs)
        if self.compute_loss_func is not None:
            loss = self.compute_loss_func(outputs, labels, num_items_in_batch=num_items_in_batch)
        else:
            if isinstance(outputs, dict):
                loss = outputs.get("loss")
            else:
                loss = outputs.loss if hasattr(outputs, "loss") else outputs[0]
            if loss is None:
                raise ValueError(f"The model returned no loss; the inputs it received were {list(inputs)}")
            if num_items_in_batch is not None and not self.model_accepts_loss_kwargs and labels is not None:
                counted = labels[..., 1:] if self._loss_shifts_labels else labels
                count = counted.ne(-100).sum()
                # An all-ignored micro-batch has a NaN mean; it contributes zero (where() keeps grads finite).
                loss = torch.where(count > 0, loss * count / num_items_in_batch, torch.zeros_like(loss))
        if num_items_in_batch is not None and self.args.average_tokens_across_devices and D.world_size() > 1:
            loss = loss * D.world_size()  # DDP averages gradients; the count is already global
        return (loss, outputs) if return_outputs else loss

    # -- logging -------------------------------------------------------------------------------------------------
    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Record ``logs`` (plus epoch and step) in ``state.log_history`` and call ``on_log``."""
        if self.state.epoch is not None:
            logs["epoch"] = self.state.epoch
        self.state.log_history.append({**logs, "step": self.state.global_step})
        self._event("on_log", logs=logs)
        self.control.should_log = False  # handled (the reference's CallbackHandler resets it too)
