"""StaticEmbedding: a sentence embedding as the mean of per-token vectors (no transformer at all).

    from tokenizers import Tokenizer
    static = StaticEmbedding(Tokenizer.from_pretrained("bert-base-uncased"), embedding_dim=256)
    model = SentenceTransformer(modules=[static])

The texts are tokenized without special tokens and without padding; an ``nn.EmbeddingBag`` averages each
text's token vectors. Orders of magnitude faster than a transformer, and trainable the same way. The
folder holds ``tokenizer.json`` and ``model.safetensors`` (``embedding.weight``); model2vec folders
(``embeddings``, optionally a token ``mapping`` and per-token ``weights``) load too.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from headway.atomic import staged_folder
from headway.hub import Checkpoint

__all__ = ["StaticEmbedding"]


def _backend_tokenizer(tokenizer: Any) -> Any:
    """The ``tokenizers.Tokenizer`` of ``tokenizer`` (itself, or the one a fast tokenizer wraps)."""
    from tokenizers import Tokenizer

    if isinstance(tokenizer, Tokenizer):
        return tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None) or getattr(tokenizer, "_tokenizer", None)
    if isinstance(backend, Tokenizer):
        return backend
    raise ValueError(
        "The tokenizer must be fast (i.e. Rust-backed) to use this class. Use Tokenizer.from_pretrained() from "
        f"`tokenizers` to load a fast tokenizer; got {type(tokenizer).__name__}"
    )


class StaticEmbedding(nn.Module):
    """Token embeddings averaged per text (an ``nn.EmbeddingBag``): texts -> ``sentence_embedding``.

    Args:
        tokenizer: A ``tokenizers.Tokenizer`` (or a fast tokenizer wrapping one).
        embedding_weights: (vocab, dim) weights to start from.
        embedding_dim: Size of randomly initialised vectors, when no weights are given.
    """

    st_type: ClassVar[str] = "sentence_transformers.sentence_transformer.modules.StaticEmbedding"
    forward_kwargs: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        tokenizer: Any,
        embedding_weights: np.ndarray | Tensor | None = None,
        embedding_dim: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        tokenizer = _backend_tokenizer(tokenizer)
        if embedding_weights is not None:
            weights = (
                torch.from_numpy(embedding_weights)
                if isinstance(embedding_weights, np.ndarray)
                else embedding_weights
            )
            self.embedding = nn.EmbeddingBag.from_pretrained(weights, freeze=False)
        elif embedding_dim is not None:
            self.embedding = nn.EmbeddingBag(tokenizer.get_vocab_size(), embedding_dim)
        else:
            raise ValueError("Either `embedding_weights` or `embedding_dim` must be provided.")
        self.num_embeddings = self.embedding.num_embeddings
        self.embedding_dim = self.embedding.embedding_dim
        self.tokenizer = tokenizer
        self.tokenizer.no_padding()
        self.base_model = kwargs.get("base_model")

    @property
    def max_seq_length(self) -> float:
        return math.inf  # no position table: any length

    def get_embedding_dimension(self) -> int:
        return self.embedding_dim

    def preprocess(self, texts: list[str], prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """Token ids of all texts in one flat tensor, and where each text starts (``offsets``)."""
        if prompt:
            texts = [prompt + text for text in texts]
        ids = [
            encoding.ids for encoding in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        ]
        offsets = torch.from_numpy(np.cumsum([0] + [len(row) for row in ids[:-1]]))
        flat = torch.tensor([token for row in ids for token in row], dtype=torch.long)
        return {"input_ids": flat, "offsets": offsets, "modality": "text"}

    tokenize = preprocess

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        features["sentence_embedding"] = self.embedding(
            features["input_ids"], features["offsets"]
        )  # (B, dim)
        return features

    def save(self, folder: str | Path, **kwargs: Any) -> None:
        """Write ``model.safetensors`` and ``tokenizer.json`` (the folder replaced as a whole)."""
        from headway.checkpoint import save_state_dict

        with staged_folder(Path(folder)) as stage:
            save_state_dict(
                {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}, stage.path
            )
            self.tokenizer.save(str(stage.path / "tokenizer.json"))

    @classmethod
    def load(cls, checkpoint: Checkpoint | str | os.PathLike) -> StaticEmbedding:
        """Read a StaticEmbedding (or model2vec) folder: ``tokenizer.json`` and the weights."""
        from tokenizers import Tokenizer

        from headway.checkpoint import load_state_dict
        from headway.hub import resolve

        if not isinstance(checkpoint, Checkpoint):
            checkpoint = resolve(checkpoint)
        tokenizer = Tokenizer.from_file(str(checkpoint.require("tokenizer.json")))
        state = load_state_dict(checkpoint)
        if "embedding.weight" in state:
            weights = state["embedding.weight"]
        elif "embeddings" in state:  # model2vec: rows may be shared through a mapping and scaled per token
            weights = state["embeddings"]
            if state.get("mapping") is not None:
                weights = weights[state["mapping"].to(torch.long)]
            if state.get("weights") is not None:
                scale = state["weights"]
                weights = weights.to(torch.promote_types(weights.dtype, torch.float32)) * scale[:, None]
        else:
            raise ValueError(
                f"StaticEmbedding weights of {checkpoint.name!r} hold neither 'embedding.weight' nor "
                f"'embeddings'; found {sorted(state)[:8]}"
            )
        return cls(tokenizer, embedding_weights=weights.contiguous())

    def extra_repr(self) -> str:
        return f"num_embeddings={self.num_embeddings}, embedding_dim={self.embedding_dim}"
