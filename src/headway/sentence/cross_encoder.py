"""CrossEncoder: scores text pairs jointly with a sequence-classification model (rerankers, NLI, STS).

    from headway import CrossEncoder
    model = CrossEncoder("path/to/reranker")
    model.predict([("How many people live in Berlin?", "Berlin has 3.5 million people.")])
    model.rank("How many people live in Berlin?", documents, top_k=3)

Same batching (pairs sorted by total length, longest first), activation and outputs as
sentence-transformers 6: the default activation is sigmoid for one label and identity otherwise, unless
the checkpoint's config names one (``sentence_transformers.activation_fn``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import trange

from headway.atomic import save_folder, staged_folder
from headway.hub import pop_hub_kwargs, resolve
from headway.sentence.encoder import default_device
from headway.sentence.modules import ACTIVATIONS, activation_name

logger = logging.getLogger(__name__)


def _as_pairs(inputs: Any) -> tuple[list[tuple[str, str]], bool]:
    """``(pairs, was_single)``; a TypeError names the first element that is not a pair of strings."""
    if isinstance(inputs, np.ndarray):
        inputs = inputs.tolist()
    if not isinstance(inputs, (list, tuple)):
        raise TypeError(f"predict() expects a pair of strings or a list of pairs, got {type(inputs).__name__}")
    single = len(inputs) > 0 and not isinstance(inputs[0], (list, tuple))
    items = [inputs] if single else list(inputs)
    for index, pair in enumerate(items):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(t, str) for t in pair)):
            raise TypeError(
                f"predict() expects pairs of two strings; element {index} is a {type(pair).__name__}: {pair!r}"
            )
    return [(a, b) for a, b in items], single


class CrossEncoder(nn.Module):
    """A sequence-classification model over text pairs.

    Args:
        model_name_or_path: A folder or Hub id holding a ``*ForSequenceClassification`` checkpoint (a bare
            encoder gets a new one-label head).
        num_labels: Override the number of labels (a new head when it differs from the checkpoint's).
        max_length: Truncate pairs to this many tokens (default: the tokenizer's limit, capped at the
            model's position table).
        device: "cpu", "cuda", ...; default: cuda, then mps, then cpu.
        activation_fn: Applied to the logits in ``predict`` (default: see the module docstring).
        **kwargs: Hub options: ``revision``, ``cache_folder``, ``local_files_only``, ``token``.
    """

    def __init__(
        self,
        model_name_or_path: str | os.PathLike,
        *,
        num_labels: int | None = None,
        max_length: int | None = None,
        device: str | torch.device | None = None,
        activation_fn: Callable[[Tensor], Tensor] | None = None,
        **kwargs: Any,
    ) -> None:
        from headway.auto import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

        super().__init__()
        if "cache_folder" in kwargs:
            kwargs["cache_dir"] = kwargs.pop("cache_folder")
        checkpoint = resolve(model_name_or_path, **pop_hub_kwargs(kwargs))
        if kwargs:
            raise TypeError(f"CrossEncoder() got unexpected keyword arguments: {sorted(kwargs)}")
        config = AutoConfig.from_pretrained(checkpoint)
        architectures = config.architectures or []
        if num_labels is None and not any(a.endswith("ForSequenceClassification") for a in architectures):
            num_labels = 1  # a bare encoder: one relevance score
        if num_labels is not None:
            config.num_labels = num_labels
        self.model = AutoModelForSequenceClassification.from_pretrained(checkpoint, config=config)
        self.tokenizer = AutoTokenizer.from_pretrained(checkpoint)
        self.tokenizer.name_or_path = checkpoint.name
        if max_length is None:
            max_length = min(self.tokenizer.model_max_length,
                             getattr(config, "max_position_embeddings", self.tokenizer.model_max_length))
        self.tokenizer.model_max_length = max_length
        self.activation_fn = activation_fn if activation_fn is not None else self._default_activation()
        self.to(device if device is not None else default_device())
        self.eval()

    def _default_activation(self) -> Callable[[Tensor], Tensor]:
        settings = getattr(self.config, "sentence_transformers", None) or {}
        name = settings.get("activation_fn") or getattr(self.config, "sbert_ce_default_activation_function", None)
        if name is not None:
            if name in ACTIVATIONS:
                return ACTIVATIONS[name]()
            logger.warning("Activation %r named by the checkpoint is not one headway knows (%s); using the "
                           "default for %d label(s)", name, sorted(ACTIVATIONS), self.num_labels)
        return nn.Sigmoid() if self.num_labels == 1 else nn.Identity()

    @property
    def config(self) -> Any:
        return self.model.config

    @property
    def num_labels(self) -> int:
        return self.model.config.num_labels

    @property
    def max_length(self) -> int:
        return self.tokenizer.model_max_length

    @max_length.setter
    def max_length(self, value: int) -> None:
        self.tokenizer.model_max_length = value

    max_seq_length = max_length

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(self, features: dict[str, Tensor]) -> Tensor:
        return self.model(**features).logits  # (B, num_labels)

    @torch.inference_mode()
    def predict(
        self,
        sentence_pairs: Iterable[tuple[str, str]] | tuple[str, str],
        *,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        activation_fn: Callable[[Tensor], Tensor] | None = None,
        apply_softmax: bool = False,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
    ) -> np.ndarray | Tensor | list[Tensor]:
        """Scores of text pairs: (N,) for one label, (N, num_labels) otherwise; one pair gives one row.

        Args:
            sentence_pairs: A (text, text) pair or a list of them.
            batch_size: Pairs per forward pass.
            show_progress_bar: Default: on when this module logs at INFO or DEBUG.
            activation_fn: Applied to the logits instead of ``self.activation_fn``.
            apply_softmax: Softmax over the labels (when there are several).
            convert_to_numpy: A numpy array (the default) rather than a list of tensors.
            convert_to_tensor: One tensor (wins over ``convert_to_numpy``).
        """
        pairs, single = _as_pairs(sentence_pairs)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() <= logging.INFO
        activation_fn = activation_fn if activation_fn is not None else self.activation_fn
        device = self.device
        order = np.argsort([-(len(a) + len(b)) for a, b in pairs])  # longest first, as the reference
        scores: list[Tensor] = []
        for start in trange(0, len(pairs), batch_size, desc="Batches", disable=not show_progress_bar):
            batch = [pairs[i] for i in order[start : start + batch_size]]
            encoded = self.tokenizer([a for a, _ in batch], [b for _, b in batch], padding=True,
                                     truncation="longest_first", return_tensors="pt")
            logits = self({key: value.to(device) for key, value in encoded.items()})
            if logits.is_floating_point() and torch.finfo(logits.dtype).bits < 32:
                logits = logits.float()
            if activation_fn is not None:
                logits = activation_fn(logits)
            if self.num_labels == 1 and logits.ndim > 1:
                logits = logits.squeeze(-1)
            if apply_softmax and logits.ndim > 1:
                logits = torch.nn.functional.softmax(logits, dim=1)
            scores.extend(logits)
        scores = [scores[i] for i in np.argsort(order)]
        result: Any = torch.stack(scores) if scores else torch.tensor([], device=device)
        if convert_to_tensor:
            pass
        elif convert_to_numpy:
            result = result.float().cpu().numpy() if len(result) else np.array([])
        else:
            result = list(result)
        return result[0] if single else result

    def rank(
        self,
        query: str,
        documents: list[str],
        *,
        top_k: int | None = None,
        return_documents: bool = False,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        activation_fn: Callable[[Tensor], Tensor] | None = None,
    ) -> list[dict[str, Any]]:
        """Documents by decreasing score for ``query``: ``[{"corpus_id", "score"(, "text")}]``, top_k of them.

        Raises:
            ValueError: The model has more than one label.
            TypeError: ``query`` or a document is not a string.
        """
        if self.num_labels != 1:
            raise ValueError("CrossEncoder.rank() needs a model with num_labels=1; use predict() on pairs instead")
        if not isinstance(query, str):
            raise TypeError(f"rank() expects the query to be a string, got {type(query).__name__}")
        if isinstance(documents, str) or not isinstance(documents, (list, tuple)):
            raise TypeError(f"rank() expects a list of document strings, got {type(documents).__name__}")
        scores = self.predict([(query, doc) for doc in documents], batch_size=batch_size,
                              show_progress_bar=show_progress_bar, activation_fn=activation_fn,
                              convert_to_tensor=True).tolist()
        results = [{"corpus_id": i, "score": score} for i, score in enumerate(scores)]
        if return_documents:
            for hit in results:
                hit["text"] = documents[hit["corpus_id"]]
        return sorted(results, key=lambda hit: hit["score"], reverse=True)[:top_k]

    def save(self, path: str | os.PathLike) -> None:
        """Write the model, its tokenizer and the activation (in ``config.json``), the folder as a whole.

        One staging folder swapped into place at the end (``headway.atomic.staged_folder``).
        """
        save_folder(path, create=False)  # refuses an empty or file path before any work
        self.model.config.sentence_transformers = {"activation_fn": activation_name(self.activation_fn)}
        with staged_folder(path) as stage:
            self.model.save_pretrained(stage.path)
            self.tokenizer.save_pretrained(stage.path)

    save_pretrained = save
