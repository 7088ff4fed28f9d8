"""PEGASUS (Zhang et al., 2019, https://arxiv.org/abs/1912.08777): pre-training with gap sentences for
abstractive summarization.

Reads ``model_type: "pegasus"`` checkpoints (google/pegasus-large, pegasus-xsum, pegasus-cnn_dailymail,
pegasus-multi_news, their fine-tunes). It is BART's encoder-decoder with mBART's pre-norm layers and final
``layer_norm``, Marian's fixed sinusoidal positions (row ``p`` for position ``p``, saved in the checkpoints as
``embed_positions.weight``) and no LayerNorm over the embeddings; token embeddings are scaled by
sqrt(d_model) where ``scale_embedding`` says (the Hub configs do). The pad token (0) starts the decoder.
"""

from __future__ import annotations

from typing import ClassVar

from headway.configuration import config_class
from headway.models.bart import BartConfig, BartForConditionalGeneration, BartLayer, BartModel, BartStack
from headway.models.marian import MarianDecoder, MarianEncoder, MarianModel, MarianPreTrainedModel
from headway.models.mbart import MBartDecoderLayer, MBartEncoderLayer


@config_class
class PegasusConfig(BartConfig):
    """PEGASUS's settings, with the reference's names and defaults (pegasus-large's ids, BART-large's shape)."""

    model_type: ClassVar[str] = "pegasus"
    default_num_labels: ClassVar[int] = 2

    pad_token_id: int | None = 0
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = 1
    decoder_start_token_id: int | None = 0
    forced_eos_token_id: int | list[int] | None = 1


class PegasusPreTrainedModel(MarianPreTrainedModel):
    config_class = PegasusConfig
    _keys_to_ignore_on_load_missing: ClassVar[list[str]] = []  # PEGASUS checkpoints hold their tables


class PegasusEncoder(PegasusPreTrainedModel, MarianEncoder):
    """Marian's encoder (sinusoidal positions) with pre-norm layers and a final ``layer_norm``."""

    layer_class: ClassVar[type[BartLayer]] = MBartEncoderLayer
    final_norm: ClassVar[bool] = True


class PegasusDecoder(PegasusPreTrainedModel, MarianDecoder):
    """Marian's decoder (sinusoidal positions, given embeddings scaled) with pre-norm layers and a final
    ``layer_norm``; one vocabulary, shared with the encoder."""

    layer_class: ClassVar[type[BartLayer]] = MBartDecoderLayer
    final_norm: ClassVar[bool] = True
    token_vocab_size = staticmethod(BartStack.token_vocab_size)  # one vocabulary


class PegasusModel(PegasusPreTrainedModel, BartModel):
    """The bare encoder-decoder; it needs ``decoder_input_ids`` (or ``decoder_inputs_embeds``)."""

    encoder_class: ClassVar[type[BartStack]] = PegasusEncoder
    decoder_class: ClassVar[type[BartStack]] = PegasusDecoder
    decoder_inputs_from_input_ids = MarianModel.decoder_inputs_from_input_ids


class PegasusForConditionalGeneration(PegasusPreTrainedModel, BartForConditionalGeneration):
    """PEGASUS with the language-model head (tied to ``model.shared``, plus ``final_logits_bias``):
    summarization."""

    base_model_class: ClassVar[type[BartModel]] = PegasusModel
    _keys_to_ignore_on_load_missing: ClassVar[list[str]] = ["final_logits_bias"]


__all__ = [
    "PegasusConfig",
    "PegasusDecoder",
    "PegasusEncoder",
    "PegasusForConditionalGeneration",
    "PegasusModel",
    "PegasusPreTrainedModel",
]
