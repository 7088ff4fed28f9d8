"""The Trainer's training loop: ``train``, the epoch loop, the optimiser step, and logging / saving on the way.

The loop, top to bottom (:meth:`TrainingLoopMixin._inner_training_loop`): per epoch, a seeded sampler
gives this process its indices; each optimiser step takes ``gradient_accumulation_steps`` micro-batches,
counts the label items in all of them (across processes), and back-propagates each micro-batch's loss
normalised by that count, so accumulation and padding do not change the update. The running loss stays on
the device and is read only at logging steps. On CPU, each micro-batch of a headway model is split into its
shorter and longer rows, each padded on its own (``split_batches_by_length``): fewer padded tokens, the
same update up to rounding. Gradient clipping is folded into the fused AdamW kernel. Dropout is keyed
(``keyed_dropout``, :mod:`headway.nn.dropout`): each row's masks follow from the seed, the step and the
row's index in the step's global batch, so the weights do not depend on how many processes share that
batch, how it is accumulated or split, or how far it is padded.

Kept apart from the rest of the Trainer so each file reads top to bottom; :class:`~headway.training.trainer.
Trainer` inherits these methods. A subclass changes one detail of the loop through a hook, never by
copying or overriding the loop itself:

- :meth:`~TrainingLoopMixin._wrap_model` / :meth:`~TrainingLoopMixin._ddp_kwargs`: how the model is
  wrapped across processes (DDP options);
- :meth:`~TrainingLoopMixin._begin_epoch`: the samplers' epoch and the micro-batches in an epoch;
- :meth:`~TrainingLoopMixin._example_indices`: each row's index in the step's global batch (keyed dropout);
- :meth:`~TrainingLoopMixin._clip_parameters`: the parameters whose gradients ``max_grad_norm`` clips.
"""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

from headway.training import checkpointing as ckpt
from headway.training import distributed as D
from headway.training.callbacks import TrainerState
from headway.training.utils import (
    TrainOutput,
    batch_rows,
    dropout_context,
    example_indices,
    keyed_dropout_hooks,
    speed_metrics,
    split_rows_by_length,
)

logger = logging.getLogger(__name__)

__all__ = ["TrainingLoopMixin"]


class TrainingLoopMixin:
    """``train`` and its loop; needs the attributes and per-batch methods the Trainer sets."""

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

    # -- hooks -----------------------------------------------------------------------------------------------
    def _wrap_model(self, model: nn.Module) -> nn.Module:
        """The model as the loop runs it: FSDP when ``args.fsdp`` asks for it, else DDP with the options of
        :meth:`_ddp_kwargs` across processes; the model itself in one process."""
        return D.wrap_model(model, self.args, ddp_kwargs=self._ddp_kwargs())

    def _ddp_kwargs(self) -> dict[str, Any]:
        """``DistributedDataParallel``'s options: the process's GPU, and ``ddp_find_unused_parameters``."""
        return D.ddp_options(self.args)

    def _begin_epoch(self, loader: DataLoader, epoch: int) -> int:
        """Set the epoch of the loader's sampler and batch sampler (each epoch's own order); return the
        micro-batches in the epoch, the denominator of ``state.epoch``'s fraction."""
        for sampler in (loader.sampler, loader.batch_sampler):
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)
        if isinstance(loader.dataset, IterableDataset) or not hasattr(loader, "__len__"):
            return self.state.max_steps * self.args.gradient_accumulation_steps
        return len(loader)

    def _example_indices(self, batch: Any, micro_batch: int) -> torch.Tensor | None:
        """The rows' indices in this step's global batch (keyed dropout), or None when it is off.

        The base Trainer's sampler interleaves one batch's examples across processes
        (:func:`~headway.training.utils.example_indices`).
        """
        rows = batch_rows(batch) if self._keyed_dropout else None
        if rows is None:
            return None
        return example_indices(micro_batch, rows, self.args.train_batch_size, D.world_size(), D.rank())

    def _clip_parameters(self) -> list[nn.Parameter]:
        """The parameters whose gradients ``max_grad_norm`` clips, by their joint norm: all the optimizer's.

        When they are all the optimizer's, a fused Adam(W) folds the clipping into its kernel.
        """
        return [p for g in self.optimizer.param_groups for p in g["params"]]

    # -- the loop ---------------------------------------------------------------------------------------------
    def _inner_training_loop(self, resume: str | None, ignore_keys_for_eval: list[str] | None) -> TrainOutput:
        args = self.args
        loader = self.get_train_dataloader()
        per_epoch, max_steps, num_epochs, num_samples = self._training_values(loader)
        sampler = loader.sampler if isinstance(loader.sampler, D.EpochSampler) else None

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

        if not self._is_wrapped:
            self.model_wrapped, self._is_wrapped = self._wrap_model(self.model), True
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
        if self._split_by_length is None:
            self._split_by_length = self._default_split_by_length(inner)
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
                steps_in_epoch = self._begin_epoch(loader, epoch)
                if sampler is not None:
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

    def _optimizer_step(self, model: nn.Module) -> None:
        """Clip (see :meth:`_clip_parameters`), step the optimizer and the scheduler, zero the gradients."""
        args = self.args
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if args.max_grad_norm > 0:
            self._clip_gradients()
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

    def _clip_gradients(self) -> None:
        """Scale the gradients of :meth:`_clip_parameters` to a joint norm of at most ``max_grad_norm``,
        keeping the norm for logging; in a fused Adam(W)'s kernel when they are all the optimizer's."""
        max_norm = self.args.max_grad_norm
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        clipped = self._clip_parameters()
        fold = (
            bool(self.optimizer.defaults.get("fused"))
            and self.scaler is None
            and not D.is_fsdp(self.model_wrapped)
            and type(self.optimizer) in (torch.optim.Adam, torch.optim.AdamW)
            and {id(p) for p in clipped} == {id(p) for p in params}
        )
        if fold:
            # The fused kernel divides each gradient by ``grad_scale``, which saves a separate pass
            # multiplying every gradient by the clip coefficient.
            norm = nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
            self._grad_norm = norm
            self.optimizer.grad_scale = 1.0 / torch.clamp(max_norm / (norm + 1e-6), max=1.0)
        else:  # with FSDP the parameters are DTensors and the norm covers all shards
            self._grad_norm = nn.utils.clip_grad_norm_(clipped, max_norm)

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
