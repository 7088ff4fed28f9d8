"""What encoder-decoder families share: decoder inputs made from labels, encoder outputs given as tuples,
the seq2seq output of a head built from the bare model's, and the positional inputs of their heads.
"""

from __future__ import annotations

from typing import Any, TypeVar

import torch

from headway.outputs import BaseModelOutput, ModelOutput, Seq2SeqModelOutput

Tensor = torch.Tensor
IGNORE_INDEX = -100
O = TypeVar("O", bound=ModelOutput)

# The reference's encoder-decoder heads (BART, T5 and their variants) take the decoder's inputs after the
# encoder's; these are their ``input_order`` (see :mod:`headway.models.heads`).
SEQ2SEQ_INPUTS = (
    "input_ids",
    "attention_mask",
    "decoder_input_ids",
    "decoder_attention_mask",
    "encoder_outputs",
)
SEQ2SEQ_CLASSIFIER_INPUTS = (*SEQ2SEQ_INPUTS, "inputs_embeds", "decoder_inputs_embeds", "labels", "use_cache")
SEQ2SEQ_QA_INPUTS = (
    *SEQ2SEQ_INPUTS, "start_positions", "end_positions", "inputs_embeds", "decoder_inputs_embeds", "use_cache"
)  # fmt: skip


def shift_tokens_right(
    input_ids: Tensor, pad_token_id: int | None, decoder_start_token_id: int | None
) -> Tensor:
    """The decoder's inputs for targets ``input_ids`` (B, T): ``decoder_start_token_id``, then each row but
    its last token, with -100 (ignored labels) replaced by ``pad_token_id``."""
    if pad_token_id is None:
        raise ValueError("config.pad_token_id must be set to make decoder inputs from labels")
    if decoder_start_token_id is None:
        raise ValueError("config.decoder_start_token_id must be set to make decoder inputs from labels")
    shifted = input_ids.new_empty(input_ids.shape)
    shifted[:, 1:] = input_ids[:, :-1]
    shifted[:, 0] = decoder_start_token_id
    return shifted.masked_fill_(shifted == IGNORE_INDEX, pad_token_id)


def as_encoder_output(encoder_outputs: Any) -> BaseModelOutput:
    """A ``BaseModelOutput`` from an encoder's output or a tuple (last hidden state, hidden states, attentions)."""
    if isinstance(encoder_outputs, BaseModelOutput):
        return encoder_outputs
    if isinstance(encoder_outputs, ModelOutput):
        return BaseModelOutput(
            encoder_outputs.last_hidden_state,
            encoder_outputs.get("hidden_states"),
            encoder_outputs.get("attentions"),
        )
    if isinstance(encoder_outputs, (tuple, list)) and encoder_outputs:
        return BaseModelOutput(*encoder_outputs[:3])
    raise TypeError(
        "encoder_outputs must be a BaseModelOutput or a tuple whose first item is the encoder's last hidden "
        f"state, got {type(encoder_outputs).__name__}"
    )


def seq2seq_output(output_class: type[O], out: Seq2SeqModelOutput, **head_fields: Any) -> O:
    """``output_class`` (a ``Seq2Seq...Output``) holding a head's own fields (loss, logits...) and the bare
    model's cache, decoder and encoder fields."""
    return output_class(
        **head_fields,
        past_key_values=out.past_key_values,
        decoder_hidden_states=out.decoder_hidden_states,
        decoder_attentions=out.decoder_attentions,
        cross_attentions=out.cross_attentions,
        encoder_last_hidden_state=out.encoder_last_hidden_state,
        encoder_hidden_states=out.encoder_hidden_states,
        encoder_attentions=out.encoder_attentions,
    )


__all__ = [
    "IGNORE_INDEX",
    "SEQ2SEQ_CLASSIFIER_INPUTS",
    "SEQ2SEQ_INPUTS",
    "SEQ2SEQ_QA_INPUTS",
    "as_encoder_output",
    "seq2seq_output",
    "shift_tokens_right",
]
