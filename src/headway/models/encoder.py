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


# Integer dtypes an embedding table can be indexed with (what torch's embedding and gather take).
INDEX_DTYPES = (torch.int64, torch.int32)
_TENSOR_HINT = "; tokenizer(..., return_tensors='pt') gives tensors"


def _shape(tensor: Tensor) -> tuple[int, ...]:
    return tuple(tensor.shape)


def _require_tensor(name: str, value: Any) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}{_TENSOR_HINT}")
    return value


def _require_index_dtype(name: str, tensor: Tensor, what: str) -> None:
    if tensor.dtype not in INDEX_DTYPES:
        raise TypeError(
            f"{name} must hold integer {what} (torch.long or torch.int), got {tensor.dtype}; "
            f"convert with {name}.long()"
        )


def check_one_input(
    input_ids: Tensor | None,
    inputs_embeds: Tensor | None,
    *,
    hidden_size: int | None = None,
    leading_dims: bool = False,
) -> tuple[int, ...]:
    """Exactly one of ``input_ids`` (B, T) and ``inputs_embeds`` (B, T, hidden), of the right type and rank.

    No device->host sync: only types, dtypes and shapes are looked at.

    Args:
        input_ids: Integer token ids, (B, T).
        inputs_embeds: Embedded tokens, (B, T, hidden).
        hidden_size: The size ``inputs_embeds`` must end with, when known.
        leading_dims: The model flattens any leading dimensions into the batch (GPT-2, as the reference):
            (T,) and (..., B, T) ids are accepted too.

    Returns:
        The shape of the tokens, ``input_ids.shape`` or ``inputs_embeds.shape[:-1]``.

    Raises:
        ValueError: both or neither given, wrong rank, an empty batch or sequence, or a wrong hidden size.
        TypeError: not a tensor, or ids that are not integers.
    """
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError("Pass exactly one of input_ids or inputs_embeds")
    expected = "(..., batch, seq_len)" if leading_dims else "(batch, seq_len)"
    if input_ids is not None:
        name, shape = "input_ids", _shape(_require_tensor("input_ids", input_ids))
        _require_index_dtype(name, input_ids, "token ids")
    else:
        name, full = "inputs_embeds", _shape(_require_tensor("inputs_embeds", inputs_embeds))
        if inputs_embeds.dtype == torch.bool or inputs_embeds.is_complex():
            raise TypeError(f"inputs_embeds must hold real numbers, got {inputs_embeds.dtype}")
        if len(full) < 2 or (not leading_dims and len(full) != 3):
            expected_embeds = f"{expected[:-1]}, hidden_size)"
            raise ValueError(f"inputs_embeds must have shape {expected_embeds}, got {full}")
        if hidden_size is not None and full[-1] != hidden_size:
            raise ValueError(
                f"inputs_embeds must end with the model's hidden size {hidden_size}, got shape {full}"
            )
        shape = full[:-1]
    if len(shape) != 2 and not (leading_dims and len(shape) >= 1):
        hint = f"; for one sequence pass {name}[None] (a batch of one)" if len(shape) == 1 else ""
        raise ValueError(f"{name} must have shape {expected}, got {shape}{hint}")
    if 0 in shape:
        raise ValueError(
            f"{name} is empty (shape {shape}): expected at least one sequence of at least one token"
        )
    return shape


