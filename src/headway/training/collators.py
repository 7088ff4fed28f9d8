"""Data collators: turn a list of examples into a padded batch of tensors.

Same outputs as the reference's collators for the same inputs (and, for masking, the same torch RNG
draws in the same order, so a seeded run masks the same tokens). Only PyTorch tensors are produced
(``return_tensors="pt"``), except ``default_data_collator`` which also does NumPy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = [
    "DataCollatorForLanguageModeling",
    "DataCollatorForSeq2Seq",
    "DataCollatorForTokenClassification",
    "DataCollatorWithPadding",
    "DefaultDataCollator",
    "default_data_collator",
]


def _check_pt(return_tensors: str | None) -> None:
    if return_tensors not in (None, "pt"):
        raise ValueError(f"return_tensors={return_tensors!r} is not supported here; only 'pt' is")


def _rename_labels(batch: Any) -> Any:
    for old in ("label", "label_ids"):
        if old in batch:
            batch["labels"] = batch[old]
            del batch[old]
    return batch


def default_data_collator(features: list[Any], return_tensors: str = "pt") -> dict[str, Any]:
    """Stack examples that already have equal lengths; ``label`` / ``label_ids`` become ``labels``.

    Strings and None values are dropped; integer labels become int64, float labels float32.
    """
    if return_tensors not in ("pt", "np"):
        raise ValueError(f"return_tensors must be 'pt' or 'np', got {return_tensors!r}")
    if not isinstance(features[0], Mapping):
        features = [vars(f) for f in features]
    first = features[0]
    as_array = _np_array if return_tensors == "np" else _pt_tensor
    batch: dict[str, Any] = {}
    if first.get("label") is not None:
        label = first["label"]
        label = label.item() if hasattr(label, "item") else label
        integer = isinstance(label, (int, np.integer))
        batch["labels"] = as_array([f["label"] for f in features], integer)
    elif first.get("label_ids") is not None:
        ids = first["label_ids"]
        integer = isinstance(ids[0].item() if hasattr(ids[0], "item") else ids[0], (int, np.integer))
        batch["labels"] = as_array([f["label_ids"] for f in features], integer)
    for key, value in first.items():
        if key in ("label", "label_ids") or value is None or isinstance(value, str):
            continue
        batch[key] = as_array([f[key] for f in features], None)
    return batch


def _pt_tensor(values: list[Any], integer: bool | None) -> torch.Tensor:
    if isinstance(values[0], torch.Tensor):
        out = torch.stack(values)
    elif isinstance(values[0], np.ndarray):
        out = torch.from_numpy(np.stack(values))
    else:
        out = torch.tensor(values)
    if integer is not None:
        out = out.to(torch.long if integer else torch.float)
    return out


def _np_array(values: list[Any], integer: bool | None) -> np.ndarray:
    out = np.stack(values) if isinstance(values[0], np.ndarray) else np.array(values)
    if integer is not None:
        out = out.astype(np.int64 if integer else np.float32)
    return out


@dataclass
class DefaultDataCollator:
    """:func:`default_data_collator` as an object (``return_tensors`` fixed at construction)."""

    return_tensors: str = "pt"

    def __call__(self, features: list[Any], return_tensors: str | None = None) -> dict[str, Any]:
        return default_data_collator(features, return_tensors or self.return_tensors)


@dataclass
class DataCollatorWithPadding:
    """Pad every example to the longest in the batch (or ``max_length``) with the tokenizer's pad token."""

    tokenizer: Any
    padding: bool | str = True
    max_length: int | None = None
    pad_to_multiple_of: int | None = None
    return_tensors: str = "pt"

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        _check_pt(self.return_tensors)
        batch = self.tokenizer.pad(
            features,
            padding=self.padding,
            max_length=self.max_length,
            pad_to_multiple_of=self.pad_to_multiple_of,
            return_tensors="pt",
        )
        return _rename_labels(batch)


def _pad_rows(rows: list[list[int]], length: int, fill: int, side: str) -> torch.Tensor:
    padded = [
        r + [fill] * (length - len(r)) if side == "right" else [fill] * (length - len(r)) + r for r in rows
    ]
    return torch.tensor(padded, dtype=torch.int64)


def _as_list(value: Any) -> list:
    return value.tolist() if isinstance(value, (torch.Tensor, np.ndarray)) else list(value)


