"""SentenceTransformerTrainer: fine-tune an embedding model with headway's Trainer, the sentence-transformers way.

    from datasets import Dataset
    from headway.sentence.losses import MultipleNegativesRankingLoss
    from headway.sentence.trainer import SentenceTransformerTrainer
    from headway.sentence.training_args import SentenceTransformerTrainingArguments

    data = Dataset.from_dict({"anchor": [...], "positive": [...]})
    args = SentenceTransformerTrainingArguments("out", batch_sampler="no_duplicates", num_train_epochs=1)
    trainer = SentenceTransformerTrainer(model, args, train_dataset=data,
                                         loss=MultipleNegativesRankingLoss(model))
    trainer.train()

The data set's text columns, in order, are the loss's inputs (anchor, positive, negative...); a column
named label / labels / score / scores is its label. A dict of data sets trains on all of them (batches
never mix data sets), each with its own loss when ``loss`` is a dict of the same names. Batches are cut
by the samplers of :mod:`headway.sentence.samplers`; evaluators (:mod:`headway.sentence.evaluation`)
run at each evaluation. Checkpoints hold the whole SentenceTransformer folder (modules.json, pooling,
...), so a checkpoint loads as a model; resuming, ``save_total_limit``, best-model tracking and
``torchrun`` are the base Trainer's.

Same batches, losses and weights as sentence-transformers 6.2 for the same data, seed and settings
(tests/sentence/test_trainer.py). One difference: under ``torchrun`` each process gets every
world_size-th batch and a final remainder of fewer batches than processes is left out (the reference
hands it to some processes only).
"""

from __future__ import annotations

import inspect
import logging
import re
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader

from headway.atomic import atomic_write_text, staged_folder
from headway.sentence.evaluation import SentenceEvaluator, SequentialEvaluator
from headway.sentence.losses import CoSENTLoss
from headway.sentence.samplers import (
    BatchSamplers,
    DefaultBatchSampler,
    GroupByLabelBatchSampler,
    MultiDatasetBatchSamplers,
    NoDuplicatesBatchSampler,
    ProportionalBatchSampler,
    RoundRobinBatchSampler,
    ShardedBatchSampler,
)
from headway.sentence.training_args import SentenceTransformerTrainingArguments
from headway.training import distributed as D
from headway.training.checkpointing import TRAINING_ARGS_NAME
from headway.training.trainer import Trainer
from headway.training.utils import batch_rows

logger = logging.getLogger(__name__)

__all__ = ["SentenceTransformerDataCollator", "SentenceTransformerTrainer"]

LABEL_COLUMNS = ("label", "labels", "score", "scores")
RESERVED_COLUMNS = ("return_loss", "dataset_name")
LOSS_STATE_NAME = "loss.safetensors"  # a checkpoint's loss-owned weights (SoftmaxLoss' classifier)


