"""Pooling: token embeddings -> one sentence embedding per text (``1_Pooling`` in a model folder).

Works on padded batches (``token_embeddings`` (B, T, D) with an ``attention_mask``) and on packed ones,
where several texts share one row without padding (``token_embeddings`` (1, total, D) with
``cu_seq_lens_q`` giving each text's start, as ``transformers.DataCollatorWithFlattening`` and
padding-free attention produce them): a packed batch is laid out padded first, so both give the same
numbers. ``cls_token_embeddings`` (a model's own CLS output), when present, is the "cls" pooling.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from headway.atomic import staged_folder
from headway.jsonfile import read_json as read_json_file

Features = dict[str, Any]

# Older configs spell the mode as booleans; the order here is the order of concatenation.
LEGACY_POOLING_KEYS: dict[str, str] = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}

__all__ = ["LEGACY_POOLING_KEYS", "Pooling", "convert_legacy_pooling_config"]


def convert_legacy_pooling_config(config: dict[str, Any]) -> None:
    """Replace the boolean ``pooling_mode_*`` keys of ``config`` by one ``pooling_mode``, in place.

    The active modes, in concatenation order, become a str (one) or a tuple (several); none active is
    "mean". An existing ``pooling_mode`` wins and the boolean keys are just dropped.
    """
    legacy = [key for key in LEGACY_POOLING_KEYS if key in config]
    if not legacy:
        return
    if "pooling_mode" not in config:
        modes = tuple(mode for key, mode in LEGACY_POOLING_KEYS.items() if config.get(key)) or ("mean",)
        config["pooling_mode"] = modes[0] if len(modes) == 1 else modes
    for key in legacy:
        del config[key]


def _unpack(features: Features) -> tuple[Tensor, Tensor]:
    """A packed batch laid out padded: ((B, T_max, D) embeddings, (B, T_max) mask), right padding."""
    tokens = features["token_embeddings"]  # (1, total, D)
    starts = features["cu_seq_lens_q"].to(torch.long)  # (B + 1,)
    lengths = (starts[1:] - starts[:-1]).tolist()
    pieces = torch.split(tokens.reshape(-1, tokens.shape[-1]), lengths)  # B x (length, D)
    padded = nn.utils.rnn.pad_sequence(list(pieces), batch_first=True)  # (B, T_max, D)
    positions = torch.arange(padded.shape[1], device=tokens.device)
    mask = (positions[None, :] < torch.tensor(lengths, device=tokens.device)[:, None]).to(torch.int64)
    return padded, mask


def _exclude_prompt(mask: Tensor, prompt_length: int) -> Tensor:
    """A copy of ``mask`` with the prompt's positions (after any left padding) zeroed."""
    mask = mask.clone()
    pad_lengths = mask.to(torch.int32).argmax(dim=1)
    if pad_lengths.sum() == 0:
        mask[:, :prompt_length] = 0
    else:
        positions = torch.arange(mask.size(1), device=mask.device).unsqueeze(0)
        mask[positions < (pad_lengths + prompt_length).unsqueeze(1)] = 0
    return mask


