"""What every encoder family shares: the layer loop, the input checks, the output flags.

A family's layers are called ``layer(hidden, mask, output_attentions, **layer_kwargs)`` and return
``(hidden, attention_weights or None)``; :func:`run_layers` walks them, collecting hidden states and
attention maps when asked and recomputing activations in the backward pass when gradient checkpointing
is on. :class:`Encoder` is that loop as a module holding ``layer`` (the Hub name ``encoder.layer.N``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from headway.configuration import PretrainedConfig
from headway.nn.attention import padding_mask

Tensor = torch.Tensor
LayerOutputs = tuple[Tensor, tuple[Tensor, ...] | None, tuple[Tensor, ...] | None]


def check_one_input(input_ids: Tensor | None, inputs_embeds: Tensor | None) -> None:
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError("Pass exactly one of input_ids or inputs_embeds")


def check_token_ids(input_ids: Tensor, vocab_size: int) -> None:
    """Out-of-range ids would index past the embedding table: say which and what was expected."""
    if not input_ids.numel():
        return
    low, high = torch.aminmax(input_ids)
    if int(high) >= vocab_size or int(low) < 0:
        bad = input_ids[(input_ids >= vocab_size) | (input_ids < 0)].unique()[:10].tolist()
        raise ValueError(
            f"input_ids contain token ids {bad} outside the vocabulary [0, {vocab_size}); was the text "
            "encoded with this model's tokenizer, and was the embedding resized after adding tokens?"
        )


def check_length(seq_len: int, limit: int, what: str = "positions") -> None:
    """A sequence longer than the model's ``limit`` is refused, naming both numbers."""
    if seq_len > limit:
        raise ValueError(
            f"Sequence length {seq_len} exceeds the model's maximum of {limit} {what}; truncate the input "
            "(tokenizer(..., truncation=True))"
        )


def output_flags(config: PretrainedConfig, output_attentions: bool | None,
                 output_hidden_states: bool | None) -> tuple[bool, bool]:
    """The call's ``output_attentions`` / ``output_hidden_states``, each defaulting to the config's."""
    return (
        config.output_attentions if output_attentions is None else output_attentions,
        config.output_hidden_states if output_hidden_states is None else output_hidden_states,
    )


def run_layers(
    layers: Iterable[nn.Module],
    hidden: Tensor,
    mask: Tensor | None,
    *,
    output_hidden_states: bool,
    output_attentions: bool,
    checkpointing: bool = False,
    **layer_kwargs: Any,
) -> LayerOutputs:
    """Run ``hidden`` (B, T, hidden) through ``layers``.

    Returns the last hidden state, every hidden state (the input first) when ``output_hidden_states``,
    and every layer's attention weights when ``output_attentions``. With ``checkpointing`` (training with
    gradient checkpointing on) each layer's activations are recomputed in the backward pass.
    """
    all_hidden = [hidden] if output_hidden_states else None
    all_attentions = [] if output_attentions else None
    for layer in layers:
        if checkpointing:
            hidden, weights = checkpoint(layer, hidden, mask, output_attentions, use_reentrant=False, **layer_kwargs)
        else:
            hidden, weights = layer(hidden, mask, output_attentions, **layer_kwargs)
        if all_hidden is not None:
            all_hidden.append(hidden)
        if all_attentions is not None:
            all_attentions.append(weights)
    return (
        hidden,
        tuple(all_hidden) if all_hidden is not None else None,
        tuple(all_attentions) if all_attentions is not None else None,
    )


class Encoder(nn.Module):
    """A stack of ``config.num_hidden_layers`` layers of ``layer_class`` run by :func:`run_layers`."""

    layer_class: ClassVar[type[nn.Module]]  # each family names its layer

    def __init__(self, config: PretrainedConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(self.layer_class(config) for _ in range(config.num_hidden_layers))
        self.gradient_checkpointing = False

    def forward(self, hidden_states: Tensor, mask: Tensor | None, *, output_hidden_states: bool,
                output_attentions: bool, **layer_kwargs: Any) -> LayerOutputs:
        return run_layers(
            self.layer, hidden_states, mask,
            output_hidden_states=output_hidden_states, output_attentions=output_attentions,
            checkpointing=self.gradient_checkpointing and self.training, **layer_kwargs,
        )


def run_encoder(
    config: PretrainedConfig,
    encoder: nn.Module,
    hidden: Tensor,
    attention_mask: Tensor | None,
    *,
    output_attentions: bool | None,
    output_hidden_states: bool | None,
) -> LayerOutputs:
    """The encoder stack over embedded ``hidden`` (B, T, hidden) with a 0/1 padding ``attention_mask``,
    the output flags defaulting to the config's."""
    output_attentions, output_hidden_states = output_flags(config, output_attentions, output_hidden_states)
    mask = padding_mask(attention_mask, hidden.dtype)
    return encoder(hidden, mask, output_hidden_states=output_hidden_states, output_attentions=output_attentions)
