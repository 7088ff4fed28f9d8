"""mBART (Liu et al., 2020, https://arxiv.org/abs/2001.08210): BART pre-trained on many languages.

Reads ``model_type: "mbart"`` checkpoints (facebook/mbart-large-cc25, mbart-large-en-ro, mbart-large-50 and
its many-to-many translators, their fine-tunes). It is BART with pre-norm layers (each block normalises its
input), a final ``layer_norm`` after the encoder's and the decoder's last layer, and decoder inputs made the
mBART way: a target sentence ends with ``</s>`` and its language code, and the code (the last non-padding
token) wraps round to the front instead of a fixed ``decoder_start_token_id``. Many-to-many checkpoints
choose the target language at generation with ``forced_bos_token_id`` (its language code forced as the first
generated token). Everything else, weight names included, is BART's (``headway.models.bart``).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from headway.configuration import config_class
from headway.models.bart import (
    BartConfig,
    BartDecoder,
    BartDecoderLayer,
    BartEncoder,
    BartEncoderLayer,
    BartForConditionalGeneration,
    BartForQuestionAnswering,
    BartForSequenceClassification,
    BartLayer,
    BartModel,
    BartPreTrainedModel,
    BartStack,
)
from headway.models.seq2seq import IGNORE_INDEX

Tensor = torch.Tensor


@config_class
class MBartConfig(BartConfig):
    """mBART's settings, with the reference's names and defaults (mbart-large-cc25's shape).

    As BART's, but no ``decoder_start_token_id`` by default (decoder inputs start with a language code) and
    two labels without ``id2label``. ``forced_bos_token_id`` (a language code) is kept when set.
    """

    model_type: ClassVar[str] = "mbart"
    default_num_labels: ClassVar[int] = 2

    decoder_start_token_id: int | None = None


def shift_tokens_right(input_ids: Tensor, pad_token_id: int | None) -> Tensor:
    """mBART's decoder inputs for targets ``input_ids`` (B, T): each row's last non-padding token (its
    language code) first, then the row but its last token; -100 (ignored labels) turned to ``pad_token_id``.

    As the reference, the last non-padding token is found by counting the non-padding tokens, so targets
    must be right-padded.
    """
    if pad_token_id is None:
        raise ValueError("config.pad_token_id must be set to make decoder inputs from labels")
    tokens = input_ids.masked_fill(input_ids == IGNORE_INDEX, pad_token_id)
    last = tokens.ne(pad_token_id).sum(dim=1, keepdim=True) - 1  # (B, 1) index of the language code
    if bool((last < 0).any()):
        rows = (last[:, 0] < 0).nonzero().flatten().tolist()
        raise ValueError(
            f"rows {rows} hold only padding (pad_token_id {pad_token_id}): no language code to start with"
        )
    shifted = torch.empty_like(tokens)
    shifted[:, 1:] = tokens[:, :-1]
    shifted[:, 0] = tokens.gather(1, last)[:, 0]
    return shifted


class MBartEncoderLayer(BartEncoderLayer):
    """BART's encoder layer, normalising each block's input (pre-norm)."""

    normalize_before: ClassVar[bool] = True


class MBartDecoderLayer(BartDecoderLayer):
    """BART's decoder layer, normalising each block's input (pre-norm)."""

    normalize_before: ClassVar[bool] = True


class MBartPreTrainedModel(BartPreTrainedModel):
    config_class = MBartConfig


class MBartEncoder(MBartPreTrainedModel, BartEncoder):
    """BART's encoder with pre-norm layers and a final ``layer_norm``."""

    layer_class: ClassVar[type[BartLayer]] = MBartEncoderLayer
    final_norm: ClassVar[bool] = True


class MBartDecoder(MBartPreTrainedModel, BartDecoder):
    """BART's decoder with pre-norm layers and a final ``layer_norm``."""

    layer_class: ClassVar[type[BartLayer]] = MBartDecoderLayer
    final_norm: ClassVar[bool] = True


class MBartModel(MBartPreTrainedModel, BartModel):
    """The bare encoder-decoder; without decoder inputs it decodes ``input_ids`` shifted the mBART way."""

    encoder_class: ClassVar[type[BartStack]] = MBartEncoder
    decoder_class: ClassVar[type[BartStack]] = MBartDecoder

    def decoder_inputs_from_input_ids(self, input_ids: Tensor) -> Tensor:
        return shift_tokens_right(input_ids, self.config.pad_token_id)


class MBartForConditionalGeneration(MBartPreTrainedModel, BartForConditionalGeneration):
    """mBART with the language-model head: translation and summarization. ``labels`` (each ending with
    ``</s>`` and the target language code) give the decoder inputs, the code first."""

    base_model_class: ClassVar[type[BartModel]] = MBartModel

    def prepare_decoder_input_ids_from_labels(self, labels: Tensor) -> Tensor:
        """The decoder inputs the model makes from ``labels`` (B, T): the language code first, then the labels
        but their last token, -100 turned to pad."""
        return shift_tokens_right(labels, self.config.pad_token_id)


class MBartForSequenceClassification(MBartPreTrainedModel, BartForSequenceClassification):
    """Scores each sequence at the decoder's hidden state over its last end-of-sequence token."""

    base_model_class = MBartModel


class MBartForQuestionAnswering(MBartPreTrainedModel, BartForQuestionAnswering):
    """Start and end scores over the decoder's hidden states (``qa_outputs``)."""

    base_model_class = MBartModel


__all__ = [
    "MBartConfig",
    "MBartDecoder",
    "MBartEncoder",
    "MBartForConditionalGeneration",
    "MBartForQuestionAnswering",
    "MBartForSequenceClassification",
    "MBartModel",
    "MBartPreTrainedModel",
    "shift_tokens_right",
]
