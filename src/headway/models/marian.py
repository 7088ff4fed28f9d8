"""Marian (Junczys-Dowmunt et al., 2018, https://arxiv.org/abs/1804.00344): the translation models of OPUS-MT.

Reads ``model_type: "marian"`` checkpoints (Helsinki-NLP/opus-mt-*, opus-tatoeba, their fine-tunes). It is
BART's encoder-decoder (post-norm layers, ``final_logits_bias``) with fixed sinusoidal positions in place of
learned ones, no LayerNorm over the embeddings, token embeddings scaled by sqrt(d_model) (the Hub configs set
``scale_embedding``), and the pad token as the decoder's start. Source and target may have separate
vocabularies: with ``share_encoder_decoder_embeddings=False`` the decoder embeds (and the head predicts)
``decoder_vocab_size`` tokens, tied to each other, and there is no ``model.shared``.

The sinusoidal tables are computed when the model is built. They are ``embed_positions.weight`` in the state
dict, as in the reference, but ``MarianMTModel`` does not save them (older Hub checkpoints hold them; they are
loaded, with the same values). Everything else is BART's (``headway.models.bart``).
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from headway.configuration import config_class
from headway.models.bart import (
    BartConfig,
    BartDecoder,
    BartEncoder,
    BartForConditionalGeneration,
    BartModel,
    BartPreTrainedModel,
    BartStack,
)

Tensor = torch.Tensor


@config_class
class MarianConfig(BartConfig):
    """Marian's settings, with the reference's names and defaults (opus-mt-en-de's ids, BART-large's shape).

    ``decoder_vocab_size`` defaults to ``vocab_size``; it only matters with
    ``share_encoder_decoder_embeddings=False`` (separate source and target vocabularies).
    """

    model_type: ClassVar[str] = "marian"
    default_num_labels: ClassVar[int] = 2

    vocab_size: int = 58101
    decoder_vocab_size: int | None = None
    share_encoder_decoder_embeddings: bool = True
    pad_token_id: int | None = 58100
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = 0
    decoder_start_token_id: int | None = 58100
    forced_eos_token_id: int | list[int] | None = 0

    def __post_init__(self) -> None:
        self.decoder_vocab_size = self.decoder_vocab_size or self.vocab_size
        if (
            not isinstance(self.decoder_vocab_size, int)
            or isinstance(self.decoder_vocab_size, bool)
            or (self.decoder_vocab_size < 1)
        ):
            raise ValueError(
                f"decoder_vocab_size must be a positive int or None, got {self.decoder_vocab_size!r}"
            )
        super().__post_init__()


def sinusoidal_table(num_positions: int, dim: int) -> Tensor:
    """(num_positions, dim) float64: sines of ``pos / 10000 ** (2k / dim)`` in the first ceil(dim / 2)
    columns, cosines of the same angles in the rest (not interleaved)."""
    positions = torch.arange(num_positions, dtype=torch.float64)[:, None]  # (P, 1)
    sines, cosines = (dim + 1) // 2, dim // 2
    rates = 10000.0 ** (torch.arange(sines, dtype=torch.float64) * 2 / dim)  # (ceil(dim / 2),)
    angles = positions / rates  # (P, ceil(dim / 2))
    return torch.cat([angles.sin(), angles[:, :cosines].cos()], dim=1)


class SinusoidalPositionalEmbedding(nn.Module):
    """Fixed sinusoidal position vectors; position ``p`` reads row ``p`` (no offset).

    ``weight`` is a parameter that takes no gradient, so that it is in the state dict as the reference's
    ``embed_positions.weight``; it is filled when built (and, when loading, if the checkpoint lacks it).
    """

    def __init__(self, num_positions: int, embedding_dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_positions, embedding_dim), requires_grad=False)
        self.reset_buffers()

    @torch.no_grad()
    def reset_buffers(self) -> None:
        """Fill the table (a no-op on the meta device); loading calls it when the checkpoint has no table."""
        if not self.weight.is_meta:
            self.weight.copy_(sinusoidal_table(*self.weight.shape))

    def forward(self, positions: Tensor) -> Tensor:
        """Position vectors (..., dim) of ``positions`` (T,) or (B, T); no gradient reaches the table."""
        return F.embedding(positions, self.weight.detach())


class MarianPreTrainedModel(BartPreTrainedModel):
    config_class = MarianConfig
    # The reference leaves the sinusoidal tables out of MarianMTModel's checkpoints; they are recomputed.
    _keys_to_ignore_on_load_missing: ClassVar[list[str]] = [r"embed_positions\.weight$"]


class MarianEncoder(MarianPreTrainedModel, BartEncoder):
    """BART's encoder with sinusoidal positions and no embedding LayerNorm."""

    position_class: ClassVar[type[nn.Module]] = SinusoidalPositionalEmbedding
    embedding_norm: ClassVar[bool] = False


