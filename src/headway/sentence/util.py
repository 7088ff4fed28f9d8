"""The ``sentence_transformers.util`` namespace: similarities, search, mining and quantization.

Same names, arguments and numbers as sentence-transformers: a function takes lists, numpy arrays or
tensors, and a 1-D input counts as a batch of one. The similarity functions (dense or sparse) live in
``headway.sentence.similarity``, paraphrase mining and community detection in
``headway.sentence.retrieval``; semantic search and quantization are here.
"""

from __future__ import annotations

import heapq
import importlib.util
import inspect
import logging
from collections.abc import Callable
from itertools import islice
from operator import itemgetter
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from headway.sentence.retrieval import community_detection, paraphrase_mining, paraphrase_mining_embeddings
from headway.sentence.similarity import (
    SIMILARITY_FUNCTIONS,
    ArrayLike,
    SimilarityFunction,
    cos_sim,
    dot_score,
    euclidean_sim,
    manhattan_sim,
    normalize_embeddings,
    pairwise_angle_sim,
    pairwise_cos_sim,
    pairwise_dot_score,
    pairwise_euclidean_sim,
    pairwise_manhattan_sim,
    pytorch_cos_sim,
    select_max_active_dims,
    truncate_embeddings,
)
from headway.sentence.similarity import to_batch as _to_batch
from headway.sentence.similarity import to_tensor as _to_tensor

logger = logging.getLogger(__name__)

__all__ = [
    "PRECISIONS",
    "SIMILARITY_FUNCTIONS",
    "SimilarityFunction",
    "community_detection",
    "cos_sim",
    "dot_score",
    "euclidean_sim",
    "fullname",
    "is_datasets_available",
    "is_training_available",
    "manhattan_sim",
    "normalize_embeddings",
    "pairwise_angle_sim",
    "pairwise_cos_sim",
    "pairwise_dot_score",
    "pairwise_euclidean_sim",
    "pairwise_manhattan_sim",
    "paraphrase_mining",
    "paraphrase_mining_embeddings",
    "pytorch_cos_sim",
    "quantize_embeddings",
    "select_max_active_dims",
    "semantic_search",
    "truncate_embeddings",
]

Precision = Literal["float32", "int8", "uint8", "binary", "ubinary"]
PRECISIONS: tuple[str, ...] = ("float32", "int8", "uint8", "binary", "ubinary")


# -- search ---------------------------------------------------------------------------------------------
def semantic_search(
    query_embeddings: ArrayLike,
    corpus_embeddings: ArrayLike,
    query_chunk_size: int = 100,
    corpus_chunk_size: int = 500000,
    top_k: int = 10,
    score_function: Callable[[Tensor, Tensor], Tensor] = cos_sim,
) -> list[list[dict[str, int | float]]]:
    """The ``top_k`` corpus entries closest to each query.

    Returns one list per query of ``{"corpus_id": int, "score": float}``, best first. The corpus and
    the queries are scanned in chunks to bound memory; a heap keeps each query's best hits, so the
    results (ties included) are the reference's.
    """
    queries = _to_tensor(query_embeddings)
    corpus = _to_tensor(corpus_embeddings)
    if queries.dim() == 1:
        queries = queries.unsqueeze(0)
    if corpus.device != queries.device:
        queries = queries.to(corpus.device)
    results: list[list[tuple[float, int]]] = [[] for _ in range(len(queries))]
    # Cosine: normalize each corpus chunk once instead of once per query chunk (same scores).
    normalize_chunks = score_function is cos_sim
    for corpus_start in range(0, len(corpus), corpus_chunk_size):
        corpus_chunk = corpus[corpus_start : corpus_start + corpus_chunk_size]
        if normalize_chunks:
            corpus_chunk = normalize_embeddings(_to_batch(corpus_chunk))
        for query_start in range(0, len(queries), query_chunk_size):
            query_chunk = queries[query_start : query_start + query_chunk_size]
            if normalize_chunks:
                scores = dot_score(normalize_embeddings(_to_batch(query_chunk)), corpus_chunk)
            else:
                scores = score_function(query_chunk, corpus_chunk)
            values, indices = torch.topk(scores, min(top_k, len(scores[0])), dim=1, largest=True, sorted=False)
            ids = (indices + corpus_start).cpu().tolist()
            for hits, row_ids, row_scores in zip(results[query_start:], ids, values.cpu().tolist()):
                candidates = zip(row_scores, row_ids)
                for candidate in islice(candidates, top_k - len(hits)):
                    heapq.heappush(hits, candidate)
                for candidate in candidates:
                    heapq.heappushpop(hits, candidate)
    return [
        [{"corpus_id": corpus_id, "score": score} for score, corpus_id in sorted(hits, key=itemgetter(0), reverse=True)]
        for hits in results
    ]


