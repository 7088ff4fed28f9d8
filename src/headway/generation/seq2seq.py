"""What ``generate()`` does differently for an encoder-decoder (BART, T5...): the encoder runs once, and
the decoder generates from ``decoder_start_token_id``.

``inputs`` / ``input_ids`` (and ``attention_mask``) are the encoder's. Its output is computed here once
(or taken from ``encoder_outputs=``) and repeated, with its attention mask, for each beam or returned
sequence; every decoding step then reads it through the decoder's cross-attention, whose keys the model's
``EncoderDecoderCache`` computes on the first step and keeps. The decoder's prompt is
``decoder_input_ids`` when given (``decoder_start_token_id`` put first unless every row already starts with
it, as the reference does), else one ``decoder_start_token_id`` per row. Lengths (``max_length``,
``min_length``, ``max_new_tokens``) count decoder tokens, the start token included.

As in the reference, no encoder mask is inferred from padding: pass ``attention_mask`` for padded inputs.
"""

from __future__ import annotations

from typing import Any

import torch

from headway.outputs import (
    BaseModelOutput,
    GenerateBeamDecoderOnlyOutput,
    GenerateBeamEncoderDecoderOutput,
    GenerateEncoderDecoderOutput,
)

# generate() keywords that are an encoder-decoder's inputs, besides ``input_ids`` and ``attention_mask``.
SEQ2SEQ_INPUT_KWARGS = ("decoder_input_ids", "decoder_attention_mask", "encoder_outputs")


def decoder_start_token_id(settings: Any, model_config: Any) -> int:
    """The first decoder token: the settings' ``decoder_start_token_id``, else the model config's, else the
    settings' ``bos_token_id``; a ValueError naming them when none is set."""
    for value in (settings.decoder_start_token_id, getattr(model_config, "decoder_start_token_id", None),
                  settings.bos_token_id):  # fmt: skip
        if value is not None:
            if isinstance(value, (list, tuple)) or not isinstance(value, int) or value < 0:
                raise ValueError(f"decoder_start_token_id must be one non-negative token id, got {value!r}")
            return value
    raise ValueError(
        "decoder_start_token_id (or bos_token_id) has to be set for encoder-decoder generation: pass "
        "decoder_start_token_id= to generate(), or set it in the model's config or generation_config"
    )


def _check_ids(name: str, ids: Any) -> torch.Tensor:
    if not isinstance(ids, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of token ids, got {type(ids).__name__}")
    if ids.dim() != 2:
        raise ValueError(f"{name} must have shape (batch, seq_len), got {tuple(ids.shape)}")
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer token ids, got dtype {ids.dtype}")
    if ids.shape[0] == 0 or ids.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(ids.shape)}): give at least one token per row")
    return ids


def _check_mask(name: str, mask: Any, shape: tuple[int, ...]) -> None:
    if not isinstance(mask, torch.Tensor) or tuple(mask.shape) != shape:
        got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"{name} must be a tensor of shape {shape} (its ids' shape), got {got}")


