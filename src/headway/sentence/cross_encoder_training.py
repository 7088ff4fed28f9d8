"""Training CrossEncoder models (rerankers, pair classifiers): the trainer, its collator and losses.

    from headway.sentence.cross_encoder_training import BinaryCrossEntropyLoss, CrossEncoderTrainer
    from headway.sentence.training_args import CrossEncoderTrainingArguments

    data = Dataset.from_dict({"query": [...], "document": [...], "label": [1, 0, ...]})
    trainer = CrossEncoderTrainer(model, CrossEncoderTrainingArguments("out"), train_dataset=data,
                                  loss=BinaryCrossEntropyLoss(model))

The two text columns are read as (query, document) pairs; the losses tokenize them together, as
``CrossEncoder.predict`` does. :class:`ListNetLoss` reads a query column and a column of document
lists, with a list of relevance labels per query. Same losses and weights as sentence-transformers 6.2
for the same data and seed (tests/sentence/test_trainer.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from headway.sentence.trainer import LABEL_COLUMNS, SentenceTransformerTrainer
from headway.sentence.training_args import CrossEncoderTrainingArguments
from headway.training import distributed as D
from headway.training.checkpointing import load_model_weights

logger = logging.getLogger(__name__)

__all__ = [
    "BinaryCrossEntropyLoss",
    "CrossEncoderDataCollator",
    "CrossEncoderTrainer",
    "CrossEntropyLoss",
    "ListNetLoss",
]


def pair_logits(model: nn.Module, pairs: list[tuple[str, str]], prompt: str | None = None) -> Tensor:
    """The model's logits (B, num_labels) for text pairs, tokenized together as ``CrossEncoder.predict`` does.

    ``model`` may be the CrossEncoder or its DDP wrapper (the forward goes through the wrapper).
    """
    encoder = D.unwrap_model(model)
    if prompt:
        pairs = [(prompt + first, second) for first, second in pairs]
    tokens = encoder.tokenizer(
        [a for a, _ in pairs],
        [b for _, b in pairs],
        padding=True,
        truncation="longest_first",
        return_tensors="pt",
    )
    device = encoder.device
    out = model({key: value.to(device) for key, value in tokens.items()})
    return out["scores"] if isinstance(out, dict) else out


def _check_model(loss: nn.Module, model: nn.Module, one_label: bool) -> None:
    encoder = D.unwrap_model(model)
    if not hasattr(encoder, "tokenizer") or not hasattr(encoder, "num_labels"):
        raise TypeError(f"{type(loss).__name__} needs a CrossEncoder, got {type(encoder).__name__}")
    if one_label and encoder.num_labels != 1:
        raise ValueError(f"{type(loss).__name__} needs a CrossEncoder with 1 label, got {encoder.num_labels}")


class BinaryCrossEntropyLoss(nn.Module):
    """Binary cross-entropy on one logit per (query, document) pair; labels 0/1 (or in between).

    Args:
        model: A CrossEncoder with one label.
        activation_fn: Applied to the logits before the loss (identity).
        pos_weight: Weight of the positive class (``nn.BCEWithLogitsLoss``), for rare positives.
        **kwargs: Other ``nn.BCEWithLogitsLoss`` options.
    """

    def __init__(
        self,
        model: nn.Module,
        activation_fn: nn.Module | None = None,
        pos_weight: Tensor | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        _check_model(self, model, one_label=True)
        self.model = model
        self.activation_fn = activation_fn if activation_fn is not None else nn.Identity()
        self.pos_weight = pos_weight
        self.bce_with_logits_loss = nn.BCEWithLogitsLoss(pos_weight=pos_weight, **kwargs)

    def forward(self, inputs: list[list[str]], labels: Tensor, prompt: str | None = None) -> Tensor:
        if len(inputs) != 2:
            raise ValueError(
                f"BinaryCrossEntropyLoss needs 2 text columns (query, document), got {len(inputs)}"
            )
        logits = self.activation_fn(pair_logits(self.model, list(zip(*inputs)), prompt).view(-1))
        if labels.numel() != logits.shape[0]:
            raise ValueError(f"BinaryCrossEntropyLoss expects {logits.shape[0]} labels, got {labels.numel()}")
        return self.bce_with_logits_loss(logits, labels.view(-1).float())


class CrossEntropyLoss(nn.Module):
    """Cross-entropy over a CrossEncoder's labels (pair classification, e.g. NLI); integer labels."""

    def __init__(self, model: nn.Module, activation_fn: nn.Module | None = None, **kwargs: Any) -> None:
        super().__init__()
        _check_model(self, model, one_label=False)
        self.model = model
        self.activation_fn = activation_fn if activation_fn is not None else nn.Identity()
        self.ce_loss = nn.CrossEntropyLoss(**kwargs)

    def forward(self, inputs: list[list[str]], labels: Tensor, prompt: str | None = None) -> Tensor:
        if len(inputs) != 2:
            raise ValueError(f"CrossEntropyLoss needs 2 text columns (query, document), got {len(inputs)}")
        logits = self.activation_fn(pair_logits(self.model, list(zip(*inputs)), prompt))
        if not labels.is_floating_point() and labels.shape == (logits.shape[0], 1):
            labels = labels.view(-1)
        return self.ce_loss(logits, labels)


