"""GGUF checkpoints (llama.cpp's single-file format): config, weights and tokenizer metadata.

A GGUF file holds what a Hub folder spreads over ``config.json``, ``model.safetensors`` and
``tokenizer.json``: metadata under llama.cpp's key names (``llama.block_count``,
``tokenizer.ggml.tokens``, ...) and tensors, often quantised, under llama.cpp's tensor names
(``blk.0.attn_q.weight``). This module reads it with the ``gguf`` package (memory-mapped), rebuilds the
Hugging Face config dict, renames tensors to the Hub names, dequantises them one at a time and undoes the
row permutation llama.cpp applies to Llama's query and key projections.

    checkpoint = GGUFCheckpoint.resolve("folder", "model.Q4_1.gguf")
    config_dict = checkpoint.config_dict()           # {"model_type": "llama", "hidden_size": ...}
    for name, tensor in checkpoint.tensors():        # ("model.embed_tokens.weight", float32 tensor)
        ...

``PreTrainedModel.from_pretrained(..., gguf_file=...)``, the Auto classes and the tokenizer loader go
through ``GGUFCheckpoint``; the tokenizer itself is built in ``headway.tokenization.gguf``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

logger = logging.getLogger(__name__)

# GGUF architecture -> {metadata key after "<arch>." -> config field}. One table per family, as the
# reference reads them; keys a file lacks are left to the config class's defaults.
_LLAMA_KEYS = {
    "context_length": "max_position_embeddings",
    "block_count": "num_hidden_layers",
    "feed_forward_length": "intermediate_size",
    "embedding_length": "hidden_size",
    "attention.head_count": "num_attention_heads",
    "attention.head_count_kv": "num_key_value_heads",
    "attention.layer_norm_rms_epsilon": "rms_norm_eps",
    "rope.freq_base": "rope_theta",
    "vocab_size": "vocab_size",
}
CONFIG_KEYS: dict[str, dict[str, str]] = {
    # llama.cpp writes the rotary width of Llama / Mistral as rope.dimension_count: their head_dim.
    "llama": {**_LLAMA_KEYS, "rope.dimension_count": "head_dim"},
    "mistral": {**_LLAMA_KEYS, "rope.dimension_count": "head_dim"},
    "qwen2": dict(_LLAMA_KEYS),
    # Qwen3's head_dim is not hidden_size / heads (0.6B: 1024 / 16 heads, head_dim 128): read it.
    "qwen3": {**_LLAMA_KEYS, "attention.key_length": "head_dim"},
    "gpt2": {
        "block_count": "n_layer",
        # The reference names it n_ctx; n_positions is the field GPT-2's position table is sized by.
        "context_length": "n_positions",
        "embedding_length": "n_embd",
        "feed_forward_length": "n_inner",
        "attention.head_count": "n_head",
        "attention.layer_norm_epsilon": "layer_norm_epsilon",
    },
}
SUPPORTED_ARCHITECTURES = tuple(CONFIG_KEYS)

# Tokenizer metadata -> config field (the reference sets all four on the model config).
_TOKEN_ID_KEYS = {
    "tokenizer.ggml.bos_token_id": "bos_token_id",
    "tokenizer.ggml.eos_token_id": "eos_token_id",
    "tokenizer.ggml.unknown_token_id": "unk_token_id",
    "tokenizer.ggml.padding_token_id": "pad_token_id",
}

# Tensor types this loader dequantises (names of gguf.GGMLQuantizationType members).
SUPPORTED_TENSOR_TYPES = (
    "F32",
    "F16",
    "BF16",
    "Q8_0",
    "Q4_0",
    "Q4_1",
    "Q5_0",
    "Q5_1",
    "Q2_K",
    "Q3_K",
    "Q4_K",
    "Q5_K",
    "Q6_K",
)

# llama.cpp tensor name -> Hub name, per layout. "{i}" is the block index.
_DECODER_NAMES = {
    "token_embd": "model.embed_tokens",
    "output_norm": "model.norm",
    "output": "lm_head",
    "blk.{i}.attn_norm": "model.layers.{i}.input_layernorm",
    "blk.{i}.attn_q": "model.layers.{i}.self_attn.q_proj",
    "blk.{i}.attn_k": "model.layers.{i}.self_attn.k_proj",
    "blk.{i}.attn_v": "model.layers.{i}.self_attn.v_proj",
    "blk.{i}.attn_output": "model.layers.{i}.self_attn.o_proj",
    "blk.{i}.attn_q_norm": "model.layers.{i}.self_attn.q_norm",
    "blk.{i}.attn_k_norm": "model.layers.{i}.self_attn.k_norm",
    "blk.{i}.ffn_norm": "model.layers.{i}.post_attention_layernorm",
    "blk.{i}.ffn_gate": "model.layers.{i}.mlp.gate_proj",
    "blk.{i}.ffn_up": "model.layers.{i}.mlp.up_proj",
    "blk.{i}.ffn_down": "model.layers.{i}.mlp.down_proj",
}
_GPT2_NAMES = {
    "token_embd": "transformer.wte",
    "position_embd": "transformer.wpe",
    "output_norm": "transformer.ln_f",
    "output": "lm_head",
    "blk.{i}.attn_norm": "transformer.h.{i}.ln_1",
    "blk.{i}.attn_qkv": "transformer.h.{i}.attn.c_attn",
    "blk.{i}.attn_output": "transformer.h.{i}.attn.c_proj",
    "blk.{i}.ffn_norm": "transformer.h.{i}.ln_2",
    "blk.{i}.ffn_up": "transformer.h.{i}.mlp.c_fc",
    "blk.{i}.ffn_down": "transformer.h.{i}.mlp.c_proj",
}
TENSOR_NAMES: dict[str, dict[str, str]] = {
    "llama": _DECODER_NAMES,
    "mistral": _DECODER_NAMES,
    "qwen2": _DECODER_NAMES,
    "qwen3": _DECODER_NAMES,
    "gpt2": _GPT2_NAMES,
}
# Tensors llama.cpp stores for its own use, with no Hub counterpart (precomputed rotary frequencies).
_SKIPPED_TENSORS = ("rope_freqs.weight",)
# GPT-2's Hub checkpoints keep Conv1D weights as (in, out); llama.cpp stores them as (out, in).
_GPT2_TRANSPOSED = (".attn.c_attn.weight", ".attn.c_proj.weight", ".mlp.c_fc.weight", ".mlp.c_proj.weight")


def hub_tensor_name(architecture: str, gguf_name: str) -> str | None:
    """The Hub name of a GGUF tensor (``blk.3.attn_q.weight`` -> ``model.layers.3.self_attn.q_proj.weight``).

    Returns None for a tensor with no Hub counterpart (``rope_freqs.weight``, unknown names).
    """
    stem, dot, suffix = gguf_name.rpartition(".")
    if not dot or suffix not in ("weight", "bias"):
        return None
    index = None
    match = re.fullmatch(r"blk\.(\d+)\.(.+)", stem)
    if match:
        index, stem = match.group(1), f"blk.{{i}}.{match.group(2)}"
    target = TENSOR_NAMES[architecture].get(stem)
    if target is None:
        return None
    return f"{target.format(i=index)}.{suffix}"


def unpermute_rotary_rows(weight: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Undo llama.cpp's reordering of the q / k projection rows (its rotary pairs adjacent dimensions).

    llama.cpp's converter maps each head's rows ``[first half, second half]`` to interleaved pairs;
    this maps them back to the Hub order the rotate-half rotary of Llama expects.

    Args:
        weight: ``(num_heads * head_dim, ...)`` weight or ``(num_heads * head_dim,)`` bias.
        num_heads: Heads the rows belong to (key / value heads for ``k_proj``).
    """
    rows = weight.shape[0]
    if rows % (2 * num_heads):
        raise ValueError(
            f"cannot unpermute {rows} rows over {num_heads} heads: rows must split into head pairs"
        )
    half = rows // num_heads // 2
    rest = tuple(weight.shape[1:])
    # (heads, half, 2, ...) -> (heads, 2, half, ...): pairs back to halves.
    return weight.reshape(num_heads, half, 2, *rest).transpose(1, 2).reshape(weight.shape).contiguous()


