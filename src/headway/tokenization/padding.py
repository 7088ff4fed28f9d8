"""``Tokenizer.pad``: padding inputs that are already encoded (a collate function)."""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral
from typing import Any

from .batch_encoding import BatchEncoding
from .decoding import _to_python_ids


class PaddingMixin:
    """Padding of already-encoded inputs."""


    def pad(
        self,
        encoded_inputs: Any,
        padding: bool | str = True,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_attention_mask: bool | None = None,
        return_tensors: str | None = None,
        verbose: bool = True,
    ) -> BatchEncoding:
        """Pad already-encoded inputs (a dict of lists, or a list of dicts as a collate function).

        ``input_ids``, ``attention_mask``, ``token_type_ids`` and ``special_tokens_mask`` are padded;
        other keys are kept as they are. Tensor inputs come back as tensors of the same kind.
        """
        if (
            isinstance(encoded_inputs, (list, tuple))
            and encoded_inputs
            and isinstance(encoded_inputs[0], Mapping)
        ):
            encoded_inputs = {
                # .keys() explicitly: some Mapping types (e.g. TensorDict) iterate differently
                key: [example[key] for example in encoded_inputs]
                for key in encoded_inputs[0].keys()  # noqa: SIM118
            }
        if not isinstance(encoded_inputs, Mapping):
            raise TypeError(
                f"pad() takes a dict of lists or a list of dicts, got {type(encoded_inputs).__name__}"
            )
        encoded_inputs = dict(encoded_inputs)
        main = self.model_input_names[0]
        if main not in encoded_inputs:
            raise ValueError(f"pad() needs {main!r} in the inputs; got keys {list(encoded_inputs.keys())}")
        preserved_mask = None
        mask = encoded_inputs.get("attention_mask")
        if isinstance(mask, list) and mask and getattr(mask[0], "ndim", 0) > 1:
            preserved_mask = encoded_inputs.pop("attention_mask")
        required = encoded_inputs[main]
        if required is None or (hasattr(required, "__len__") and len(required) == 0):
            if return_attention_mask:
                encoded_inputs["attention_mask"] = []
            return BatchEncoding(encoded_inputs, tensor_type=return_tensors)
        first = required[0]
        if isinstance(first, (list, tuple)):
            first = next((item[0] for item in required if len(item)), first)
        if not isinstance(first, (Integral, list, tuple)):
            kind = type(first).__module__.split(".")[0]
            if kind == "torch":
                return_tensors = return_tensors or "pt"
            elif kind == "numpy":
                return_tensors = return_tensors or "np"
            else:
                raise TypeError(
                    f"cannot pad values of type {type(first).__name__}; use lists, numpy arrays or torch tensors"
                )
            encoded_inputs = {key: _to_python_ids(value) for key, value in encoded_inputs.items()}
        padding_strategy, _, max_length = self._resolve_strategies(
            padding, None, max_length, pad_to_multiple_of, verbose=verbose
        )
        if padding_strategy == "max_length" and max_length is None:
            padding_strategy = "do_not_pad"
        required = encoded_inputs[main]
        if required and not isinstance(required[0], (list, tuple)):
            padded = self._pad_one(
                encoded_inputs,
                max_length,
                padding_strategy,
                pad_to_multiple_of,
                padding_side,
                return_attention_mask,
            )
            return BatchEncoding(padded, tensor_type=return_tensors)
        batch_size = len(required)
        for key, value in encoded_inputs.items():
            if len(value) != batch_size:
                raise ValueError(f"pad(): {key!r} has {len(value)} items but {main!r} has {batch_size}")
        if padding_strategy == "longest":
            max_length = max(len(item) for item in required)
            padding_strategy = "max_length"
        batch: dict[str, list[Any]] = {}
        for index in range(batch_size):
            example = {key: value[index] for key, value in encoded_inputs.items()}
            padded = self._pad_one(
                example, max_length, padding_strategy, pad_to_multiple_of, padding_side, return_attention_mask
            )
            for key, value in padded.items():
                batch.setdefault(key, []).append(value)
        if preserved_mask is not None:
            sample = preserved_mask[0]
            if type(sample).__module__.startswith("torch"):
                import torch

                batch["attention_mask"] = torch.stack(preserved_mask)
            else:
                import numpy as np

                batch["attention_mask"] = np.stack(preserved_mask)
        return BatchEncoding(batch, tensor_type=return_tensors)

    def _pad_one(
        self,
        example: dict[str, Any],
        max_length: int | None,
        padding_strategy: str,
        pad_to_multiple_of: int | None,
        padding_side: str | None,
        return_attention_mask: bool | None,
    ) -> dict[str, Any]:
        if return_attention_mask is None:
            return_attention_mask = "attention_mask" in self.model_input_names
        main = self.model_input_names[0]
        required = list(example[main])
        if padding_strategy == "longest":
            max_length = len(required)
        if max_length is not None and pad_to_multiple_of and max_length % pad_to_multiple_of:  # 0: no rounding
            max_length = (max_length // pad_to_multiple_of + 1) * pad_to_multiple_of
        if return_attention_mask and "attention_mask" not in example:
            example["attention_mask"] = [1] * len(required)
        if padding_strategy == "do_not_pad" or max_length is None or len(required) == max_length:
            return example
        difference = max_length - len(required)
        if difference < 0:
            return example
        side = padding_side if padding_side is not None else self._padding_side
        if side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {side!r}")
        pads = {
            "attention_mask": 0 if return_attention_mask else None,
            "token_type_ids": 0,
            "special_tokens_mask": 1,
            main: self.pad_token_id,
        }
        for key, fill in pads.items():
            if key not in example or fill is None:
                continue
            values = list(example[key])
            example[key] = values + [fill] * difference if side == "right" else [fill] * difference + values
        return example
