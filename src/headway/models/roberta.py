"""RoBERTa (Liu et al., 2019, https://arxiv.org/abs/1907.11692) and XLM-RoBERTa (Conneau et al., 2019).

Reads checkpoints of ``model_type: "roberta"`` (roberta-base, distilroberta, all-distilroberta-v1, ...)
and ``"xlm-roberta"`` (xlm-roberta-base, multilingual-e5, paraphrase-multilingual-*, ...). The encoder
is BERT's; what differs is the embeddings (positions start at ``pad_token_id + 1`` and padding keeps
position ``pad_token_id``), the classification head (on the ``<s>`` token, without the pooler) and
the masked-LM head. Attribute paths are the Hub weight names.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from headway.configuration import PretrainedConfig, config_class
from headway.losses import token_classification_loss
from headway.models.bert import NO_POOLER_IGNORE, BertConfig, BertEmbeddings, BertModel, BertPreTrainedModel
from headway.models.heads import (
    ClassificationHead,
    MultipleChoice,
    QuestionAnswering,
    SequenceClassification,
    TokenClassification,
    classifier_dropout,
)
from headway.nn.layers import Dropout, Embedding, LayerNorm
from headway.nn.linear import Linear
from headway.outputs import MaskedLMOutput

Tensor = torch.Tensor


@config_class
class RobertaConfig(BertConfig):
    """BERT's fields; RoBERTa's vocabulary and special token ids (the reference's defaults)."""

    model_type: ClassVar[str] = "roberta"

    vocab_size: int = 50265
    pad_token_id: int | None = 1
    bos_token_id: int | None = 0
    eos_token_id: int | list[int] | None = 2

    @property
    def max_input_length(self) -> int:
        """Positions start after the padding row (``pad_token_id + 1``), so fewer tokens fit than rows."""
        return self.max_position_embeddings - (self.pad_token_id or 0) - 1


@config_class
class XLMRobertaConfig(RobertaConfig):
    model_type: ClassVar[str] = "xlm-roberta"

    vocab_size: int = 30522  # the reference's default; real checkpoints say 250002


def position_ids_from_input_ids(input_ids: Tensor, padding_idx: int) -> Tensor:
    """Positions ``padding_idx + 1, + 2, ...`` over non-padding tokens; padding gets ``padding_idx``.

    As fairseq's ``make_positions``: a token equal to ``padding_idx`` is padding wherever it is.
    """
    keep = input_ids.ne(padding_idx).int()  # (B, T)
    return (torch.cumsum(keep, dim=1).type_as(keep) * keep).long() + padding_idx


class RobertaEmbeddings(BertEmbeddings):
    """BERT's embeddings with RoBERTa's position ids (and a padding row in the position table)."""

    def __init__(self, config: RobertaConfig) -> None:
        super().__init__(config)
        self.padding_idx = config.pad_token_id
        self.position_embeddings = Embedding(
            config.max_position_embeddings, config.hidden_size, padding_idx=config.pad_token_id
        )

    def forward(
        self,
        input_ids: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        position_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
    ) -> Tensor:
        if position_ids is None:
            if input_ids is not None:
                position_ids = position_ids_from_input_ids(input_ids, self.padding_idx)  # (B, T)
            else:  # embeddings cannot tell padding: sequential positions
                seq_len = inputs_embeds.shape[1]
                position_ids = torch.arange(
                    self.padding_idx + 1, seq_len + self.padding_idx + 1, device=inputs_embeds.device
                )[None]  # (1, T)
            num_positions = self.position_embeddings.num_embeddings
            seq_len = position_ids.shape[-1]
            # Only a sequence this long can reach past the table; look at the ids (a sync) only then.
            if seq_len + self.padding_idx >= num_positions and int(position_ids.max()) >= num_positions:
                raise ValueError(
                    f"Sequence length {seq_len} exceeds the model's maximum of "
                    f"{num_positions - self.padding_idx - 1} tokens; truncate the input "
                    "(tokenizer(..., truncation=True))"
                )
        return super().forward(input_ids, token_type_ids, position_ids, inputs_embeds)


class RobertaLMHead(nn.Module):
    """dense -> gelu -> layer_norm -> decoder (tied to the word embeddings); ``bias`` is ``decoder.bias``."""

    def __init__(self, config: RobertaConfig) -> None:
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size)
        self.layer_norm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = Linear(config.hidden_size, config.vocab_size)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.decoder.bias = self.bias  # one bias under both Hub names (lm_head.bias, lm_head.decoder.bias)

    def forward(self, features: Tensor) -> Tensor:
        return self.decoder(self.layer_norm(self.dense.forward_gelu(features)))  # exact (erf) GELU


