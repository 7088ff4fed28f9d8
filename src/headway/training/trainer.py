"""Trainer: the reference's training loop for headway models (and any ``nn.Module`` returning a loss).

The loop, top to bottom (:meth:`Trainer._inner_training_loop`): per epoch, a seeded sampler gives this
process its indices; each optimiser step takes ``gradient_accumulation_steps`` micro-batches, counts
the label items in all of them (across processes), and back-propagates each micro-batch's loss
normalised by that count, so accumulation and padding do not change the update. The running loss stays
on the device and is read only at logging steps. On CPU, each micro-batch of a headway model is split
into its shorter and longer rows, each padded on its own (``split_batches_by_length``): fewer padded
tokens, the same update up to rounding. Gradient clipping is folded into the fused AdamW kernel.
Dropout is keyed (``keyed_dropout``, :mod:`headway.nn.dropout`): each row's masks follow from the seed,
the step and the row's index in the step's global batch, so the weights do not depend on how many
processes share that batch, how it is accumulated or split, or how far it is padded.

Subclass hooks (for the decoder and encoder-decoder trainers): :meth:`compute_loss`,
:meth:`prediction_step`, :meth:`training_step`, :meth:`create_optimizer`, :meth:`create_scheduler`,
:meth:`evaluation_loop`, ``label_names``. A model receives ``num_items_in_batch`` in ``forward`` and
returns a loss already divided by it when its class sets ``accepts_loss_kwargs = True``, its forward names
the argument, or it is a causal LM whose forward takes ``**kwargs``
(:func:`~headway.training.utils.accepts_loss_kwargs`). A peft ``PeftModel`` is looked through to its base
model for these checks, the label names and the columns kept.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import math
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

from headway.training import checkpointing as ckpt
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
from headway.training.schedules import get_scheduler
from headway.training.utils import (
    RemoveColumnsCollator,
    TrainOutput,
    accepts_loss_kwargs,
    batch_rows,
    dropout_context,
    example_indices,
    find_label_names,
    is_causal_lm,
    keyed_dropout_hooks,
    set_seed,
    speed_metrics,
    split_rows_by_length,
    unwrap_peft,
)

logger = logging.getLogger(__name__)

__all__ = ["Trainer"]

_NO_DECAY = re.compile(r"bias|layernorm|rmsnorm|(?:^|\.)norm(?:$|\.)|_norm(?:$|\.)", re.IGNORECASE)


class Trainer(CheckpointMixin, EvaluationMixin):
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

    # -- training --------------------------------------------------------------------------------------------------
    def train(
        self,
        resume_from_checkpoint: str | bool | None = None,
        trial: Any = None,
        ignore_keys_for_eval: list[str] | None = None,
    ) -> TrainOutput:
        """Train; ``resume_from_checkpoint`` is a checkpoint folder, or True for the latest in output_dir.

        When it is not given, ``args.resume_from_checkpoint`` is used.
        """
        if trial is not None:
            raise ValueError("Hyper-parameter search (trial=) is not supported by headway's Trainer")
        args = self.args
        resume = resume_from_checkpoint if resume_from_checkpoint is not None else args.resume_from_checkpoint
        if resume is True:
            resume = ckpt.get_last_checkpoint(args.output_dir)
            if resume is None:
                raise ValueError(
                    f"resume_from_checkpoint=True but there is no checkpoint in {args.output_dir}"
                )
        elif resume is False:
            resume = None
        if resume is not None:
            if not Path(resume, ckpt.TRAINER_STATE_NAME).is_file():
                raise FileNotFoundError(f"{resume} is not a checkpoint folder (no {ckpt.TRAINER_STATE_NAME})")
            self._load_weights(resume)
        if args.torch_compile:
            logger.warning("torch_compile=True is accepted but not applied by headway's Trainer")
        if args.gradient_checkpointing and hasattr(
            D.unwrap_model(self.model), "gradient_checkpointing_enable"
        ):
            D.unwrap_model(self.model).gradient_checkpointing_enable(args.gradient_checkpointing_kwargs)
        self.is_in_train = True
        try:
            return self._inner_training_loop(
                str(resume) if resume is not None else None, ignore_keys_for_eval
            )
        finally:
            self.is_in_train = False

    def _training_values(self, loader: DataLoader) -> tuple[int, int, int, int]:
        """(steps per epoch, max steps, epochs, samples) for this run."""
        args = self.args
        if isinstance(loader.dataset, IterableDataset) or not hasattr(loader, "__len__"):
            if args.max_steps <= 0:
                raise ValueError("A dataset without a length needs max_steps > 0")
            return args.max_steps, args.max_steps, 2**31, args.max_steps * self._total_batch_size()
        per_epoch = max(math.ceil(len(loader) / args.gradient_accumulation_steps), 1)
        if args.max_steps > 0:
            max_steps = args.max_steps
            epochs = math.ceil(max_steps / per_epoch)
            samples = max_steps * self._total_batch_size()
        else:
            max_steps = math.ceil(args.num_train_epochs * per_epoch)
            epochs = math.ceil(args.num_train_epochs)
            samples = int(len(loader.dataset) * args.num_train_epochs)
        return per_epoch, max_steps, epochs, samples

    def _total_batch_size(self) -> int:
        return self.args.train_batch_size * self.args.gradient_accumulation_steps * D.world_size()

    def _inner_training_loop(self, resume: str | None, ignore_keys_for_eval: list[str] | None) -> TrainOutput:
        args = self.args
        loader = self.get_train_dataloader()
        per_epoch, max_steps, num_epochs, num_samples = self._training_values(loader)
        sampler = loader.sampler if isinstance(loader.sampler, D.EpochSampler) else None
        steps_in_epoch = len(loader) if sampler is not None else max_steps * args.gradient_accumulation_steps

        self.state = TrainerState(
            train_batch_size=args.train_batch_size,
            is_local_process_zero=args.local_process_index == 0,
            is_world_process_zero=args.process_index == 0,
        )
        self.state.compute_steps(args, max_steps)
        epochs_trained, updates_done_in_epoch = 0, 0
        if resume is not None:
            self.state = TrainerState.load_from_json(Path(resume) / ckpt.TRAINER_STATE_NAME)
            self.state.is_world_process_zero = args.process_index == 0
            self.state.is_local_process_zero = args.local_process_index == 0
            for cb in self.callback_handler.callbacks:
                saved = self.state.stateful_callbacks.get(type(cb).__name__)
                if saved is not None:
                    cb.load_state(saved)
            epochs_trained = self.state.global_step // per_epoch
            if not args.ignore_data_skip:
                updates_done_in_epoch = self.state.global_step % per_epoch
        self.state.max_steps, self.state.num_train_epochs = max_steps, num_epochs

        if not getattr(self, "_is_wrapped", False):
            self.model_wrapped, self._is_wrapped = D.wrap_model(self.model, args), True
        model = self.model_wrapped
        if getattr(self, "_created_lr_scheduler", False):
            self.lr_scheduler, self._created_lr_scheduler = None, False
        self.create_optimizer(model)
        self.create_scheduler(max_steps)
        if resume is not None:
            self._load_optimizer_and_scheduler(resume)
        self.callback_handler.objects.update(
            model=self.model,
            optimizer=self.optimizer,
            lr_scheduler=self.lr_scheduler,
            train_dataloader=loader,
        )
        inner = D.unwrap_model(self.model)
        self._split_by_length = args.split_batches_by_length
        if self._split_by_length is None:  # auto: headway's own heads (per-item mean losses) on CPU
            from headway.modeling import PreTrainedModel

            self._split_by_length = (
                isinstance(inner, PreTrainedModel)
                and args.device.type == "cpu"
                and not getattr(inner.config, "is_encoder_decoder", False)
                and self.compute_loss_func is None
                and type(self).compute_loss is Trainer.compute_loss
            )
        if self._split_by_length and D.is_fsdp(self.model_wrapped):
            # FSDP gathers and reduces at every forward / backward: all processes must run as many.
            self._split_by_length = False
        self._params_for_flos = sum(p.numel() for n, p in inner.named_parameters() if "embeddings" not in n)
        self._keyed_dropout, recompute_hooks = keyed_dropout_hooks(inner, args.keyed_dropout)

        logger.info(
            "***** Running training *****  examples=%s epochs=%d batch/device=%d total batch=%d "
            "accumulation=%d steps=%d",
            len(loader.dataset) if sampler else "?",
            num_epochs,
            args.train_batch_size,
            self._total_batch_size(),
            args.gradient_accumulation_steps,
            max_steps,
        )
        start_time = time.time()
        self._initial_global_step = self.state.global_step
        self._tr_loss = torch.zeros((), device=args.device)
        self._total_loss_scalar = 0.0
        self._globalstep_last_logged = self.state.global_step
        self._grad_norm: torch.Tensor | float | None = None
        self._learning_rate: float | None = None
        self._current_flos = 0.0
        model.zero_grad(set_to_none=True)
        self.control._new_training()
        self._event("on_train_begin")
        if args.eval_on_start:
            self.evaluate(ignore_keys=ignore_keys_for_eval)

        try:
            for epoch in range(epochs_trained, num_epochs):
                skip = (
                    updates_done_in_epoch * args.gradient_accumulation_steps if epoch == epochs_trained else 0
                )
                if sampler is not None:
                    sampler.set_epoch(epoch)
                    sampler.skip = skip * args.train_batch_size
                self.control._new_epoch()
                self._event("on_epoch_begin")
                restore = resume if epoch == epochs_trained else None
                self._run_epoch(
                    model, loader, epoch, skip, steps_in_epoch, per_epoch, ignore_keys_for_eval, restore
                )
                if sampler is not None:
                    sampler.skip = 0
                if self.control.should_training_stop:
                    break
        finally:
            for hook in recompute_hooks:
                hook.remove()
        return self._finalize_training(start_time, num_samples, max_steps)

    def _run_epoch(
        self,
        model: nn.Module,
        loader: DataLoader,
        epoch: int,
        skip: int,
        steps_in_epoch: int,
        updates_per_epoch: int,
        ignore_keys: list[str] | None,
        restore_rng_from: str | None,
    ) -> None:
        """One pass over the data; ``skip`` micro-batches were consumed before a resume (the sampler
        already leaves them out; an iterable dataset reads and drops them), after which the RNG
        states of ``restore_rng_from`` are restored."""
        args = self.args
        ga = args.gradient_accumulation_steps
        iterator = iter(loader)
        if skip and not isinstance(loader.sampler, D.EpochSampler):
            for _ in range(skip):
                next(iterator, None)
        if restore_rng_from is not None:
            self._load_rng_state(restore_rng_from)
        step = skip - 1  # micro-batches consumed in this epoch, 0-based
        for _ in range(skip // ga, updates_per_epoch):
            batches = [b for b in (next(iterator, None) for _ in range(ga)) if b is not None]
            if not batches:
                break
            step += len(batches)
            num_items = self._get_num_items_in_batch(batches)
            parts = [(b, self._example_indices(b, i)) for i, b in enumerate(batches)]
            if num_items is not None and self._split_by_length:
                parts = [
                    (part, ids if rows is None or ids is None else ids[rows])
                    for b, ids in parts
                    for part, rows in split_rows_by_length(b)
                ]
            self.current_gradient_accumulation_steps = len(parts)
            self.control._new_step()
            self._event("on_step_begin")
            for i, (inputs, ids) in enumerate(parts):
                last = i == len(parts) - 1
                self._current_flos += self.floating_point_ops(inputs)
                sync = contextlib.nullcontext() if last or not hasattr(model, "no_sync") else model.no_sync()
                with sync, dropout_context(inputs, ids, args.seed, self.state.global_step):
                    loss = self.training_step(model, inputs, num_items)
                if args.logging_nan_inf_filter:  # a non-finite loss counts as the running average (no sync)
                    fallback = self._tr_loss / (1 + self.state.global_step - self._globalstep_last_logged)
                    loss = torch.where(torch.isfinite(loss), loss, fallback)
                self._tr_loss += loss
                if not last:
                    self._event("on_substep_end")
            self._optimizer_step(model)
            self.state.global_step += 1
            self.state.epoch = epoch + (step + 1) / steps_in_epoch
            self._event("on_step_end")
            self._maybe_log_save_evaluate(model, ignore_keys)
            if self.control.should_epoch_stop or self.control.should_training_stop:
                break
        self._event("on_epoch_end")
        self._maybe_log_save_evaluate(model, ignore_keys)

    def _example_indices(self, batch: Any, micro_batch: int) -> torch.Tensor | None:
        """The rows' indices in this step's global batch (keyed dropout), or None when it is off."""
        rows = batch_rows(batch) if getattr(self, "_keyed_dropout", False) else None
        if rows is None:
            return None
        return example_indices(micro_batch, rows, self.args.train_batch_size, D.world_size(), D.rank())

    def _optimizer_step(self, model: nn.Module) -> None:
        args = self.args
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        fused = bool(self.optimizer.defaults.get("fused"))
        fold_clip = (
            fused
            and self.scaler is None
            and not D.is_fsdp(self.model_wrapped)
            and type(self.optimizer) in (torch.optim.Adam, torch.optim.AdamW)
        )
        if args.max_grad_norm > 0 and fold_clip:
            # Clip inside the fused kernel: it divides each gradient by ``grad_scale``, which saves a
            # separate pass multiplying every gradient by the clip coefficient.
            norm = nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
            self._grad_norm = norm
            self.optimizer.grad_scale = 1.0 / torch.clamp(args.max_grad_norm / (norm + 1e-6), max=1.0)
        elif args.max_grad_norm > 0:  # with FSDP the parameters are DTensors and the norm covers all shards
            self._grad_norm = nn.utils.clip_grad_norm_(params, args.max_grad_norm)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.__dict__.pop("grad_scale", None)
        self._learning_rate = self._get_learning_rate()
        if not isinstance(self.lr_scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.lr_scheduler.step()
        model.zero_grad(set_to_none=True)

    def _get_num_items_in_batch(self, batches: list[Any]) -> torch.Tensor | int | None:
        """Label items (labels != -100) in the accumulated micro-batches of all processes, or None
        when the batches have no ``labels`` (the loss is then averaged over micro-batches).

        Counted on the host from the collated (CPU) batches, so a single device never waits for it;
        with several processes the count is summed across them (a tensor on the device).
        """
        if "labels" not in batches[0]:
            return None
        try:
            count = int(
                sum(
                    (b["labels"][..., 1:] if self._loss_shifts_labels else b["labels"]).ne(-100).sum()
                    for b in batches
                )
            )
        except (TypeError, AttributeError):
            return None
        if self.args.average_tokens_across_devices and D.world_size() > 1:
            return D.all_reduce(torch.tensor(count, device=self.args.device))
        return count

    def floating_point_ops(self, inputs: dict[str, Any]) -> float:
        """6 x tokens x non-embedding parameters: the forward + backward estimate the reference uses."""
        name = getattr(D.unwrap_model(self.model), "main_input_name", "input_ids")
        ids = inputs.get(name) if hasattr(inputs, "get") else None
        return 6.0 * ids.numel() * self._params_for_flos if isinstance(ids, torch.Tensor) else 0.0

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

    # -- logging, evaluation and saving during training -------------------------------------------------------------
    def _maybe_log_save_evaluate(self, model: nn.Module, ignore_keys: list[str] | None) -> None:
        if self.control.should_log and self.state.global_step > self._globalstep_last_logged:
            total = D.all_reduce(self._tr_loss, "mean").item()  # the only host sync of the step
            self._tr_loss.zero_()
            logs: dict[str, float] = {"loss": total / (self.state.global_step - self._globalstep_last_logged)}
            if self._grad_norm is not None:
                gn = self._grad_norm
                gn = gn.full_tensor() if hasattr(gn, "full_tensor") else gn
                logs["grad_norm"] = gn.item() if torch.is_tensor(gn) else float(gn)
            logs["learning_rate"] = (
                self._learning_rate if self._learning_rate is not None else self._get_learning_rate()
            )
            self._total_loss_scalar += total
            self._globalstep_last_logged = self.state.global_step
            self.log(logs)
        if self.control.should_evaluate:
            metrics = self.evaluate(ignore_keys=ignore_keys)
            new_best = self._determine_best_metric(metrics)
            if self.args.save_strategy == "best":
                self.control.should_save = new_best
        if self.control.should_save:
            self._save_checkpoint(model)
            self._event("on_save")
            self.control.should_save = False

    def _determine_best_metric(self, metrics: dict[str, float]) -> bool:
        name = self.args.metric_for_best_model
        if name is None:
            return False
        key = name if name.startswith("eval_") else f"eval_{name}"
        if key not in metrics:
            raise KeyError(
                f"metric_for_best_model={name!r}: {key!r} is not among the evaluation metrics "
                f"{sorted(metrics)}"
            )
        value, best = metrics[key], self.state.best_metric
        if best is None or (value > best if self.args.greater_is_better else value < best):
            self.state.best_metric = value
            self.state.best_global_step = self.state.global_step
            return True
        return False

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Record ``logs`` (plus epoch and step) in ``state.log_history`` and call ``on_log``."""
        if self.state.epoch is not None:
            logs["epoch"] = self.state.epoch
        self.state.log_history.append({**logs, "step": self.state.global_step})
        self._event("on_log", logs=logs)
        self.control.should_log = False  # handled (the reference's CallbackHandler resets it too)

    def _store_flos(self) -> None:
        """Add the floating-point operations of every process since the last call to the state (collective)."""
        self.state.total_flos += D.all_reduce(
            torch.tensor(self._current_flos, dtype=torch.float64, device=self.args.device)
        ).item()
        self._current_flos = 0.0

    def _finalize_training(self, start_time: float, num_samples: int, max_steps: int) -> TrainOutput:
        self._store_flos()
        total = D.all_reduce(self._tr_loss, "mean").item()
        self._total_loss_scalar += total
        self._tr_loss.zero_()
        steps = self.state.global_step - self._initial_global_step
        train_loss = self._total_loss_scalar / max(steps, 0.001)
        metrics = speed_metrics(
            "train", start_time, num_samples=num_samples * steps / max(max_steps, 1), num_steps=steps
        )
        metrics["total_flos"] = self.state.total_flos
        metrics["train_loss"] = train_loss
        self.log(metrics)
        if self.args.load_best_model_at_end and self.state.best_model_checkpoint is not None:
            logger.info(
                "Loading the best model from %s (score %s)",
                self.state.best_model_checkpoint,
                self.state.best_metric,
            )
            self._load_weights(self.state.best_model_checkpoint)
        if self.args.should_save and self.state.best_model_checkpoint and self.args.save_total_limit == 1:
            for path in ckpt.sorted_checkpoints(self.args.output_dir):
                if Path(path).resolve() != Path(self.state.best_model_checkpoint).resolve():
                    shutil.rmtree(path, ignore_errors=True)
        self._event("on_train_end")
        return TrainOutput(self.state.global_step, train_loss, metrics)