# -- quantization -------------------------------------------------------------------------------------
def _quantization_ranges(embeddings: np.ndarray, precision: str, calibration: np.ndarray | None) -> np.ndarray:
    """Per-dimension (min, max) of the calibration set, or of the embeddings themselves."""
    if calibration is None:
        if embeddings.ndim == 1 or embeddings.shape[0] == 1:
            raise ValueError(
                f"Cannot compute {precision} quantization ranges (precision={precision!r}) from a single "
                "embedding. Call `quantize_embeddings` with `ranges` or `calibration_embeddings` from a "
                "representative set of embeddings instead."
            )
        if embeddings.shape[0] < 100:
            logger.warning(
                "Computing %s quantization buckets based on %d embeddings. %s quantization is more stable with "
                "`ranges` calculated from more embeddings or a `calibration_embeddings` that can be used to "
                "calculate the buckets.", precision, len(embeddings), precision,
            )
        calibration = embeddings
    return np.vstack((np.min(calibration, axis=0), np.max(calibration, axis=0)))


def quantize_embeddings(
    embeddings: ArrayLike,
    precision: Precision,
    ranges: np.ndarray | None = None,
    calibration_embeddings: np.ndarray | None = None,
) -> np.ndarray:
    """Quantize float embeddings to ``precision`` (sentence-transformers' arithmetic, bit for bit).

    int8/uint8 split each dimension's range (``ranges``, else the min and max of
    ``calibration_embeddings``, else of the embeddings themselves) into 256 buckets; binary/ubinary keep
    the sign bit (``> 0``) packed 8 per byte with ``numpy.packbits`` (binary shifted by -128 into int8).

    Raises:
        ValueError: Unknown precision, or int8/uint8 ranges asked from a single embedding.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"Precision {precision!r} is not supported; expected one of {list(PRECISIONS)}")
    if isinstance(embeddings, list) and not embeddings:  # encode() of no texts
        return []
    if isinstance(embeddings, Tensor):
        embeddings = (embeddings.float() if embeddings.dtype == torch.bfloat16 else embeddings).cpu().numpy()
    elif isinstance(embeddings, list):
        embeddings = np.array([e.cpu().numpy() if isinstance(e, Tensor) else e for e in embeddings])
    if embeddings.dtype in (np.uint8, np.int8):
        raise ValueError("Embeddings to quantize must be float rather than int8 or uint8.")
    if precision == "float32":
        return embeddings.astype(np.float32)
    if precision.endswith("int8"):
        if ranges is None:
            ranges = _quantization_ranges(embeddings, precision, calibration_embeddings)
        ranges = ranges.astype(np.float32, copy=False)
        starts = ranges[0, :]
        steps = (ranges[1, :] - starts) / 255
        steps = np.where(steps == 0, 1, steps)
        buckets = np.clip(np.floor((embeddings - starts) / steps), 0, 255)
        return buckets.astype(np.uint8) if precision == "uint8" else (buckets - 128).astype(np.int8)
    packed = np.packbits(embeddings > 0, axis=-1)
    return packed if precision == "ubinary" else (packed - 128).astype(np.int8)


# -- environment ----------------------------------------------------------------------------------------
def fullname(obj: object) -> str:
    """``module.ClassName`` of a class or of an object's class (a builtin's bare name)."""
    cls = obj if inspect.isclass(obj) else type(obj)
    module = cls.__module__
    return cls.__name__ if module in (None, "builtins") else f"{module}.{cls.__name__}"


def is_datasets_available() -> bool:
    """Whether the optional ``datasets`` package is installed (found without importing it)."""
    return importlib.util.find_spec("datasets") is not None


def is_training_available() -> bool:
    """Whether fine-tuning can run: ``datasets`` installed and headway's sentence trainer present."""
    return is_datasets_available() and importlib.util.find_spec("headway.sentence.trainer") is not None