class RobertaClassificationHead(ClassificationHead):
    """RoBERTa's name for the shared dense-tanh-out_proj head, here on the ``<s>`` token's vector."""

    def __init__(self, config: PretrainedConfig) -> None:
        super().__init__(config.hidden_size, config.num_labels, classifier_dropout(config))


class ClassificationHeadOnFirstToken(SequenceClassification):
    """Sequence classification through a ``classifier`` module (RobertaClassificationHead) on the first
    token, without the pooler: RoBERTa's, and MPNet's."""

    pooling = "first"

    def init_head(self, config: PretrainedConfig) -> None:
        self.classifier = RobertaClassificationHead(config)

    def score(self, first_token: Tensor) -> Tensor:
        return self.classifier(first_token)


class RobertaPreTrainedModel(BertPreTrainedModel):
    config_class = RobertaConfig
    base_model_prefix = "roberta"

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, RobertaLMHead):
            module.bias.zero_()


class RobertaModel(RobertaPreTrainedModel, BertModel):
    """The bare encoder: ``last_hidden_state`` (B, T, hidden) and ``pooler_output`` (B, hidden).

    BERT's model (forward included) with RoBERTa's embeddings.
    """

    embeddings_class = RobertaEmbeddings


class RobertaForSequenceClassification(RobertaPreTrainedModel, ClassificationHeadOnFirstToken):
    base_model_class = RobertaModel
    _keys_to_ignore_on_load_unexpected = NO_POOLER_IGNORE


class RobertaForTokenClassification(RobertaPreTrainedModel, TokenClassification):
    base_model_class = RobertaModel
    _keys_to_ignore_on_load_unexpected = NO_POOLER_IGNORE


class RobertaForQuestionAnswering(RobertaPreTrainedModel, QuestionAnswering):
    base_model_class = RobertaModel
    _keys_to_ignore_on_load_unexpected = NO_POOLER_IGNORE


class RobertaForMaskedLM(RobertaPreTrainedModel):
    _tied_weights_keys: ClassVar[dict[str, str]] = {
        "lm_head.decoder.weight": "roberta.embeddings.word_embeddings.weight"
    }
    _keys_to_ignore_on_load_unexpected = NO_POOLER_IGNORE

    def __init__(self, config: RobertaConfig) -> None:
        super().__init__(config)
        self.roberta = RobertaModel(config, add_pooling_layer=False)
        self.lm_head = RobertaLMHead(config)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head.decoder

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, position_ids: Tensor | None = None,
                inputs_embeds: Tensor | None = None, labels: Tensor | None = None, **kwargs
                ) -> MaskedLMOutput:
        out = self.roberta(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, **kwargs)
        logits = self.lm_head(out.last_hidden_state)  # (B, T, vocab)
        loss = token_classification_loss(logits, labels) if labels is not None else None
        return MaskedLMOutput(loss, logits, out.hidden_states, out.attentions)


class RobertaForMultipleChoice(RobertaPreTrainedModel, MultipleChoice):
    base_model_class = RobertaModel  # classifier(dropout(pooler_output)) per choice
    # The reference's positional order, which differs from the other heads'.
    input_order = ("input_ids", "token_type_ids", "attention_mask", "labels", "position_ids", "inputs_embeds")

    def init_head(self, config: RobertaConfig) -> None:
        self.dropout = Dropout(config.hidden_dropout_prob)  # the reference ignores classifier_dropout here
        self.classifier = Linear(config.hidden_size, 1)


# XLM-RoBERTa: the same network; only the config (model_type "xlm-roberta") differs.
class XLMRobertaModel(RobertaModel):
    config_class = XLMRobertaConfig


class XLMRobertaForSequenceClassification(RobertaForSequenceClassification):
    config_class = XLMRobertaConfig


class XLMRobertaForTokenClassification(RobertaForTokenClassification):
    config_class = XLMRobertaConfig


class XLMRobertaForQuestionAnswering(RobertaForQuestionAnswering):
    config_class = XLMRobertaConfig


class XLMRobertaForMaskedLM(RobertaForMaskedLM):
    config_class = XLMRobertaConfig


class XLMRobertaForMultipleChoice(RobertaForMultipleChoice):
    config_class = XLMRobertaConfig


__all__ = [
    "RobertaConfig",
    "RobertaForMaskedLM",
    "RobertaForMultipleChoice",
    "RobertaForQuestionAnswering",
    "RobertaForSequenceClassification",
    "RobertaForTokenClassification",
    "RobertaModel",
    "XLMRobertaConfig",
    "XLMRobertaForMaskedLM",
    "XLMRobertaForMultipleChoice",
    "XLMRobertaForQuestionAnswering",
    "XLMRobertaForSequenceClassification",
    "XLMRobertaForTokenClassification",
    "XLMRobertaModel",
]