class Pooling(nn.Module):
    """Token embeddings -> one ``sentence_embedding`` per text.

    Args:
        embedding_dimension: Size of each token embedding.
        pooling_mode: One of ``POOLING_MODES`` or a tuple of them (results are concatenated).
        include_prompt: False leaves the prompt's tokens out of the pooling (INSTRUCTOR models).
        **legacy: The older boolean spelling (``pooling_mode_mean_tokens=True``, ...; a FutureWarning)
            and ``word_embedding_dimension`` for ``embedding_dimension``.
    """

    st_type: ClassVar[str] = "sentence_transformers.models.Pooling"
    POOLING_MODES: ClassVar[tuple[str, ...]] = tuple(LEGACY_POOLING_KEYS.values())

    def __init__(
        self,
        embedding_dimension: int | None = None,
        pooling_mode: str | tuple[str, ...] | list[str] = "mean",
        include_prompt: bool = True,
        **legacy: Any,
    ) -> None:
        super().__init__()
        if embedding_dimension is None:
            embedding_dimension = legacy.pop("word_embedding_dimension", None)
        unknown = sorted(set(legacy) - set(LEGACY_POOLING_KEYS))
        if unknown:
            raise TypeError(f"Pooling() got unexpected keyword arguments: {unknown}")
        if legacy:
            warnings.warn(
                f"The {', '.join(f'`{key}`' for key in legacy)} argument(s) are deprecated. Please use "
                "`pooling_mode` instead.",
                FutureWarning,
                stacklevel=2,
            )
            convert_legacy_pooling_config(legacy)
            pooling_mode = legacy["pooling_mode"]
        if (
            isinstance(embedding_dimension, bool)
            or not isinstance(embedding_dimension, int)
            or embedding_dimension < 1
        ):
            raise ValueError(
                f"Pooling embedding_dimension must be a positive int, got {embedding_dimension!r:.80}"
            )
        modes = (pooling_mode,) if isinstance(pooling_mode, str) else tuple(pooling_mode)
        for mode in modes:
            if mode not in self.POOLING_MODES:
                raise ValueError(
                    f"Invalid pooling mode {mode!r}; valid pooling modes are: {self.POOLING_MODES}"
                )
        if not modes:
            raise ValueError(f"pooling_mode is empty; valid pooling modes are: {self.POOLING_MODES}")
        self.embedding_dimension = embedding_dimension
        self.modes = modes
        self.include_prompt = include_prompt

    @property
    def pooling_mode(self) -> str | tuple[str, ...]:
        return self.modes[0] if len(self.modes) == 1 else self.modes

    @property
    def pooling_output_dimension(self) -> int:
        return len(self.modes) * self.embedding_dimension

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Pooling:
        """Build from ``1_Pooling/config.json``, in the ``pooling_mode`` form or the older boolean one."""
        config = dict(config)
        dimension = config.pop("embedding_dimension", config.pop("word_embedding_dimension", None))
        if dimension is None:
            raise ValueError(
                f"Pooling config has no embedding_dimension (or word_embedding_dimension); its keys: "
                f"{sorted(config)[:12]}"
            )
        convert_legacy_pooling_config(config)
        return cls(
            dimension, config.pop("pooling_mode", "mean"), include_prompt=config.pop("include_prompt", True)
        )

    @classmethod
    def load(cls, path: str | Path) -> Pooling:
        """Read the ``config.json`` of a local Pooling folder."""
        return cls.from_config(read_json_file(Path(path) / "config.json", expect=dict, what="Pooling config"))

    def get_config_dict(self) -> dict[str, Any]:
        # The boolean form is read by every sentence-transformers release; it can only express modes
        # in its fixed concatenation order, so any other order is written in the newer form.
        canonical = tuple(m for m in self.POOLING_MODES if m in self.modes)
        if canonical != self.modes:
            return {
                "embedding_dimension": self.embedding_dimension,
                "pooling_mode": list(self.modes),
                "include_prompt": self.include_prompt,
            }
        flags = {key: mode in self.modes for key, mode in LEGACY_POOLING_KEYS.items()}
        return {
            "word_embedding_dimension": self.embedding_dimension,
            **flags,
            "include_prompt": self.include_prompt,
        }

    def save(self, folder: str | Path, **kwargs: Any) -> None:
        """Write ``config.json`` into ``folder`` (replaced as a whole); ``safe_serialization`` is accepted."""
        from headway.sentence.modules import write_json

        with staged_folder(Path(folder)) as stage:
            write_json(stage.path / "config.json", self.get_config_dict(), indent=4)

    def get_embedding_dimension(self) -> int:
        return self.pooling_output_dimension

    def extra_repr(self) -> str:
        return (
            f"embedding_dimension={self.embedding_dimension}, pooling_mode={self.pooling_mode!r}, "
            f"include_prompt={self.include_prompt}"
        )

    def forward(self, features: Features, **kwargs: Any) -> Features:
        if "cu_seq_lens_q" in features and features["token_embeddings"].shape[0] == 1:
            tokens, mask = _unpack(features)
        else:
            tokens = features["token_embeddings"]  # (B, T, D)
            mask = features.get("attention_mask")
            if mask is None or mask.shape[-1] != tokens.shape[1]:
                mask = torch.ones(tokens.shape[:-1], device=tokens.device, dtype=torch.int64)
        if tokens.shape[-1] != self.embedding_dimension:
            raise ValueError(
                f"Pooling expects token embeddings of size {self.embedding_dimension} (its embedding_dimension), "
                f"got {tokens.shape[-1]}: the pooling config does not match the model before it"
            )
        features["sentence_embedding"] = self._pool(tokens, mask, features)  # (B, modes * D)
        return features

    def _pool(self, tokens: Tensor, mask: Tensor, features: Features) -> Tensor:
        original_mask = mask
        prompt_length = features.get("prompt_length")
        if isinstance(prompt_length, Tensor):  # (B,) or (1,) of one value when training
            prompt_length = int(prompt_length.flatten()[0])
        if not self.include_prompt and prompt_length:
            mask = _exclude_prompt(mask, int(prompt_length))
        # Half-precision sums accumulate in float32 (as the reference does).
        acc = torch.float32 if tokens.dtype in (torch.float16, torch.bfloat16) else tokens.dtype
        outputs, mean_sum, mean_count = [], None, None
        for mode in self.modes:
            if mode == "cls" and "cls_token_embeddings" in features:  # the model's own CLS output
                outputs.append(features["cls_token_embeddings"])
            elif mode == "cls":  # the first pooled token (the first token unless left-padded or a prompt)
                first = mask.to(torch.int).argmax(dim=1)
                index = first[:, None, None].expand(-1, 1, tokens.shape[-1])
                outputs.append(torch.gather(tokens, 1, index).squeeze(1))
            elif mode == "max":
                keep = mask.unsqueeze(-1).expand_as(tokens).to(tokens.dtype)
                outputs.append(tokens.masked_fill(keep == 0, float("-inf")).max(dim=1).values)
            elif mode in ("mean", "mean_sqrt_len_tokens"):
                if mean_sum is None:
                    m = mask.unsqueeze(-1).to(tokens.dtype)
                    mean_sum = (tokens * m).sum(dim=1, dtype=acc)
                    mean_count = torch.clamp(m.sum(dim=1, dtype=acc), min=1e-9)
                divisor = mean_count if mode == "mean" else torch.sqrt(mean_count)
                outputs.append((mean_sum / divisor).to(tokens.dtype))
            elif mode == "weightedmean":  # weights 1, 2, 3, ... from the first non-padding token
                m = mask.unsqueeze(-1).to(acc)
                weights = torch.arange(1, tokens.shape[1] + 1, device=tokens.device, dtype=acc).view(1, -1, 1)
                if original_mask.numel():
                    weights = weights - original_mask.to(torch.int32).argmax(dim=1).view(-1, 1, 1)
                weighted = m * weights
                total = (tokens * weighted).sum(dim=1)
                outputs.append((total / torch.clamp(weighted.sum(dim=1), min=1e-9)).to(tokens.dtype))
            else:  # lasttoken: the last attended token
                seq_len = tokens.shape[1]
                values, indices = mask.flip(1).max(1)
                indices = torch.where(values == 0, seq_len - 1, indices)
                index = (seq_len - indices - 1)[:, None, None].expand(-1, 1, tokens.shape[-1])
                keep = mask.unsqueeze(-1).expand_as(tokens).to(tokens.dtype)
                outputs.append(torch.gather(tokens * keep, 1, index).squeeze(1))
        return torch.cat(outputs, dim=-1)
