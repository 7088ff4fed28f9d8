"""Training arguments of the embedding-model trainers: headway's TrainingArguments plus the batch
samplers, prompts and per-parameter learning rates of sentence-transformers 6."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from headway.sentence.samplers import BatchSamplers, MultiDatasetBatchSamplers
from headway.training.arguments import TrainingArguments

__all__ = ["CrossEncoderTrainingArguments", "SentenceTransformerTrainingArguments"]


def _enum_or_callable(value: Any, enum: type, name: str) -> Any:
    """An enum member from its value or from the reference's own enum member; a callable (a sampler
    class or factory) is kept as it is."""
    if callable(value) and not isinstance(value, (str, enum)):
        return value
    raw = getattr(value, "value", value)
    try:
        return enum(raw)
    except ValueError:
        raise ValueError(
            f"{name}={raw!r} is not supported; expected one of {[m.value for m in enum]} "
            "or a batch sampler class"
        ) from None


def _dict_from_json(value: Any, name: str) -> Any:
    """Dicts given on a command line arrive as JSON text."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"{name} must be a dict (or its JSON text), got {value!r:.80}") from None
    return value


@dataclass
class SentenceTransformerTrainingArguments(TrainingArguments):
    """:class:`~headway.training.arguments.TrainingArguments` for ``SentenceTransformerTrainer``.

    Extra fields:
        prompts: A prompt prepended to every text; or column name -> prompt; or data set name -> prompt;
            or data set name -> (column name -> prompt).
        batch_sampler: A :class:`~headway.sentence.samplers.BatchSamplers` value ("batch_sampler",
            "no_duplicates", "no_duplicates_hashed", "group_by_label") or a batch sampler class/factory
            called as ``f(dataset, batch_size=, drop_last=, valid_label_columns=, generator=, seed=)``.
        multi_dataset_batch_sampler: "proportional" (default) or "round_robin", or a class/factory
            called as ``f(dataset, batch_samplers=, generator=, seed=)``, for a dict of data sets.
        learning_rate_mapping: Regular expression on parameter names -> learning rate for those parameters.
        router_mapping: Accepted for compatibility; headway has no Router module, so it must stay empty.

    ``prediction_loss_only`` is always True (the losses return no predictions), and under ``torchrun``
    ``dataloader_drop_last`` is set, so every process gets whole batches.
    """

    prompts: str | dict[str, str] | dict[str, dict[str, str]] | None = None
    batch_sampler: BatchSamplers | str | Callable[..., Any] = BatchSamplers.BATCH_SAMPLER
    multi_dataset_batch_sampler: MultiDatasetBatchSamplers | str | Callable[..., Any] = (
        MultiDatasetBatchSamplers.PROPORTIONAL
    )
    learning_rate_mapping: dict[str, float] | str | None = field(default_factory=dict)
    router_mapping: dict[str, Any] | str | None = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.batch_sampler = _enum_or_callable(self.batch_sampler, BatchSamplers, "batch_sampler")
        self.multi_dataset_batch_sampler = _enum_or_callable(
            self.multi_dataset_batch_sampler, MultiDatasetBatchSamplers, "multi_dataset_batch_sampler"
        )
        if isinstance(self.prompts, str) and self.prompts.lstrip().startswith("{"):
            self.prompts = _dict_from_json(self.prompts, "prompts")
        if self.prompts is not None and not isinstance(self.prompts, (str, dict)):
            raise TypeError(f"prompts must be a str or a dict, got {type(self.prompts).__name__}")
        self.learning_rate_mapping = (
            _dict_from_json(self.learning_rate_mapping, "learning_rate_mapping") or {}
        )
        if not isinstance(self.learning_rate_mapping, dict):
            raise TypeError(
                "learning_rate_mapping must map parameter-name patterns to learning rates, got "
                f"{type(self.learning_rate_mapping).__name__}"
            )
        self.router_mapping = _dict_from_json(self.router_mapping, "router_mapping") or {}
        if self.router_mapping:
            raise ValueError(
                "router_mapping is not supported: headway's SentenceTransformer has no Router module"
            )
        self.prediction_loss_only = True
        if self.world_size > 1:
            self.dataloader_drop_last = True  # an uneven last batch would leave a process waiting

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        for name in ("batch_sampler", "multi_dataset_batch_sampler"):
            value = out[name]
            out[name] = (
                value.value
                if isinstance(value, (BatchSamplers, MultiDatasetBatchSamplers))
                else getattr(value, "__qualname__", repr(value))
            )
        return out


@dataclass
class CrossEncoderTrainingArguments(SentenceTransformerTrainingArguments):
    """The same fields, for ``CrossEncoderTrainer`` (``prompts`` here: one prompt, or data set -> prompt)."""