class SentenceTransformerDataCollator:
    """Rows -> one batch: each text column tokenized as ``{column}_{feature}``, the label column as ``label``.

    Args:
        tokenize_fn: Texts -> features (``model.tokenize``). When it takes a ``prompt`` keyword (a model's
            ``preprocess``), it adds the prompt itself; otherwise the prompt is prepended here and its
            length recorded with ``prompt_length_fn``.
        valid_label_columns: Column names taken as the label (the first one present).
        prompts: As ``SentenceTransformerTrainingArguments.prompts``; a prompt is prepended to the texts and
            its token count recorded as ``{column}_prompt_length`` (for poolings that leave it out).
        prompt_length_fn: Prompt -> its token count.
    """

    def __init__(
        self,
        tokenize_fn: Callable[..., dict[str, Any]],
        valid_label_columns: tuple[str, ...] | list[str] = LABEL_COLUMNS,
        prompts: str | dict[str, Any] | None = None,
        prompt_length_fn: Callable[[str], int] | None = None,
    ) -> None:
        self.tokenize_fn = tokenize_fn
        self.valid_label_columns = list(valid_label_columns)
        self.prompts = prompts
        self.prompt_length_fn = prompt_length_fn
        try:
            self._takes_prompt = "prompt" in inspect.signature(tokenize_fn).parameters
        except (TypeError, ValueError):  # a callable without a signature
            self._takes_prompt = False

    def _tokenize(self, texts: list[str], prompt: str | None) -> dict[str, Any]:
        if not prompt:
            return dict(self.tokenize_fn(texts))
        if self._takes_prompt:
            return dict(self.tokenize_fn(texts, prompt=prompt))
        tokens = dict(self.tokenize_fn([prompt + text for text in texts]))
        if self.prompt_length_fn is not None:
            tokens["prompt_length"] = self.prompt_length_fn(prompt)
        return tokens

    def _prompts_for(self, dataset_name: str | None) -> str | dict[str, str] | None:
        prompts = self.prompts
        if not isinstance(prompts, dict) or not prompts:
            return prompts or None
        if dataset_name is not None and dataset_name in prompts:
            return prompts[dataset_name]
        if isinstance(next(iter(prompts.values())), dict):
            if dataset_name is None:
                raise ValueError(
                    "prompts maps data set names to per-column prompts, but the data is a single data "
                    f"set (no names); its keys: {list(prompts)}"
                )
            return None
        return prompts

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        if not features:
            return {}
        columns = list(features[0])
        batch: dict[str, Any] = {}
        if "dataset_name" in columns:
            columns.remove("dataset_name")
            batch["dataset_name"] = features[0]["dataset_name"]
        for name in self.valid_label_columns:
            if name in columns:
                labels = [row[name] for row in features]
                batch["label"] = (
                    torch.stack(labels) if isinstance(labels[0], torch.Tensor) else torch.tensor(labels)
                )
                columns.remove(name)
                break
        prompts = self._prompts_for(batch.get("dataset_name"))
        for column in columns:
            texts = [row[column] for row in features]
            prompt = prompts if isinstance(prompts, str) else (prompts or {}).get(column)
            for key, value in self._tokenize(texts, prompt).items():
                batch[f"{column}_{key}"] = value
        return batch


def collect_features(inputs: dict[str, Any]) -> tuple[list[dict[str, Any]], torch.Tensor | None]:
    """The collated batch -> one features dict per text column (in column order) and the labels."""
    prefixes = [key[: -len("input_ids")] for key in inputs if key.endswith("_input_ids")]
    columns: list[dict[str, Any]] = [{} for _ in prefixes]
    for key, value in inputs.items():
        owners = [i for i, p in enumerate(prefixes) if key.startswith(p)]
        if owners:  # the longest prefix: column "a" must not take column "a_b"'s features
            i = max(owners, key=lambda i: len(prefixes[i]))
            columns[i][key[len(prefixes[i]) :]] = value
    return columns, inputs.get("label")


class _Named(torch.utils.data.Dataset):
    """A data set whose rows also carry ``dataset_name`` (picks the loss / prompts of a named data set)."""

    def __init__(self, dataset: Any, name: str) -> None:
        self.dataset = dataset
        self.name = name

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {**self.dataset[index], "dataset_name": self.name}


def _is_iterable_dataset(dataset: Any) -> bool:
    return (
        isinstance(dataset, torch.utils.data.IterableDataset) or type(dataset).__name__ == "IterableDataset"
    )