class GGUFCheckpoint:
    """One GGUF file, opened memory-mapped: its metadata, config dict and tensors.

    Args:
        path: The ``.gguf`` file.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is not a GGUF file, or is truncated.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"GGUF file {str(self.path)!r} does not exist")
        from gguf import GGUFReader  # optional dependency: the `gguf` extra

        try:
            self.reader = GGUFReader(self.path)
        except Exception as err:  # a bad magic, a short header, a tensor past the end of the file
            raise ValueError(
                f"{str(self.path)!r} is not a readable GGUF file (truncated or not GGUF): {err}"
            ) from err
        size = self.path.stat().st_size
        for tensor in self.reader.tensors:
            if tensor.data_offset + tensor.n_bytes > size or tensor.data.nbytes != tensor.n_bytes:
                raise ValueError(
                    f"{str(self.path)!r} is truncated: tensor {tensor.name!r} needs bytes up to "
                    f"{tensor.data_offset + tensor.n_bytes} but the file has {size}"
                )
        self.name = str(self.path)
        self._metadata: dict[str, Any] | None = None
        self._config: dict[str, Any] | None = None

    @classmethod
    def resolve(
        cls,
        name_or_path: str | os.PathLike | GGUFCheckpoint | None,
        gguf_file: str | os.PathLike | None = None,
        **hub_kwargs: Any,
    ) -> GGUFCheckpoint:
        """Find ``gguf_file``: a path, or a file name inside the folder / Hub repo ``name_or_path``.

        Raises:
            FileNotFoundError: the file is in neither place (the message lists where it looked).
        """
        if isinstance(name_or_path, GGUFCheckpoint):
            return name_or_path
        if gguf_file is None:
            if name_or_path is not None and Path(name_or_path).is_file():
                return cls(name_or_path)
            raise ValueError(
                "gguf_file is required: the name of the .gguf file inside the folder or Hub repo"
            )
        direct = Path(gguf_file).expanduser()
        if direct.is_absolute() or name_or_path is None:
            return cls(direct)
        from headway.hub import resolve

        checkpoint = resolve(name_or_path, **hub_kwargs)
        found = checkpoint.get(os.fspath(gguf_file))
        if found is None:
            if direct.is_file():  # a path relative to the working folder
                return cls(direct)
            raise FileNotFoundError(checkpoint.missing_message(os.fspath(gguf_file)))
        return cls(found)

    # -- metadata ------------------------------------------------------------------------------------
    @property
    def metadata(self) -> dict[str, Any]:
        """Every metadata key -> its Python value (strings, numbers, lists), read once."""
        if self._metadata is None:
            self._metadata = {
                key: field.contents()
                for key, field in self.reader.fields.items()
                if not key.startswith("GGUF.")
            }
        return self._metadata

    @property
    def architecture(self) -> str:
        """The Hugging Face model type the file's architecture maps to (``llama``, ``mistral``, ...).

        Raises:
            ValueError: the architecture is not one headway reads (the message lists those it does).
        """
        arch = self.metadata.get("general.architecture")
        if arch not in CONFIG_KEYS:
            raise ValueError(
                f"GGUF file {self.name!r} holds a {arch!r} model; headway reads GGUF architectures: "
                f"{', '.join(SUPPORTED_ARCHITECTURES)}"
            )
        # llama.cpp files Mistral models under "llama"; the reference tells them apart by name.
        if arch == "llama" and "mistral" in str(self.metadata.get("general.name", "")).lower():
            return "mistral"
        return arch

    @property
    def tensor_names(self) -> list[str]:
        return [tensor.name for tensor in self.reader.tensors]

    def config_dict(self) -> dict[str, Any]:
        """The Hugging Face config dict the metadata describes (what ``config.json`` would hold)."""
        if self._config is None:
            self._config = self._build_config()
        return dict(self._config)

    def _build_config(self) -> dict[str, Any]:
        model_type = self.architecture
        arch = self.metadata["general.architecture"]
        config: dict[str, Any] = {"model_type": model_type}
        for suffix, field in CONFIG_KEYS[model_type].items():
            value = self.metadata.get(f"{arch}.{suffix}")
            if value is not None:
                config[field] = value
        if model_type != "gpt2":
            # Rotary settings in transformers 5's rope_parameters (what the reference's config holds).
            rope: dict[str, Any] = {
                "rope_theta": float(config.pop("rope_theta", 10000.0)),
                "rope_type": "default",
            }
            prefix = f"{arch}.rope.scaling."
            scaling = {k.removeprefix(prefix): v for k, v in self.metadata.items() if k.startswith(prefix)}
            if scaling.get("type") not in (None, "none"):
                rope["rope_type"] = scaling["type"]
                if "factor" in scaling:
                    rope["factor"] = float(scaling["factor"])
                if "original_context_length" in scaling:
                    rope["original_max_position_embeddings"] = int(scaling["original_context_length"])
            config["rope_parameters"] = rope
        tokens = self.reader.fields.get("tokenizer.ggml.tokens")
        if "vocab_size" not in config and tokens is not None:  # most files state it only this way
            config["vocab_size"] = len(tokens.data)
        # llama.cpp writes the output projection only when it is not the token embedding.
        config["tie_word_embeddings"] = "output.weight" not in self.tensor_names
        for key, field in _TOKEN_ID_KEYS.items():
            if key in self.metadata:
                config[field] = self.metadata[key]
        return config

    # -- tensors --------------------------------------------------------------------------------------
    def _check_types(self) -> None:
        for tensor in self.reader.tensors:
            if tensor.tensor_type.name not in SUPPORTED_TENSOR_TYPES:
                raise ValueError(
                    f"GGUF tensor {tensor.name!r} in {self.name!r} has type {tensor.tensor_type.name}, which "
                    f"headway cannot dequantise; supported types: {', '.join(SUPPORTED_TENSOR_TYPES)}"
                )

    def _dequantise(self, tensor: Any, name: str, dtype: torch.dtype) -> torch.Tensor:
        """One file tensor as the Hub tensor ``name``: dequantised, unpermuted, in Hub layout."""
        from gguf import GGMLQuantizationType, dequantize

        model_type = self.architecture

        kind = tensor.tensor_type
        if kind.name not in SUPPORTED_TENSOR_TYPES:
            raise ValueError(
                f"GGUF tensor {tensor.name!r} in {self.name!r} has type {kind.name}, which headway cannot "
                f"dequantise; supported types: {', '.join(SUPPORTED_TENSOR_TYPES)}"
            )
        if kind == GGMLQuantizationType.F32:
            out = torch.tensor(np.asarray(tensor.data), dtype=dtype)  # copy out of the read-only map
        elif kind == GGMLQuantizationType.F16:
            out = torch.from_numpy(np.array(tensor.data, copy=True)).to(dtype)
        else:
            out = torch.from_numpy(dequantize(tensor.data, kind)).to(dtype)
        # The numpy shape is GGUF's dims reversed, i.e. the PyTorch (out, in) layout.
        out = out.reshape(tuple(int(d) for d in reversed(tensor.shape.tolist())))
        if model_type in ("llama", "mistral") and (".attn_q." in tensor.name or ".attn_k." in tensor.name):
            config = self.config_dict()
            heads = config["num_attention_heads"]
            if ".attn_k." in tensor.name:
                heads = config.get("num_key_value_heads") or heads
            out = unpermute_rotary_rows(out, heads)
        if model_type == "gpt2" and name.endswith(_GPT2_TRANSPOSED):
            out = out.t().contiguous()  # (out, in) -> Conv1D's (in, out)
        return out

    def tensors(self, dtype: torch.dtype = torch.float32) -> Iterator[tuple[str, torch.Tensor]]:
        """Yield ``(hub name, dequantised tensor)`` one at a time, in file order.

        Only one tensor is dequantised at a time, so loading needs the dequantised model plus one
        tensor's temporaries, never a second copy of the model.

        Raises:
            ValueError: a tensor of a type headway cannot dequantise (raised before any is yielded).
        """
        for name, tensor in self._named_tensors().items():
            yield name, self._dequantise(tensor, name, dtype)

    def _named_tensors(self) -> dict[str, Any]:
        """Hub name -> the file's tensor record; checks every type first."""
        self._check_types()
        model_type = self.architecture
        named = {}
        for tensor in self.reader.tensors:
            name = hub_tensor_name(model_type, tensor.name)
            if name is None:
                if tensor.name not in _SKIPPED_TENSORS:
                    logger.warning("GGUF tensor %r of %s has no Hub name; skipped", tensor.name, self.name)
                continue
            named[name] = tensor
        return named

    def state_dict(self, dtype: torch.dtype = torch.float32) -> GGUFStateDict:
        """A lazy mapping Hub name -> tensor: each tensor is dequantised when first read."""
        return GGUFStateDict(self, dtype)


