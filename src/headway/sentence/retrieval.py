"""Paraphrase mining and community detection over embeddings (``sentence_transformers.util.retrieval``).

Both scan the similarity matrix in chunks, so memory stays bounded by the chunk sizes rather than by the
square of the corpus; the pairs and communities found are the ones sentence-transformers 6 finds.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from headway.sentence.similarity import cos_sim, normalize_embeddings, to_tensor

__all__ = ["community_detection", "paraphrase_mining", "paraphrase_mining_embeddings"]


def paraphrase_mining(
    model: Any,
    sentences: list[str],
    show_progress_bar: bool = False,
    batch_size: int = 32,
    query_chunk_size: int = 5000,
    corpus_chunk_size: int = 100000,
    max_pairs: int = 500000,
    top_k: int = 100,
    score_function: Callable[[Tensor, Tensor], Tensor] = cos_sim,
    truncate_dim: int | None = None,
    prompt_name: str | None = None,
    prompt: str | None = None,
) -> list[list[float | int]]:
    """The most similar pairs among ``sentences``: ``[score, i, j]`` with ``i < j``, best first.

    Embeds the sentences with ``model.encode`` (``batch_size``, ``truncate_dim``, ``prompt_name`` /
    ``prompt`` passed on) and runs ``paraphrase_mining_embeddings`` with the other arguments.
    """
    embeddings = model.encode(
        sentences,
        show_progress_bar=show_progress_bar,
        batch_size=batch_size,
        convert_to_tensor=True,
        truncate_dim=truncate_dim,
        prompt_name=prompt_name,
        prompt=prompt,
    )
    return paraphrase_mining_embeddings(
        embeddings,
        query_chunk_size=query_chunk_size,
        corpus_chunk_size=corpus_chunk_size,
        max_pairs=max_pairs,
        top_k=top_k,
        score_function=score_function,
    )


def _top_neighbours(
    queries: Tensor,
    embeddings: Tensor,
    k: int,
    corpus_chunk_size: int,
    score_function: Callable[[Tensor, Tensor], Tensor],
) -> tuple[list, list]:
    """Each query's ``k`` best (scores, ids) over all corpus chunks, independent of the chunk size."""
    best_values = best_ids = None
    for start in range(0, len(embeddings), corpus_chunk_size):
        scores = score_function(queries, embeddings[start : start + corpus_chunk_size]).detach()
        values, ids = torch.topk(scores, min(k, scores.shape[1]), dim=1, largest=True)
        ids = ids + start
        if best_values is None:
            best_values, best_ids = values, ids
        else:
            values, ids = torch.cat([best_values, values], dim=1), torch.cat([best_ids, ids], dim=1)
            best_values, positions = torch.topk(values, min(k, values.shape[1]), dim=1)
            best_ids = torch.gather(ids, 1, positions)
    return best_values.cpu().tolist(), best_ids.cpu().tolist()


def paraphrase_mining_embeddings(
    embeddings: Tensor,
    query_chunk_size: int = 5000,
    corpus_chunk_size: int = 100000,
    max_pairs: int = 500000,
    top_k: int = 100,
    score_function: Callable[[Tensor, Tensor], Tensor] = cos_sim,
) -> list[list[float | int]]:
    """The ``max_pairs`` most similar pairs ``[score, i, j]`` (``i < j``), best first.

    Each embedding is compared with its ``top_k`` nearest others; ``score_function`` is taken to be
    symmetric, so a pair is kept once.
    """
    heap: list[tuple[float, int, int]] = []  # the best pairs so far; its smallest is evicted first
    queued: set[tuple[int, int]] = set()
    floor = float("-inf")  # the score of the last pair evicted: nothing at or below it can enter
    for query_start in range(0, len(embeddings), query_chunk_size):
        queries = embeddings[query_start : query_start + query_chunk_size]
        # top_k + 1: a query finds itself among its neighbours
        values, ids = _top_neighbours(queries, embeddings, top_k + 1, corpus_chunk_size, score_function)
        for offset, (row_values, row_ids) in enumerate(zip(values, ids)):
            i = query_start + offset
            neighbours = [(j, score) for j, score in zip(row_ids, row_values) if j != i][:top_k]
            for j, score in neighbours:
                pair = (min(i, j), max(i, j))
                if score <= floor or pair in queued:
                    continue
                queued.add(pair)
                if len(heap) < max_pairs:
                    heapq.heappush(heap, (score, *pair))
                else:
                    evicted = heapq.heappushpop(heap, (score, *pair))
                    queued.discard(evicted[1:])
                    floor = evicted[0]
    return sorted(([score, i, j] for score, i, j in heap), key=lambda row: row[0], reverse=True)


def community_detection(
    embeddings: Tensor | np.ndarray,
    threshold: float = 0.75,
    min_community_size: int = 10,
    batch_size: int = 1024,
    show_progress_bar: bool = False,
) -> list[list[int]]:
    """Groups of embeddings within cosine ``threshold`` of a central one, largest first.

    Each group starts with its centre; groups smaller than ``min_community_size`` are dropped, and an
    embedding belongs to one group at most (the largest group that claims it first).
    """
    if len(embeddings) == 0:
        return []
    vectors = to_tensor(embeddings)
    if vectors.ndim == 1:
        vectors = vectors.unsqueeze(0)
    if len(vectors) < min_community_size:
        return []
    vectors = normalize_embeddings(vectors)
    limit = torch.tensor(threshold, device=vectors.device)
    window = min(max(2 * min_community_size, 50), len(vectors))  # members looked at per centre; grows
    found: list[tuple[int, np.ndarray]] = []
    for start in tqdm(
        range(0, len(vectors), batch_size), desc="Finding clusters", disable=not show_progress_bar
    ):
        scores = vectors[start : start + batch_size] @ vectors.T  # (batch, N)
        smallest_needed = scores.topk(k=min_community_size, largest=True).values[:, -1]
        for row in torch.nonzero(smallest_needed >= limit).flatten().tolist():
            values, members = scores[row].topk(k=window, largest=True)
            # Widen the window while its last member still qualifies (ties with the threshold count).
            while values[-1] >= limit and window < len(vectors):
                window = min(2 * window, len(vectors))
                values, members = scores[row].topk(k=window, largest=True)
            found.append((start + row, members[values >= limit].cpu().numpy().astype(np.int64)))
    found.sort(key=lambda item: len(item[1]), reverse=True)
    claimed = np.zeros(len(vectors), dtype=bool)
    communities = []
    for centre, members in found:
        if claimed[centre]:
            continue
        free = members[~claimed[members]]
        if len(free) >= min_community_size:
            community = [centre, *free[free != centre].tolist()]
            communities.append(community)
            claimed[community] = True
    return sorted(communities, key=len, reverse=True)