class SentenceTransformerTrainer(Trainer):
    """Train a SentenceTransformer with a loss from :mod:`headway.sentence.losses`.

    Args:
        model: The SentenceTransformer (or ``model_init`` building it).
        args: :class:`~headway.sentence.training_args.SentenceTransformerTrainingArguments`.
        train_dataset / eval_dataset: A ``datasets.Dataset``, a dict (or ``DatasetDict``) of them, or a
            ``datasets.IterableDataset``: text columns in the loss's order, plus an optional label column.
        loss: A loss module, a function ``model -> loss``, or a dict of either per data set name.
            Default: :class:`~headway.sentence.losses.CoSENTLoss`.
        evaluator: An evaluator (or a list of them) run at each evaluation; its metrics are logged with
            the ``eval_`` prefix. Works with or without ``eval_dataset`` (whose loss is logged as well).
        data_collator: Default :class:`SentenceTransformerDataCollator` on ``model.tokenize``.
        callbacks, optimizers, model_init: as for :class:`~headway.training.trainer.Trainer`.
    """

    args_class: type[SentenceTransformerTrainingArguments] = SentenceTransformerTrainingArguments

    def __init__(
        self,
        model: nn.Module | None = None,
        args: SentenceTransformerTrainingArguments | None = None,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        loss: nn.Module | Callable | dict[str, nn.Module | Callable] | None = None,
        evaluator: SentenceEvaluator | list[SentenceEvaluator] | None = None,
        data_collator: Callable | None = None,
        processing_class: Any = None,
        model_init: Callable[[], nn.Module] | None = None,
        compute_metrics: Callable | None = None,
        callbacks: list | None = None,
        optimizers: tuple[torch.optim.Optimizer | None, Any] = (None, None),
        preprocess_logits_for_metrics: Callable | None = None,
        *,
        tokenizer: Any = None,
    ) -> None:
        args = args if args is not None else self.args_class(output_dir="tmp_trainer")
        if not isinstance(args, self.args_class):
            raise TypeError(f"args must be a {self.args_class.__name__}, got {type(args).__name__}")
        if args.fsdp:
            raise ValueError(f"{type(self).__name__} does not support fsdp; use plain torchrun (DDP)")
        if compute_metrics is not None:
            logger.warning(
                "compute_metrics is not used by %s: pass an evaluator instead", type(self).__name__
            )
        if eval_dataset is None and evaluator is None and args.eval_strategy != "no":
            raise ValueError(
                f"eval_strategy={args.eval_strategy!r} needs an eval_dataset or an evaluator; "
                "or set eval_strategy='no'"
            )
        for split, data in (("train", train_dataset), ("eval", eval_dataset)):
            self._check_columns(data, split)
        if isinstance(train_dataset, dict):
            train_dataset = dict(train_dataset)
        if isinstance(eval_dataset, dict):
            eval_dataset = dict(eval_dataset)
        super().__init__(
            model=model,
            args=args,
            data_collator=None,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            model_init=model_init,
            callbacks=callbacks,
            optimizers=optimizers,
        )
        self.data_collator = data_collator if data_collator is not None else self.get_data_collator()
        if loss is None:
            loss = self.get_default_loss(self.model)
        if isinstance(loss, dict):
            self.loss: nn.Module | dict[str, nn.Module] = {
                name: self._prepare_loss(fn) for name, fn in loss.items()
            }
            for split, data in (("train", train_dataset), ("eval", eval_dataset)):
                if data is None:
                    continue
                if not isinstance(data, dict):
                    raise TypeError(
                        f"With a dict of losses, the {split}_dataset must be a dict of data sets too"
                    )
                missing = sorted(set(data) - set(loss))
                if missing:
                    raise ValueError(
                        f"{split}_dataset names {missing}, which have no loss; losses: {sorted(loss)}"
                    )
        else:
            self.loss = self._prepare_loss(loss)
        if evaluator is not None and not isinstance(evaluator, SentenceEvaluator):
            evaluator = SequentialEvaluator(evaluator)
        self.evaluator = evaluator
        self._loss_components: dict[str, dict[str, torch.Tensor]] = {"train": {}, "eval": {}}
        self._saving_checkpoint = False

    # -- set-up ------------------------------------------------------------------------------------------
    @staticmethod
    def _check_columns(data: Any, split: str) -> None:
        if isinstance(data, dict):
            for name, part in data.items():
                SentenceTransformerTrainer._check_columns(part, f"{split} ({name})")
            return
        taken = sorted(set(getattr(data, "column_names", None) or ()) & set(RESERVED_COLUMNS))
        if taken:
            raise ValueError(f"The {split} data set has reserved column name(s) {taken}; rename them")

    def get_default_loss(self, model: nn.Module) -> nn.Module:
        logger.info("No loss given: using CoSENTLoss")
        return CoSENTLoss(model)

    def get_data_collator(self) -> Callable:
        model = self.model
        first = model[0] if isinstance(model, nn.Sequential) else None
        tokenize = getattr(model, "preprocess", None) or model.tokenize  # preprocess adds prompts itself
        return SentenceTransformerDataCollator(
            tokenize, prompts=self.args.prompts, prompt_length_fn=getattr(first, "prompt_length", None)
        )

    def _prepare_loss(self, loss: nn.Module | Callable) -> nn.Module:
        if not isinstance(loss, nn.Module):
            loss = loss(self.model)
        return loss.to(self.args.device)

    def _loss_holder(self) -> nn.Module:
        """One module holding every trained parameter: the loss(es), which hold the model."""
        return nn.Sequential(OrderedDict(self.loss)) if isinstance(self.loss, dict) else self.loss

    def _loss_only_parameters(self) -> list[nn.Parameter]:
        model_params = {id(p) for p in D.unwrap_model(self.model).parameters()}
        return [p for p in self._loss_holder().parameters() if id(p) not in model_params]

    def _uses_dataset_names(self, dataset: Any) -> bool:
        prompts = self.args.prompts
        return isinstance(dataset, dict) and (isinstance(self.loss, dict) or isinstance(prompts, dict))

    # -- data ----------------------------------------------------------------------------------------------
    def get_batch_sampler(
        self,
        dataset: Any,
        batch_size: int,
        drop_last: bool,
        valid_label_columns: list[str] | None = None,
        generator: torch.Generator | None = None,
        seed: int = 0,
    ) -> Any:
        """The batch sampler ``args.batch_sampler`` names, for one data set."""
        choice = self.args.batch_sampler
        kwargs = {
            "batch_size": batch_size,
            "drop_last": drop_last,
            "valid_label_columns": valid_label_columns,
            "generator": generator,
            "seed": seed,
        }
        if not isinstance(choice, BatchSamplers):
            return choice(dataset, **kwargs)
        if choice in (BatchSamplers.NO_DUPLICATES, BatchSamplers.NO_DUPLICATES_HASHED):
            return NoDuplicatesBatchSampler(
                dataset, precompute_hashes=choice == BatchSamplers.NO_DUPLICATES_HASHED, **kwargs
            )
        if choice == BatchSamplers.GROUP_BY_LABEL:
            return GroupByLabelBatchSampler(dataset, **kwargs)
        return DefaultBatchSampler(dataset, **kwargs)

    def get_multi_dataset_batch_sampler(
        self,
        dataset: ConcatDataset,
        batch_samplers: list[Any],
        generator: torch.Generator | None = None,
        seed: int = 0,
    ) -> Any:
        """The sampler ``args.multi_dataset_batch_sampler`` names, over the data sets' own samplers."""
        choice = self.args.multi_dataset_batch_sampler
        kwargs = {"batch_samplers": batch_samplers, "generator": generator, "seed": seed}
        if not isinstance(choice, MultiDatasetBatchSamplers):
            return choice(dataset, **kwargs)
        if choice == MultiDatasetBatchSamplers.ROUND_ROBIN:
            return RoundRobinBatchSampler(dataset, **kwargs)
        return ProportionalBatchSampler(dataset, **kwargs)

    def _build_dataloader(self, dataset: Any, batch_size: int) -> DataLoader:
        args = self.args
        generator = torch.Generator().manual_seed(args.seed)
        labels = getattr(self.data_collator, "valid_label_columns", list(LABEL_COLUMNS))
        options: dict[str, Any] = {
            "collate_fn": self.data_collator,
            "num_workers": args.dataloader_num_workers,
            "pin_memory": args.dataloader_pin_memory and args.device.type == "cuda",
            # a private generator: iterating must not draw from the global RNG
            "generator": torch.Generator().manual_seed(args.seed),
        }
        if args.dataloader_num_workers > 0:
            options.update(
                persistent_workers=args.dataloader_persistent_workers,
                prefetch_factor=args.dataloader_prefetch_factor,
            )
        if _is_iterable_dataset(dataset):
            if args.batch_sampler != BatchSamplers.BATCH_SAMPLER:
                logger.warning(
                    "An IterableDataset is read in order: batch_sampler=%s is not applied", args.batch_sampler
                )
            return DataLoader(dataset, batch_size=batch_size, drop_last=args.dataloader_drop_last, **options)
        if isinstance(dataset, dict):
            samplers = [
                self.get_batch_sampler(
                    part, batch_size, args.dataloader_drop_last, labels, generator, args.seed
                )
                for part in dataset.values()
            ]
            named = self._uses_dataset_names(dataset)
            parts = [_Named(part, name) if named else part for name, part in dataset.items()]
            dataset = ConcatDataset(parts)
            sampler = self.get_multi_dataset_batch_sampler(dataset, samplers, generator, args.seed)
        else:
            raw = (
                dataset.dataset if isinstance(dataset, _Named) else dataset
            )  # samplers read the data set itself
            sampler = self.get_batch_sampler(
                raw, batch_size, args.dataloader_drop_last, labels, generator, args.seed
            )
            if (
                type(sampler) is DefaultBatchSampler
            ):  # a fresh permutation per epoch, from (data_)seed + epoch
                sampler.reseed_each_epoch = True
                sampler.seed = args.data_seed if args.data_seed is not None else args.seed
        if D.world_size() > 1:
            sampler = ShardedBatchSampler(sampler, D.world_size(), D.rank())
        return DataLoader(dataset, batch_sampler=sampler, **options)

    def get_train_dataloader(self) -> DataLoader:
        if self.train_dataset is None:
            raise ValueError(f"{type(self).__name__}.train() needs a train_dataset")
        return self._build_dataloader(self.train_dataset, self.args.train_batch_size)

    def get_eval_dataloader(self, eval_dataset: Any = None) -> DataLoader:
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        if dataset is None or (isinstance(dataset, list) and not dataset):
            if self.evaluator is not None:
                return DataLoader([])  # only the evaluator runs
            raise ValueError("evaluate() needs an eval_dataset or an evaluator")
        return self._build_dataloader(dataset, self.args.eval_batch_size)

    def get_test_dataloader(self, test_dataset: Any) -> DataLoader:
        return self._build_dataloader(test_dataset, self.args.eval_batch_size)

    def _example_indices(self, batch: Any, micro_batch: int) -> torch.Tensor | None:
        """The rows' indices in this step's global batch (keyed dropout), or None when it is off.

        Processes here share out whole batches (``ShardedBatchSampler``: batch ``i`` to process
        ``i % world_size``), not the examples of one batch as the base Trainer's sampler does: micro-batch
        ``m`` of process ``r`` is batch ``m * world_size + r`` of the step, the one a single process
        accumulating ``world_size`` times as many batches runs as its micro-batch ``m * world_size + r``.
        """
        rows = batch_rows(batch) if self._keyed_dropout else None
        if rows is None:
            return None
        position = micro_batch * D.world_size() + D.rank()  # the batch's place among the step's batches
        return position * self.args.train_batch_size + torch.arange(rows)

    # -- the loss ----------------------------------------------------------------------------------------------
    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> Any:
        """``self.loss`` (the data set's own with a dict of losses) on the batch's columns and labels."""
        inputs = dict(inputs)
        loss_fn = self._loss_for(model, inputs.pop("dataset_name", None))
        features, labels = collect_features(inputs)
        loss = self._loss_value(loss_fn(features, labels))
        return (loss, {}) if return_outputs else loss

    def _loss_for(self, model: nn.Module, dataset_name: str | None) -> nn.Module:
        """The loss of the batch's data set (the one loss unless ``loss`` is a dict), running ``model``."""
        loss_fn = self.loss
        if isinstance(loss_fn, dict):
            if dataset_name is None:
                raise ValueError("A dict of losses needs a dict of data sets (each batch names its data set)")
            loss_fn = loss_fn[dataset_name]
        if model is not D.unwrap_model(model):  # DDP: the forward must go through the wrapper
            _point_loss_at(loss_fn, model)
        return loss_fn

    def _loss_value(self, loss: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor:
        """A loss's value; a dict of named parts is summed, each part tracked for logging."""
        if isinstance(loss, dict):
            self._track_components(loss)
            loss = torch.stack(list(loss.values())).sum()
        return loss

    def _track_components(self, parts: dict[str, torch.Tensor]) -> None:
        """Running sums of a loss's named parts, logged (averaged) next to the loss."""
        split = "train" if self.model.training else "eval"
        sums = self._loss_components[split]
        steps = sums.get("steps")
        for key, value in parts.items():
            value = value.detach()
            if self.args.logging_nan_inf_filter and not torch.isfinite(value):
                value = sums[key] / steps if key in sums and steps else torch.zeros_like(value)
            sums[key] = sums[key] + value if key in sums else value
        sums["steps"] = (steps if steps is not None else 0) + 1

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        split = "train" if "loss" in logs else "eval" if "eval_loss" in logs else None
        sums = self._loss_components.get(split) if split else None
        if sums and sums.get("steps"):
            logs = dict(logs)
            steps = D.all_reduce(torch.as_tensor(sums.pop("steps"), device=self.args.device)).item()
            for key, value in sums.items():
                total = D.all_reduce(value.to(self.args.device)).item()
                logs[f"eval_{key}" if split == "eval" else key] = round(total / steps, 4)
            sums.clear()
        super().log(logs, start_time)

    def prediction_step(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        prediction_loss_only: bool,
        ignore_keys: list[str] | None = None,
    ) -> tuple[Any, None, None]:
        """The evaluation loss of a batch (the losses give no predictions)."""
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs)
        return loss.detach().mean(), None, None

    # -- optimisation ------------------------------------------------------------------------------------------
    def create_optimizer(self, model: nn.Module | None = None) -> torch.optim.Optimizer:
        """AdamW over the model and the loss's own parameters (e.g. SoftmaxLoss' classifier), with the
        learning rates of ``args.learning_rate_mapping``."""
        if self.optimizer is not None:
            return self.optimizer
        holder = self._loss_holder()
        optimizer = super().create_optimizer(holder)
        decay = set(self.get_decay_parameter_names(holder))
        for pattern, lr in self.args.learning_rate_mapping.items():
            matched = [
                (n, p) for n, p in holder.named_parameters() if p.requires_grad and re.search(pattern, n)
            ]
            if not matched:
                raise ValueError(
                    f"learning_rate_mapping pattern {pattern!r} matches no parameter of the model"
                )
            ids = {id(p) for _, p in matched}
            for group in optimizer.param_groups:
                group["params"] = [p for p in group["params"] if id(p) not in ids]
            for with_decay in (True, False):
                params = [p for n, p in matched if (n in decay) == with_decay]
                if params:
                    optimizer.add_param_group(
                        {
                            "params": params,
                            "lr": lr,
                            "weight_decay": self.args.weight_decay if with_decay else 0.0,
                        }
                    )
        return optimizer

    def _clip_parameters(self) -> list[nn.Parameter]:
        """The model's parameters: the reference clips their gradients, not those of the loss's own
        parameters (SoftmaxLoss' classifier)."""
        return [p for p in D.unwrap_model(self.model).parameters() if p.requires_grad]

    def _optimizer_step(self, model: nn.Module) -> None:
        """The base step; the loss's own parameters (outside DDP) get their gradients averaged across
        processes before it and zeroed after it (the model's ``zero_grad`` does not reach them)."""
        extra = self._loss_only_parameters()
        if extra and D.world_size() > 1:
            for p in extra:
                if p.grad is not None:
                    p.grad.copy_(D.all_reduce(p.grad, "mean"))
        super()._optimizer_step(model)
        if extra:
            self.optimizer.zero_grad(set_to_none=True)

    def _ddp_kwargs(self) -> dict[str, Any]:
        """The base options, for a model whose losses run several forwards per step: buffers are not
        re-synchronised (in place) between them, and unused parameters (BERT's pooler) are expected unless
        ``ddp_find_unused_parameters`` says not."""
        kwargs = super()._ddp_kwargs()
        if self.args.ddp_find_unused_parameters is None:
            kwargs["find_unused_parameters"] = True
        ddp_options = inspect.signature(nn.parallel.DistributedDataParallel).parameters
        if "forward_sync_buffers" in ddp_options:
            kwargs["forward_sync_buffers"] = False
        else:
            kwargs["broadcast_buffers"] = False
        return kwargs

    # -- evaluation ---------------------------------------------------------------------------------------------
    def evaluate(
        self, eval_dataset: Any = None, ignore_keys: list[str] | None = None, metric_key_prefix: str = "eval"
    ) -> dict[str, float]:
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        if isinstance(dataset, dict):
            named = self._uses_dataset_names(dataset)
            metrics: dict[str, float] = {}
            for name, part in dataset.items():
                part = _Named(part, name) if named else part
                metrics.update(self.evaluate(part, ignore_keys, f"{metric_key_prefix}_{name}"))
            return metrics
        if dataset is None:
            dataset = []  # evaluator only
        return super().evaluate(dataset, ignore_keys, metric_key_prefix)

    def evaluation_loop(
        self,
        dataloader: DataLoader,
        description: str,
        prediction_loss_only: bool | None = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> Any:
        """The base loop (evaluation loss), plus the evaluator's metrics. With a dict of evaluation data
        sets the evaluator runs once, with the first data set, and its metrics are prefixed ``eval_``."""
        output = super().evaluation_loop(
            dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix
        )
        if self.evaluator is None:
            return output
        if isinstance(self.eval_dataset, dict) and metric_key_prefix.startswith("eval_"):
            if metric_key_prefix[len("eval_") :] != next(iter(self.eval_dataset)):
                return output
            metric_key_prefix = "eval"
        metrics: Any = {}
        if self.is_world_process_zero():
            folder = Path(self.args.output_dir) / "eval"
            folder.mkdir(parents=True, exist_ok=True)
            metrics = self.evaluator(
                D.unwrap_model(self.model),
                output_path=str(folder),
                epoch=self.state.epoch,
                steps=self.state.global_step,
            )
            if not isinstance(metrics, dict):
                metrics = {"evaluator": metrics}
        if D.world_size() > 1:
            metrics = D.broadcast_object(metrics)
        prefix = f"{metric_key_prefix}_"
        output.metrics.update({k if k.startswith(prefix) else prefix + k: v for k, v in metrics.items()})
        return output

    # -- saving and loading ---------------------------------------------------------------------------------
    def _save_checkpoint(self, model: nn.Module) -> None:
        self._saving_checkpoint = True
        try:
            super()._save_checkpoint(model)
        finally:
            self._saving_checkpoint = False

    def _save(self, folder: Path, state_dict: dict[str, torch.Tensor] | None = None) -> None:
        """The whole model folder (``model.save``), the arguments, and in a checkpoint the loss's own weights."""
        model = D.unwrap_model(self.model)
        with staged_folder(folder) as stage:
            model.save(stage.path)
            extra = self._loss_only_state()
            if self._saving_checkpoint and extra:
                from safetensors.torch import save_file

                save_file(extra, str(stage.path / LOSS_STATE_NAME))
            atomic_write_text(stage.path / TRAINING_ARGS_NAME, self.args.to_json_string() + "\n")

    def _loss_only_state(self) -> dict[str, torch.Tensor]:
        ids = {id(p) for p in self._loss_only_parameters()}
        return {
            n: p.detach().cpu().contiguous()
            for n, p in self._loss_holder().named_parameters()
            if id(p) in ids
        }

    def _load_weights(self, folder: str) -> None:
        """A checkpoint's model folder (and loss weights) into the model being trained."""
        model = D.unwrap_model(self.model)
        self._load_model_folder(model, folder)
        path = Path(folder) / LOSS_STATE_NAME
        if path.is_file():
            from safetensors.torch import load_file

            state = load_file(str(path))
            named = dict(self._loss_holder().named_parameters())
            with torch.no_grad():
                for key, value in state.items():
                    named[key].copy_(value)

    @staticmethod
    def _load_model_folder(model: nn.Module, folder: str) -> None:
        loaded = type(model)(folder, device="cpu")
        model.load_state_dict(loaded.state_dict())


def _point_loss_at(loss: nn.Module, model: nn.Module) -> None:
    """Make every ``model`` attribute inside ``loss`` the (DDP-wrapped) ``model``."""
    inner = D.unwrap_model(model)
    for name, child in list(loss.named_children()):
        if name == "model" and (child is inner or child is model):
            loss.model = model
        elif isinstance(child, nn.Module):
            _point_loss_at(child, model)