@dataclass
class DataCollatorForTokenClassification:
    """Pad the inputs with the tokenizer and the per-token ``labels`` with ``label_pad_token_id`` (-100)."""

    tokenizer: Any
    padding: bool | str = True
    max_length: int | None = None
    pad_to_multiple_of: int | None = None
    label_pad_token_id: int = -100
    return_tensors: str = "pt"

    def __call__(self, features: list[dict[str, Any]], return_tensors: str | None = None) -> dict[str, Any]:
        _check_pt(return_tensors or self.return_tensors)
        label_name = "label" if "label" in features[0] else "labels"
        labels = [f[label_name] for f in features] if label_name in features[0] else None
        inputs = [{k: v for k, v in f.items() if k != label_name} for f in features]
        batch = self.tokenizer.pad(
            inputs,
            padding=self.padding,
            max_length=self.max_length,
            pad_to_multiple_of=self.pad_to_multiple_of,
            return_tensors="pt",
        )
        if labels is None:
            return batch
        length = batch["input_ids"].shape[1]
        batch[label_name] = _pad_rows(
            [_as_list(x) for x in labels], length, self.label_pad_token_id, self.tokenizer.padding_side
        )
        return batch


@dataclass
class DataCollatorForSeq2Seq:
    """Batches for encoder-decoder training: inputs padded by the tokenizer, ``labels`` by ``label_pad_token_id``.

    The labels are padded on the tokenizer's ``padding_side`` to the longest in the batch (or to
    ``max_length`` with ``padding="max_length"``), rounded up to ``pad_to_multiple_of``; -100 keeps the
    padding out of the loss. When ``model`` has ``prepare_decoder_input_ids_from_labels`` (BART, T5...), the
    batch also gets the ``decoder_input_ids`` it makes from the padded labels (the labels shifted right).
    ``label`` is accepted as the name of the targets too; the batch always calls them ``labels``.

    Args:
        tokenizer: pads the inputs (its ``pad`` and ``padding_side``).
        model: the model being trained, for ``decoder_input_ids`` (optional).
        padding: True / "longest", "max_length", or False / "do_not_pad" (then every example must already have
            the same length).
        max_length: the length for ``padding="max_length"`` (also passed to ``tokenizer.pad``).
        pad_to_multiple_of: round padded lengths up to a multiple of this.
        label_pad_token_id: the value of padded label positions.
        return_tensors: only "pt".
    """

    tokenizer: Any
    model: Any = None
    padding: bool | str = True
    max_length: int | None = None
    pad_to_multiple_of: int | None = None
    label_pad_token_id: int = -100
    return_tensors: str = "pt"

    def __call__(self, features: list[dict[str, Any]], return_tensors: str | None = None) -> dict[str, Any]:
        _check_pt(return_tensors or self.return_tensors)
        if not features:
            raise ValueError("DataCollatorForSeq2Seq got no examples to batch (an empty list)")
        label_name = "label" if "label" in features[0] else "labels"
        labels = [f[label_name] for f in features] if label_name in features[0] else None
        if labels is not None and all(x is None for x in labels):
            labels = None  # {"labels": None} rows: no targets
        inputs = [{k: v for k, v in f.items() if k != label_name} for f in features]
        batch = self.tokenizer.pad(
            inputs,
            padding=self.padding,
            max_length=self.max_length,
            pad_to_multiple_of=self.pad_to_multiple_of,
            return_tensors="pt",
        )
        if labels is None:
            batch["labels"] = None
            return batch
        rows = [_as_list(x) for x in labels]
        longest = max(len(r) for r in rows)
        if self.padding is False or self.padding == "do_not_pad":
            if any(len(r) != longest for r in rows):
                lengths = sorted({len(r) for r in rows})
                raise ValueError(
                    f"padding={self.padding!r} but the labels have different lengths {lengths}: "
                    "they cannot form one tensor; use padding=True"
                )
            length = longest
        else:
            fixed = self.padding == "max_length" and self.max_length is not None
            length = self.max_length if fixed else longest
            if self.pad_to_multiple_of is not None:
                length = -(-length // self.pad_to_multiple_of) * self.pad_to_multiple_of
            if longest > length:
                raise ValueError(
                    f"A label has {longest} ids, more than padding='max_length' allows "
                    f"(max_length={self.max_length}); truncate the targets when tokenizing them"
                )
        batch["labels"] = _pad_rows(rows, length, self.label_pad_token_id, self.tokenizer.padding_side)
        if self.model is not None and hasattr(self.model, "prepare_decoder_input_ids_from_labels"):
            batch["decoder_input_ids"] = self.model.prepare_decoder_input_ids_from_labels(
                labels=batch["labels"]
            )
        return batch


@dataclass
class DataCollatorForLanguageModeling:
    """Batches for language modelling.

    ``mlm=True``: each maskable token is chosen with ``mlm_probability``; of the chosen, ``mask_replace_prob``
    (80%) become the mask token, ``random_replace_prob`` (10%) a random token, the rest stay; ``labels`` are
    the original ids at chosen positions and -100 elsewhere. ``mlm=False`` (causal): ``labels`` are the
    input ids with padding set to -100. With ``seed`` the masking uses its own generator, else torch's
    global one (the draws are the reference's, in the same order).
    """

    tokenizer: Any
    mlm: bool = True
    whole_word_mask: bool = False
    mlm_probability: float | None = 0.15
    mask_replace_prob: float = 0.8
    random_replace_prob: float = 0.1
    pad_to_multiple_of: int | None = None
    return_tensors: str = "pt"
    seed: int | None = None

    def __post_init__(self) -> None:
        _check_pt(self.return_tensors)
        if self.whole_word_mask:
            raise ValueError(
                "whole_word_mask=True is not supported by headway's DataCollatorForLanguageModeling"
            )
        if self.mlm:
            if self.tokenizer.mask_token is None:
                raise ValueError(
                    "This tokenizer has no mask token, which masked language modelling needs; "
                    "pass mlm=False for causal language modelling"
                )
            if self.mlm_probability is None or not 0 <= self.mlm_probability <= 1:
                raise ValueError(f"mlm_probability must be in [0, 1], got {self.mlm_probability}")
            self.mlm_probability = float(self.mlm_probability)
        for name in ("mask_replace_prob", "random_replace_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.mask_replace_prob + self.random_replace_prob > 1:
            raise ValueError("mask_replace_prob + random_replace_prob must not exceed 1")
        self.generator: torch.Generator | None = None

    def _generator(self) -> torch.Generator | None:
        if self.seed is None:
            return None
        if self.generator is None:
            worker = torch.utils.data.get_worker_info()
            self.generator = torch.Generator().manual_seed(self.seed + (worker.id if worker else 0))
        return self.generator

    def __call__(self, examples: list[Any], return_tensors: str | None = None) -> dict[str, Any]:
        _check_pt(return_tensors or self.return_tensors)
        generator = self._generator()
        if isinstance(examples[0], Mapping):
            batch = self.tokenizer.pad(
                examples, return_tensors="pt", pad_to_multiple_of=self.pad_to_multiple_of
            )
        else:
            batch = {"input_ids": self._collate_ids(examples)}
        special = batch.pop("special_tokens_mask", None)
        batch.pop("offset_mapping", None)
        if self.mlm:
            batch["input_ids"], batch["labels"] = self.torch_mask_tokens(
                batch["input_ids"], special, generator
            )
        else:
            labels = batch["input_ids"].clone()
            if self.tokenizer.pad_token_id is not None:
                labels[labels == self.tokenizer.pad_token_id] = -100
            batch["labels"] = labels
        return batch

    def _collate_ids(self, examples: list[Any]) -> torch.Tensor:
        rows = [e if isinstance(e, torch.Tensor) else torch.tensor(e, dtype=torch.long) for e in examples]
        length = max(r.shape[0] for r in rows)
        if all(r.shape[0] == length for r in rows) and (
            self.pad_to_multiple_of is None or length % self.pad_to_multiple_of == 0
        ):
            return torch.stack(rows)
        if self.tokenizer.pad_token is None:
            raise ValueError(
                f"Examples need padding but the tokenizer {type(self.tokenizer).__name__} has no pad token"
            )
        if self.pad_to_multiple_of:
            length = -(-length // self.pad_to_multiple_of) * self.pad_to_multiple_of
        out = rows[0].new_full((len(rows), length), self.tokenizer.pad_token_id)
        for i, r in enumerate(rows):
            if self.tokenizer.padding_side == "right":
                out[i, : r.shape[0]] = r
            else:
                out[i, -r.shape[0] :] = r
        return out

    def torch_mask_tokens(
        self, inputs: torch.Tensor, special_tokens_mask: Any = None, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Choose and replace tokens for MLM; returns (inputs, labels). Modifies ``inputs`` in place."""
        labels = inputs.clone()
        probability = torch.full(labels.shape, self.mlm_probability)
        if special_tokens_mask is None:
            special_tokens_mask = [
                self.tokenizer.get_special_tokens_mask(row, already_has_special_tokens=True)
                for row in labels.tolist()
            ]
        if not isinstance(special_tokens_mask, torch.Tensor):
            special_tokens_mask = torch.tensor(special_tokens_mask)
        probability.masked_fill_(special_tokens_mask.bool(), value=0.0)
        masked = torch.bernoulli(probability, generator=generator).bool()
        labels[~masked] = -100
        replaced = (
            torch.bernoulli(torch.full(labels.shape, self.mask_replace_prob), generator=generator).bool()
            & masked
        )
        inputs[replaced] = self.tokenizer.convert_tokens_to_ids(self.tokenizer.mask_token)
        if self.mask_replace_prob == 1 or self.random_replace_prob == 0:
            return inputs, labels
        scaled = self.random_replace_prob / (1 - self.mask_replace_prob)
        randomised = (
            torch.bernoulli(torch.full(labels.shape, scaled), generator=generator).bool() & masked & ~replaced
        )
        words = torch.randint(len(self.tokenizer), labels.shape, dtype=torch.long, generator=generator)
        inputs[randomised] = words[randomised]
        return inputs, labels