class MarianDecoder(MarianPreTrainedModel, BartDecoder):
    """BART's decoder with sinusoidal positions, no embedding LayerNorm, and the target vocabulary."""

    position_class: ClassVar[type[nn.Module]] = SinusoidalPositionalEmbedding
    embedding_norm: ClassVar[bool] = False

    @staticmethod
    def token_vocab_size(config: BartConfig) -> int:
        if getattr(config, "share_encoder_decoder_embeddings", True):
            return config.vocab_size
        return config.decoder_vocab_size

    def embed(
        self,
        input_ids: Tensor | None,
        inputs_embeds: Tensor | None,
        positions: Tensor | None = None,
        past: int = 0,
    ) -> Tensor:
        """As BART's; ``inputs_embeds`` given by the caller are scaled too, as the reference's decoder does."""
        if inputs_embeds is not None and self.embed_scale != 1.0:
            inputs_embeds = inputs_embeds * self.embed_scale
        return super().embed(input_ids, inputs_embeds, positions, past)


class MarianModel(MarianPreTrainedModel, BartModel):
    """The bare encoder-decoder. Unlike BART it needs ``decoder_input_ids`` (or ``decoder_inputs_embeds``)."""

    encoder_class: ClassVar[type[BartStack]] = MarianEncoder
    decoder_class: ClassVar[type[BartStack]] = MarianDecoder

    @property
    def shares_embeddings(self) -> bool:  # type: ignore[override]
        return bool(self.config.share_encoder_decoder_embeddings)

    @property
    def _tied_weights_keys(self) -> dict[str, str]:  # type: ignore[override]
        return BartModel._tied_weights_keys if self.shares_embeddings else {}

    def get_input_embeddings(self) -> nn.Embedding:
        """The encoder's token embeddings (``shared`` when the vocabularies are shared)."""
        return self.encoder.embed_tokens

    def set_input_embeddings(self, embeddings: nn.Embedding) -> None:
        """Replace the shared table, or only the encoder's with separate vocabularies."""
        if self.shares_embeddings:
            super().set_input_embeddings(embeddings)
        else:
            self.encoder.embed_tokens = embeddings

    def get_decoder_input_embeddings(self) -> nn.Embedding:
        """The decoder's own token embeddings (separate vocabularies only)."""
        if self.shares_embeddings:
            raise ValueError(
                "get_decoder_input_embeddings is for separate vocabularies (share_encoder_decoder_embeddings="
                "False); with shared ones use get_input_embeddings"
            )
        return self.decoder.embed_tokens

    def decoder_inputs_from_input_ids(self, input_ids: Tensor) -> Tensor:
        raise ValueError(
            f"{type(self).__name__} does not make decoder inputs from input_ids: pass decoder_input_ids "
            "(or decoder_inputs_embeds; the LM head also makes them from labels)"
        )


class MarianMTModel(MarianPreTrainedModel, BartForConditionalGeneration):
    """Marian with the language-model head over the target vocabulary: translation. The head is tied to the
    decoder's token embeddings; ``labels`` give the decoder inputs (pad first, then the labels shifted)."""

    base_model_class: ClassVar[type[BartModel]] = MarianModel
    _keys_to_ignore_on_load_missing: ClassVar[list[str]] = ["final_logits_bias", r"embed_positions\.weight$"]
    _keys_to_ignore_on_save: ClassVar[tuple[str, ...]] = (
        "model.encoder.embed_positions.weight",
        "model.decoder.embed_positions.weight",
    )

    @property
    def _tied_weights_keys(self) -> dict[str, str]:  # type: ignore[override]
        if self.config.share_encoder_decoder_embeddings:
            return BartForConditionalGeneration._tied_weights_keys
        return {"lm_head.weight": "model.decoder.embed_tokens.weight"}

    def save_pretrained(
        self, save_directory: str | os.PathLike, *, state_dict: dict[str, Tensor] | None = None, **kwargs: Any
    ) -> None:
        """``PreTrainedModel.save_pretrained`` without the sinusoidal tables (the reference's checkpoints)."""
        if state_dict is None:
            state_dict = {
                name: tensor
                for name, tensor in self._deduplicated_state_dict().items()
                if name not in self._keys_to_ignore_on_save
            }
        super().save_pretrained(save_directory, state_dict=state_dict, **kwargs)

    def resize_token_embeddings(
        self, new_num_tokens: int, pad_to_multiple_of: int | None = None
    ) -> nn.Embedding:
        """Resize the shared vocabulary (and ``final_logits_bias``); ``decoder_vocab_size`` follows."""
        if not self.config.share_encoder_decoder_embeddings:
            raise NotImplementedError(
                "resize_token_embeddings resizes the shared vocabulary; this Marian model has separate source "
                "and target vocabularies (share_encoder_decoder_embeddings=False), which headway cannot resize"
            )
        embeddings = super().resize_token_embeddings(new_num_tokens, pad_to_multiple_of)
        self.config.decoder_vocab_size = embeddings.num_embeddings
        return embeddings


__all__ = [
    "MarianConfig",
    "MarianDecoder",
    "MarianEncoder",
    "MarianMTModel",
    "MarianModel",
    "MarianPreTrainedModel",
    "SinusoidalPositionalEmbedding",
]