class ListNetLoss(nn.Module):
    """ListNet (Cao et al. 2007): cross-entropy between the softmax of each query's document scores and
    the softmax of their relevance labels. Queries may have different numbers of documents.

    Data: a query column, a column of document lists, and a label column of relevance lists.

    Args:
        model: A CrossEncoder with one label.
        activation_fn: Applied to the logits first (identity).
        mini_batch_size: Pairs per forward (default: the number of queries in the batch).
    """

    def __init__(
        self, model: nn.Module, activation_fn: nn.Module | None = None, mini_batch_size: int | None = None
    ) -> None:
        super().__init__()
        _check_model(self, model, one_label=True)
        self.model = model
        self.activation_fn = activation_fn if activation_fn is not None else nn.Identity()
        self.mini_batch_size = mini_batch_size
        self.cross_entropy_loss = nn.CrossEntropyLoss()

    def forward(self, inputs: list[Any], labels: list[Tensor], prompt: str | None = None) -> Tensor:
        if isinstance(labels, Tensor):
            raise ValueError(  # noqa: TRY004 - the data set's label column, not an argument
                "ListNetLoss expects a list of relevance labels per query, got one label per query"
            )
        if len(inputs) != 2:
            raise ValueError(f"ListNetLoss needs 2 columns (query, document list), got {len(inputs)}")
        queries, documents = inputs
        counts = [len(docs) for docs in documents]
        if counts != [len(row) for row in labels]:
            raise ValueError(
                f"Documents per query {counts} do not match labels per query {[len(row) for row in labels]}"
            )
        pairs = [(query, doc) for query, docs in zip(queries, documents) for doc in docs]
        size = self.mini_batch_size or len(queries)
        if size <= 0:
            size = len(pairs)
        logits = torch.cat(
            [
                pair_logits(self.model, pairs[i : i + size], prompt).view(-1)
                for i in range(0, len(pairs), size)
            ]
        ).float()
        logits = self.activation_fn(logits)
        device = D.unwrap_model(self.model).device
        rows = torch.repeat_interleave(torch.arange(len(queries)), torch.tensor(counts))
        columns = torch.cat([torch.arange(n) for n in counts])
        # (queries, most documents): missing documents get a score no softmax notices, and no probability
        scores = torch.full((len(queries), max(counts)), -1e16, device=device)
        scores[rows, columns] = logits
        targets = torch.full_like(scores, float("-inf"))
        targets[rows, columns] = torch.cat(labels).float().to(device)
        return self.cross_entropy_loss(scores, targets.softmax(dim=1))

    def get_config_dict(self) -> dict[str, Any]:
        return {"activation_fn": type(self.activation_fn).__name__, "mini_batch_size": self.mini_batch_size}


class CrossEncoderDataCollator:
    """Rows -> ``{column: [texts]}`` per text column, ``label`` (a tensor, or a list of tensors for list
    labels), ``prompt`` and ``dataset_name`` when they apply. Tokenizing is the loss's work (pairs)."""

    def __init__(
        self,
        valid_label_columns: tuple[str, ...] | list[str] = LABEL_COLUMNS,
        prompts: str | dict[str, str] | None = None,
    ) -> None:
        if isinstance(prompts, dict) and any(isinstance(v, dict) for v in prompts.values()):
            raise ValueError(
                "CrossEncoder prompts cannot be per column (the columns become one pair): give one "
                "prompt, or data set name -> prompt"
            )
        self.valid_label_columns = list(valid_label_columns)
        self.prompts = prompts

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        columns = list(features[0])
        batch: dict[str, Any] = {}
        if "dataset_name" in columns:
            columns.remove("dataset_name")
            batch["dataset_name"] = features[0]["dataset_name"]
        for name in self.valid_label_columns:
            if name in columns:
                if isinstance(features[0][name], (list, tuple)):
                    batch["label"] = [torch.tensor(row[name]) for row in features]
                else:
                    batch["label"] = torch.tensor([row[name] for row in features])
                columns.remove(name)
                break
        prompt = (
            self.prompts
            if isinstance(self.prompts, str)
            else (self.prompts or {}).get(batch.get("dataset_name"))
        )
        if prompt:
            batch["prompt"] = prompt
        for column in columns:
            batch[column] = [row[column] for row in features]
        return batch


class CrossEncoderTrainer(SentenceTransformerTrainer):
    """Train a headway ``CrossEncoder`` with a loss of this module (same options as
    :class:`~headway.sentence.trainer.SentenceTransformerTrainer`). Default loss: binary cross-entropy for
    one label, cross-entropy otherwise. Checkpoints hold the CrossEncoder folder."""

    args_class = CrossEncoderTrainingArguments

    def get_default_loss(self, model: nn.Module) -> nn.Module:
        return BinaryCrossEntropyLoss(model) if model.num_labels == 1 else CrossEntropyLoss(model)

    def get_data_collator(self) -> Callable:
        return CrossEncoderDataCollator(prompts=self.args.prompts)

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> Any:
        """The data set's loss on the batch's (query, document) columns, its labels and prompt."""
        inputs = dict(inputs)
        loss_fn = self._loss_for(model, inputs.pop("dataset_name", None))
        prompt = inputs.pop("prompt", None)
        inputs.pop("task", None)
        labels = inputs.pop("label", None)
        features = list(inputs.values())
        loss = self._loss_value(
            loss_fn(features, labels, prompt=prompt) if prompt else loss_fn(features, labels)
        )
        return (loss, {}) if return_outputs else loss

    @staticmethod
    def _load_model_folder(model: nn.Module, folder: str) -> None:
        load_model_weights(model.model, folder)
