"""Checks of what ``encode`` and ``predict`` are given: the texts, ``truncate_dim`` and the typed options."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch


def as_text_batch(inputs: Any, method: str) -> tuple[list[str | tuple[str, str]], bool]:
    """``(texts, was_single)``: a str becomes a batch of one; anything but strings is a TypeError.

    A batch may hold text pairs (two strings in a tuple or list), which are encoded together.
    """
    if isinstance(inputs, np.ndarray):
        inputs = inputs.tolist()  # a 0-d array of one string becomes that str
    if isinstance(inputs, str):
        return [inputs], True
    if inputs is None or isinstance(inputs, (bytes, dict)) or not isinstance(inputs, Iterable):
        raise TypeError(f"{method}() expects a string or a list of strings, got {type(inputs).__name__}")
    texts = list(inputs)
    for index, text in enumerate(texts):
        if isinstance(text, (tuple, list)) and len(text) == 2 and all(isinstance(t, str) for t in text):
            texts[index] = tuple(text)
        elif not isinstance(text, str):
            raise TypeError(
                f"{method}() expects a string or a list of strings; element {index} is a "
                f"{type(text).__name__}: {text!r}"
            )
    return texts, False


def check_truncate_dim(value: Any, dimension: int | None, where: str = "truncate_dim") -> int | None:
    """``value`` if None or a whole number of dimensions from 1 to ``dimension`` (when known).

    Raises:
        TypeError: not an int (a bool is not one).
        ValueError: below 1 (``-1`` would silently drop the last dimension) or above ``dimension``.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{where} must be a positive int (dimensions to keep) or None, got {value!r:.80}")
    if value < 1 or (dimension is not None and value > dimension):
        upper = f" and the embedding dimension {dimension}" if dimension is not None else ""
        raise ValueError(f"{where} must be between 1{upper}, got {value}")
    return int(value)


OPTION_KINDS: dict[str, tuple[tuple[type, ...], str]] = {
    "prompt_name": ((str, type(None)), "a str or None"),
    "prompt": ((str, type(None)), "a str or None"),
    "show_progress_bar": ((bool, type(None)), "a bool or None"),
    "convert_to_numpy": ((bool,), "a bool"),
    "convert_to_tensor": ((bool,), "a bool"),
    "normalize_embeddings": ((bool,), "a bool"),
    "device": ((str, torch.device, type(None)), "a str, a torch.device or None"),
    "batch_size": ((int, np.integer), "a positive int"),
    "precision": ((str,), "a str"),
    "output_value": ((str, type(None)), "a str or None"),
}


def check_options(**options: Any) -> None:
    """Each option of ``OPTION_KINDS`` of its kinds (a bool is no int), else a TypeError naming it."""
    for name, value in options.items():
        kinds, expected = OPTION_KINDS[name]
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise TypeError(f"{name} must be {expected}, got {type(value).__name__} {value!r:.80}")


__all__ = ["OPTION_KINDS", "as_text_batch", "check_options", "check_truncate_dim"]