def encode(model: Any, inputs: Any, given: dict[str, Any], settings: Any) -> tuple[BaseModelOutput, Any]:
    """The encoder's output for the call's inputs (or the ``encoder_outputs`` given) and its 0/1 mask
    (None when nothing is masked)."""
    from headway.models.seq2seq import as_encoder_output

    if inputs is not None and given.get("input_ids") is not None:
        raise ValueError("pass the encoder's input either as `inputs` or as `input_ids=`, not both")
    input_ids = inputs if inputs is not None else given.get("input_ids")
    attention_mask = given.get("attention_mask")
    device = model.device
    if given.get("encoder_outputs") is not None:
        encoder_outputs = as_encoder_output(given["encoder_outputs"])
        batch, length = encoder_outputs.last_hidden_state.shape[:2]
    else:
        if input_ids is None:
            raise ValueError(
                "an encoder-decoder model generates from the encoder's input: pass input_ids (or "
                "encoder_outputs=)"
            )
        input_ids = _check_ids("input_ids", input_ids).to(device, torch.long)
        batch, length = input_ids.shape
        limit = model.config.max_input_length
        if limit is not None and length > limit:
            raise ValueError(
                f"the input has {length} tokens, more than the {limit} this model's encoder can read "
                "(config.max_input_length); truncate it (tokenizer(..., truncation=True))"
            )
    if attention_mask is not None:
        _check_mask("attention_mask", attention_mask, (batch, length))
        attention_mask = attention_mask.to(device)
    if given.get("encoder_outputs") is None:
        encoder_outputs = model.get_encoder()(
            input_ids=input_ids,
            attention_mask=attention_mask,
            output_attentions=bool(settings.output_attentions),
            output_hidden_states=bool(settings.output_hidden_states),
            return_dict=True,
        )
    if attention_mask is not None and bool(attention_mask.all()):
        attention_mask = None  # nothing masked: cross-attention takes its unmasked path
    return encoder_outputs, attention_mask


def decoder_prompt(
    given: dict[str, Any], batch: int, start: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The decoder's prompt (B, T) and its 0/1 mask (or None): ``decoder_input_ids`` with the start token put
    first unless every row already begins with it, or the start token alone."""
    ids = given.get("decoder_input_ids")
    mask = given.get("decoder_attention_mask")
    if ids is None:
        if mask is not None:
            raise ValueError("decoder_attention_mask was given without decoder_input_ids")
        return torch.full((batch, 1), start, dtype=torch.long, device=device), None
    ids = _check_ids("decoder_input_ids", ids).to(device, torch.long)
    if ids.shape[0] != batch:
        raise ValueError(f"decoder_input_ids has {ids.shape[0]} rows, but the encoder's input has {batch}")
    if mask is not None:
        _check_mask("decoder_attention_mask", mask, tuple(ids.shape))
        mask = mask.to(device)
    if bool((ids[:, 0] != start).all()):
        ids = torch.cat([ids.new_full((batch, 1), start), ids], dim=1)
        if mask is not None:
            mask = torch.cat([mask.new_ones(batch, 1), mask], dim=1)
    if mask is not None and bool(mask.all()):
        mask = None
    return ids, mask


def expand_encoder(
    encoder_outputs: BaseModelOutput, mask: torch.Tensor | None, expand: int
) -> tuple[Any, Any]:
    """Each input's encoder output and mask repeated ``expand`` times (for its beams or samples)."""
    if expand == 1:
        return encoder_outputs, mask
    hidden = encoder_outputs.last_hidden_state.repeat_interleave(expand, dim=0)  # (B * expand, S, hidden)
    expanded = BaseModelOutput(hidden, encoder_outputs.hidden_states, encoder_outputs.attentions)
    return expanded, None if mask is None else mask.repeat_interleave(expand, dim=0)


def encoder_decoder_output(output: Any, encoder_outputs: BaseModelOutput) -> Any:
    """A decoder-only ``generate`` output as the encoder-decoder one, with the encoder's maps and states."""
    encoder = {
        "encoder_attentions": encoder_outputs.attentions,
        "encoder_hidden_states": encoder_outputs.hidden_states,
        "past_key_values": output.past_key_values,
    }
    common = {"sequences": output.sequences, "scores": output.scores, "logits": output.logits}
    if isinstance(output, GenerateBeamDecoderOnlyOutput):
        return GenerateBeamEncoderDecoderOutput(
            **common, sequences_scores=output.sequences_scores, beam_indices=output.beam_indices, **encoder
        )
    return GenerateEncoderDecoderOutput(**common, **encoder)


__all__ = [
    "SEQ2SEQ_INPUT_KWARGS",
    "decoder_prompt",
    "decoder_start_token_id",
    "encode",
    "encoder_decoder_output",
    "expand_encoder",
]
