"""``generate()``: greedy search, sampling and beam search over a decoder with a key/value cache.

(Being written: the mixin exists so that model files can inherit it.)
"""

from __future__ import annotations


class GenerationMixin:
    """Adds ``generate`` to a model with a language-model head (``...ForCausalLM``)."""


__all__ = ["GenerationMixin"]