class GGUFStateDict(Mapping[str, torch.Tensor]):
    """Hub name -> dequantised tensor, dequantising on access (nothing is cached).

    ``PreTrainedModel.from_pretrained`` reads each key once, so loading holds one dequantised copy of
    the model at most.
    """

    def __init__(self, checkpoint: GGUFCheckpoint, dtype: torch.dtype) -> None:
        self.checkpoint = checkpoint
        self.dtype = dtype
        self._by_name = checkpoint._named_tensors()

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.checkpoint._dequantise(self._by_name[name], name, self.dtype)

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)


def load_gguf_config(path: str | os.PathLike) -> dict[str, Any]:
    """The Hugging Face config dict of a GGUF file."""
    return GGUFCheckpoint(path).config_dict()


def iter_gguf_tensors(
    path: str | os.PathLike, dtype: torch.dtype = torch.float32
) -> Iterator[tuple[str, torch.Tensor]]:
    """``(hub name, tensor)`` pairs of a GGUF file, dequantised one at a time."""
    yield from GGUFCheckpoint(path).tensors(dtype)


__all__ = [
    "SUPPORTED_ARCHITECTURES",
    "SUPPORTED_TENSOR_TYPES",
    "GGUFCheckpoint",
    "GGUFStateDict",
    "hub_tensor_name",
    "iter_gguf_tensors",
    "load_gguf_config",
    "unpermute_rotary_rows",
]
