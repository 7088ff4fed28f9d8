"""feature-extraction: the model's last hidden states for each text, one vector per token.

Returns, per text, a nested list of shape (1, tokens, hidden) as the reference does (or a tensor of that
shape with ``return_tensors=True``). Unlike the reference with ``batch_size > 1``, the result never
includes padding positions: it is the same whatever the batch size.
"""

from __future__ import annotations

from typing import Any

import torch

from headway.pipelines.base import Feature, Pipeline

_TOKENIZE_KEYS = {"truncation", "max_length", "add_special_tokens", "padding", "return_token_type_ids"}


class FeatureExtractionPipeline(Pipeline):
    """Hidden states of a bare model (any model: the first output tensor is returned).

    Parameters (at construction or per call):
        return_tensors: True returns a (1, tokens, hidden) tensor instead of nested lists.
        truncation: Truncate texts longer than the model allows (default True, with a warning).
        tokenize_kwargs: Further tokenizer options (``max_length``, ``add_special_tokens``).
    """

    default_task = "feature-extraction"

    def _sanitize_parameters(
        self,
        truncation: bool | str | None = None,
        tokenize_kwargs: dict[str, Any] | None = None,
        return_tensors: bool | None = None,
        **kwargs: Any,
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        if kwargs:
            raise TypeError(f"{self.task} got unexpected keyword arguments {sorted(kwargs)}")
        tokenize_kwargs = dict(tokenize_kwargs or {})
        unknown = set(tokenize_kwargs) - _TOKENIZE_KEYS
        if unknown:
            raise ValueError(f"tokenize_kwargs takes {sorted(_TOKENIZE_KEYS)}, got {sorted(unknown)}")
        if truncation is not None:
            if "truncation" in tokenize_kwargs:
                raise ValueError(
                    "truncation parameter defined twice (given as keyword argument as well as in tokenize_kwargs)"
                )
            tokenize_kwargs["truncation"] = truncation
        tokenize_kwargs.pop("padding", None)  # rows are padded per batch and unpadded again
        post = {"return_tensors": bool(return_tensors)} if return_tensors is not None else {}
        return tokenize_kwargs, {}, post

    def preprocess(
        self, inputs: list[str], truncation: bool | str = True, max_length: int | None = None, **tokenizer_kwargs: Any
    ) -> list[list[Feature]]:
        return self.tokenize(inputs, truncation=truncation, max_length=max_length, **tokenizer_kwargs)

    def _forward(self, model_inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = self.model(**model_inputs)
        return {"hidden": out[0]}  # the first tensor: last_hidden_state (B, T, hidden) or logits

    def postprocess(
        self, outputs: dict[str, torch.Tensor], features: list[Feature], return_tensors: bool = False
    ) -> list[Any]:
        hidden = outputs["hidden"]
        per_token = hidden.dim() == 3  # (B, T, hidden); a head's logits (B, labels) are kept whole
        if return_tensors:
            return [hidden[i : i + 1, : len(f)].clone() if per_token else hidden[i : i + 1].clone()
                    for i, f in enumerate(features)]  # (1, T_i, hidden)
        rows = hidden.tolist()  # one conversion for the whole batch
        return [[row[: len(f)]] if per_token else [row] for row, f in zip(rows, features)]