def check_companions(
    shape: tuple[int, ...],
    *,
    attention_mask: Tensor | None = None,
    token_type_ids: Tensor | None = None,
    position_ids: Tensor | None = None,
    key_len: int | None = None,
    rotary: bool = False,
) -> None:
    """The tensors that go with the tokens agree with their shape ``(B, T)`` (from :func:`check_one_input`).

    ``attention_mask`` is (B, key_len) (key_len: T, or cached + new positions for a decoder) of 0/1
    (bool, integer or float); ``token_type_ids`` and ``position_ids`` are integer (B, T), (1, T) or
    (T,), broadcast over the batch. Rotary models (``rotary``) take (B, T) or (1, T) positions of any
    real dtype, as the reference does. No device->host sync.

    Raises:
        ValueError: a shape that does not match the tokens'.
        TypeError: not a tensor, or ids that are not integers.
    """
    *lead, seq_len = shape
    key_len = seq_len if key_len is None else key_len
    if attention_mask is not None:
        _require_tensor("attention_mask", attention_mask)
        if attention_mask.is_complex():
            raise TypeError(
                f"attention_mask must hold 0/1 values (bool, integer or float), got {attention_mask.dtype}"
            )
        expected = (*lead, key_len)
        if _shape(attention_mask) != expected:
            what = "batch, seq_len" if key_len == seq_len else f"batch, cached + new positions = {key_len}"
            raise ValueError(
                f"attention_mask must have shape ({what}) = {expected} to match the inputs "
                f"{tuple(shape)}, got {_shape(attention_mask)}"
            )
    for name, tensor in (("token_type_ids", token_type_ids), ("position_ids", position_ids)):
        if tensor is None:
            continue
        _require_tensor(name, tensor)
        if name == "position_ids" and rotary:
            if tensor.dtype == torch.bool or tensor.is_complex():
                raise TypeError(f"position_ids must hold real positions, got {tensor.dtype}")
            allowed = [(*lead, seq_len), (1, seq_len)]
        else:
            _require_index_dtype(name, tensor, "segment ids" if name == "token_type_ids" else "positions")
            allowed = [(*lead, seq_len), (1, seq_len), (seq_len,)]
        if _shape(tensor) not in allowed:
            shapes = ", ".join(str(s) for s in dict.fromkeys(allowed[1:]) if s != allowed[0])
            raise ValueError(
                f"{name} must have the inputs' shape {allowed[0]} (or {shapes}, the same for every "
                f"sequence), got {_shape(tensor)}"
            )


def check_index_ranges(*checks: tuple[str, Tensor | None, int] | tuple[str, Tensor | None, int, str]) -> None:
    """Each ``(name, tensor, size[, table])``: the tensor's values lie in ``[0, size)``, the rows of ``table``.

    One device->host sync for all of them together (the min and max of each, read at once); a tensor
    that is None is skipped. The error names the argument, the bad values and the range expected.
    """
    present = [check for check in checks if check[1] is not None and check[1].numel()]
    if not present:
        return
    bounds = torch.cat([torch.stack(torch.aminmax(check[1])) for check in present]).tolist()  # one sync
    for i, (name, tensor, size, *table) in enumerate(present):
        low, high = bounds[2 * i], bounds[2 * i + 1]
        if low >= 0 and high < size:
            continue
        bad = tensor[(tensor >= size) | (tensor < 0)].unique()[:10].tolist()
        if name == "input_ids":
            raise ValueError(
                f"input_ids contain token ids {bad} outside the vocabulary [0, {size}); was the text "
                "encoded with this model's tokenizer, and was the embedding resized after adding tokens?"
            )
        table = (
            table[0] if table else {"token_type_ids": "token type", "position_ids": "position"}.get(name, "")
        )
        raise ValueError(
            f"{name} contain values {bad} outside [0, {size}), the rows of the model's {table} table"
        )


def check_token_ids(input_ids: Tensor, vocab_size: int) -> None:
    """Out-of-range ids would index past the embedding table: say which and what was expected."""
    check_index_ranges(("input_ids", input_ids, vocab_size))


def check_length(seq_len: int, limit: int, what: str = "positions") -> None:
    """A sequence longer than the model's ``limit`` is refused, naming both numbers."""
    if seq_len > limit:
        raise ValueError(
            f"Sequence length {seq_len} exceeds the model's maximum of {limit} {what}; truncate the input "
            "(tokenizer(..., truncation=True))"
        )


def output_flags(
    config: PretrainedConfig, output_attentions: bool | None, output_hidden_states: bool | None
) -> tuple[bool, bool]:
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
            hidden, weights = checkpoint(
                layer, hidden, mask, output_attentions, use_reentrant=False, **layer_kwargs
            )
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

    def forward(
        self,
        hidden_states: Tensor,
        mask: Tensor | None,
        *,
        output_hidden_states: bool,
        output_attentions: bool,
        **layer_kwargs: Any,
    ) -> LayerOutputs:
        return run_layers(
            self.layer,
            hidden_states,
            mask,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            checkpointing=self.gradient_checkpointing and self.training,
            **layer_kwargs,
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
    return encoder(
        hidden, mask, output_hidden_states=output_hidden_states, output_attentions=output_attentions
    )
