"""Losses for training SentenceTransformer models, with the math of sentence-transformers 6.2.

A loss holds the model it trains and is called as ``loss(sentence_features, labels)``:
``sentence_features`` has one tokenized batch per text column of the data set (anchor, positive,
negative...), ``labels`` the label column (or None). Every loss here embeds the columns with
:func:`embed_columns` and scores the embeddings in ``compute_loss_from_embeddings``, so a wrapper such
as :class:`MatryoshkaLoss` can score the same embeddings several times.

- :class:`MultipleNegativesRankingLoss` (InfoNCE): each anchor against its positive and every other
  text of the batch; :class:`CachedMultipleNegativesRankingLoss` the same with gradient caching, so the
  batch can be far larger than what fits in memory at once (Gao et al. 2021, "GradCache").
- :class:`CoSENTLoss`, :class:`CosineSimilarityLoss`: pairs with a similarity score.
- :class:`TripletLoss`: (anchor, positive, negative) with a margin.
- :class:`SoftmaxLoss`: pairs with a class label (NLI), through a classifier trained with the model.
- :class:`MatryoshkaLoss`: another loss on several leading slices of the embedding.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from headway.sentence import util

logger = logging.getLogger(__name__)

__all__ = [
    "CachedMultipleNegativesRankingLoss",
    "CoSENTLoss",
    "CosineSimilarityLoss",
    "MatryoshkaLoss",
    "MultipleNegativesRankingLoss",
    "SoftmaxLoss",
    "TripletDistanceMetric",
    "TripletLoss",
    "embed_columns",
]

Features = dict[str, Any]
DIRECTIONS = ("query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc")
HARDNESS_MODES = (None, "in_batch_negatives", "hard_negatives", "all_negatives")


# -- embedding the columns ------------------------------------------------------------------------------
def merge_columns(columns: list[Features]) -> Features | None:
    """The columns' batches as one batch (column after column along the rows), or None when they differ
    in their keys, shapes or non-tensor values. Token tensors are right-padded with 0 to the widest column
    (their attention mask is 0 there, so the padding changes no embedding)."""
    first = columns[0]
    if any(set(c) != set(first) for c in columns[1:]):
        return None
    if not any(
        isinstance(first.get(k), Tensor) and first[k].dim() >= 2 for k in ("input_ids", "attention_mask")
    ):
        return None
    rows = _batch_size(first)
    merged: Features = {}
    for key, value in first.items():
        values = [c[key] for c in columns]
        if isinstance(value, Tensor):
            if any(
                not isinstance(v, Tensor)
                or v.dim() != value.dim()
                or v.dim() == 0
                or v.shape[0] != rows
                or v.shape[2:] != value.shape[2:]
                for v in values
            ):
                return None
            if value.dim() >= 2:
                width = max(v.shape[1] for v in values)
                if any(v.shape[1] != width for v in values):
                    if value.is_floating_point() or value.is_complex():
                        return None
                    values = [F.pad(v, [0, 0] * (v.dim() - 2) + [0, width - v.shape[1]]) for v in values]
            merged[key] = torch.cat(values, dim=0)  # (columns * B, T, ...)
        else:
            if any(v != value for v in values[1:]):
                return None
            merged[key] = value
    return merged


def embed_columns(model: nn.Module, columns: Iterable[Features]) -> list[Tensor]:
    """One ``sentence_embedding`` batch (B, D) per column.

    The first column (the anchor, often a short query) has a forward of its own; the others (candidates
    of like length) share one when their batches can be merged: fewer, larger forwards, the same numbers.
    """
    columns = list(columns)
    if not columns:
        return []
    first = model(columns[0])["sentence_embedding"]
    rest = columns[1:]
    merged = merge_columns(rest) if len(rest) > 1 else None
    if merged is None:
        return [first, *(model(c)["sentence_embedding"] for c in rest)]
    out = model(merged)["sentence_embedding"]  # (columns * B, D), column after column
    return [
        first,
        *out.reshape(len(rest), -1, *out.shape[1:]).unbind(0),
    ]  # (columns, B, D) -> columns x (B, D)


def _batch_size(features: Features) -> int:
    for key in ("input_ids", "attention_mask"):
        if isinstance(features.get(key), Tensor):
            return features[key].shape[0]
    return next(v.shape[0] for v in features.values() if isinstance(v, Tensor) and v.dim() > 0)


def _check_labels(loss: nn.Module, labels: Tensor, batch_size: int) -> None:
    if labels is None or labels.numel() != batch_size:
        got = "none" if labels is None else f"{labels.numel()} with shape {tuple(labels.shape)}"
        raise ValueError(f"{type(loss).__name__} expects {batch_size} labels (one per example), got {got}")


def all_gather_with_grad(tensor: Tensor) -> Tensor:
    """``tensor`` of every process concatenated along the rows, gradients flowing back to each."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(tensor), dim=0)  # (world * B, D)


def _rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


# -- in-batch negatives -----------------------------------------------------------------------------------
class _RankingSettings(nn.Module):
    """The options MultipleNegativesRankingLoss and its cached form share, and their scoring."""

    def _set_ranking_options(
        self,
        scale: float,
        similarity_fct: Callable[[Tensor, Tensor], Tensor],
        gather_across_devices: bool,
        directions: Sequence[str],
        partition_mode: str,
        hardness_mode: str | None,
        hardness_strength: float,
    ) -> None:
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}")
        if not directions or set(directions) - set(DIRECTIONS):
            raise ValueError(f"directions must be some of {DIRECTIONS}, got {tuple(directions)}")
        if "query_to_doc" not in directions:
            raise ValueError("directions must include 'query_to_doc' (it holds the positive pair)")
        if partition_mode not in ("joint", "per_direction"):
            raise ValueError(f"partition_mode must be 'joint' or 'per_direction', got {partition_mode!r}")
        if partition_mode == "per_direction" and set(directions) & {"query_to_query", "doc_to_doc"}:
            raise ValueError(
                "partition_mode='per_direction' cannot use 'query_to_query' or 'doc_to_doc': their "
                "candidates never include the positive; use partition_mode='joint'"
            )
        if hardness_mode not in HARDNESS_MODES:
            raise ValueError(f"hardness_mode must be one of {HARDNESS_MODES}, got {hardness_mode!r}")
        if hardness_strength < 0:
            raise ValueError(f"hardness_strength must be >= 0, got {hardness_strength}")
        if hardness_mode is not None and hardness_strength == 0:
            logger.warning("hardness_mode=%r has no effect with hardness_strength=0", hardness_mode)
        self.scale = scale
        self.similarity_fct = similarity_fct
        self.gather_across_devices = gather_across_devices
        self.directions = tuple(directions)
        self.partition_mode = partition_mode
        self.hardness_mode = hardness_mode
        self.hardness_strength = hardness_strength

    @property
    def temperature(self) -> float:
        return 1.0 / self.scale

    def _gather(self, queries: Tensor, docs: list[Tensor]) -> tuple[Tensor, list[Tensor], int]:
        """Queries and documents of all processes (when gathering), and this process's first row in them."""
        if not self.gather_across_devices:
            return queries, docs, 0
        offset = _rank() * queries.size(0)
        return all_gather_with_grad(queries), [all_gather_with_grad(d) for d in docs], offset

    def _row_losses(self, queries: Tensor, docs: list[Tensor], docs_all: Tensor, rows: Tensor) -> Tensor:
        """-log softmax of each query's positive among its candidates, for the query rows ``rows``.

        ``queries`` (N, D) and ``docs`` (columns of (N, D): positives, then hard negatives) cover the whole
        (gathered) batch; ``docs_all`` is ``docs`` concatenated (columns * N, D).
        """
        world = queries.size(0)
        index = torch.arange(len(rows), device=queries.device)
        own = torch.zeros(len(rows), world, dtype=torch.bool, device=queries.device)
        own[index, rows] = True  # (rows, N): each query's own pair
        local_queries, local_docs = queries[rows], docs[0][rows]  # indexed once: one gradient path each
        sims: dict[str, Tensor] = {"query_to_doc": self.similarity_fct(local_queries, docs_all)}
        if "query_to_query" in self.directions:
            sims["query_to_query"] = self.similarity_fct(local_queries, queries)
            sims["query_to_query"][index, rows] = -torch.inf  # a query is not its own negative
        if "doc_to_query" in self.directions:
            sims["doc_to_query"] = self.similarity_fct(queries, local_docs).T  # (N, rows) -> (rows, N)
        if "doc_to_doc" in self.directions:
            sims["doc_to_doc"] = self.similarity_fct(
                docs_all, local_docs
            ).T  # (columns * N, rows) -> (rows, ...)
            sims["doc_to_doc"].masked_fill_(own.repeat(1, len(docs)), -torch.inf)  # nor are its own documents
        penalty = None
        if self.hardness_mode is not None and self.hardness_strength > 0:
            penalty = self.hardness_strength * sims["query_to_doc"].detach()
            own_docs = own.repeat(1, len(docs))  # (rows, columns * N)
            if self.hardness_mode == "hard_negatives":  # only the query's own hard negatives
                spared = ~own_docs
                spared[:, :world] = True
            else:  # every negative ("all_negatives") or all but the query's own ("in_batch_negatives")
                spared = own_docs
                if self.hardness_mode == "all_negatives":
                    spared[:, world:] = False
            penalty[spared] = 0.0
        sims = {key: matrix * self.scale for key, matrix in sims.items()}
        if penalty is not None:
            sims["query_to_doc"] = sims["query_to_doc"] + penalty
        positives = sims["query_to_doc"][index, rows]
        if self.partition_mode == "joint":
            log_z = torch.logsumexp(torch.cat(list(sims.values()), dim=1), dim=1)
        else:
            log_z = 0.0
            for matrix in sims.values():
                log_z += torch.logsumexp(matrix, dim=1)
            log_z /= len(sims)
        return -(positives - log_z)

    def get_config_dict(self) -> dict[str, Any]:
        return {
            "scale": self.scale,
            "similarity_fct": getattr(self.similarity_fct, "__name__", "?"),
            "gather_across_devices": self.gather_across_devices,
            "directions": self.directions,
            "partition_mode": self.partition_mode,
            "hardness_mode": self.hardness_mode,
            "hardness_strength": self.hardness_strength,
        }


class MultipleNegativesRankingLoss(_RankingSettings):
    """InfoNCE with in-batch negatives: each anchor should be closer to its positive than to every other
    candidate of the batch (the other positives, and any hard-negative columns).

    Data: (anchor, positive) pairs, or (anchor, positive, negative_1, ..., negative_n); no label. Use
    ``batch_sampler="no_duplicates"`` so that a batch holds no copy of a positive as a negative.

    Args:
        model: The SentenceTransformer to train.
        scale: Similarities are multiplied by this (1 / temperature).
        similarity_fct: Similarity matrix function (default cosine; with ``util.dot_score`` use scale 1).
        gather_across_devices: Under ``torchrun``, score against the candidates of every process.
        directions: Terms of the softmax: "query_to_doc" (always), "query_to_query", "doc_to_query",
            "doc_to_doc" (GTE's improved contrastive loss uses all four).
        partition_mode: "joint" (one softmax over all terms) or "per_direction" (one each, averaged).
        hardness_mode: None, "in_batch_negatives", "hard_negatives" or "all_negatives": add
            ``hardness_strength`` x the (detached) similarity to those negatives' logits.
        hardness_strength: See ``hardness_mode``.
    """

    def __init__(
        self,
        model: nn.Module,
        scale: float = 20.0,
        similarity_fct: Callable[[Tensor, Tensor], Tensor] = util.cos_sim,
        gather_across_devices: bool = False,
        directions: Sequence[str] = ("query_to_doc",),
        partition_mode: str = "joint",
        hardness_mode: str | None = None,
        hardness_strength: float = 0.0,
    ) -> None:
        super().__init__()
        self.model = model
        self._set_ranking_options(
            scale,
            similarity_fct,
            gather_across_devices,
            directions,
            partition_mode,
            hardness_mode,
            hardness_strength,
        )

    def forward(self, sentence_features: Iterable[Features], labels: Tensor | None) -> Tensor:
        return self.compute_loss_from_embeddings(embed_columns(self.model, sentence_features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        if len(embeddings) < 2:
            raise ValueError(f"{type(self).__name__} needs at least 2 text columns, got {len(embeddings)}")
        batch = embeddings[0].size(0)
        queries, docs, offset = self._gather(embeddings[0], list(embeddings[1:]))
        rows = torch.arange(offset, offset + batch, device=queries.device)
        return self._row_losses(queries, docs, torch.cat(docs, dim=0), rows).mean()


# -- scored pairs --------------------------------------------------------------------------------------------
class CoSENTLoss(nn.Module):
    """CoSENT (Su 2022): for every two pairs whose gold scores are ordered, their predicted similarities
    should be ordered the same way: ``log(1 + sum exp(scale * (s_low - s_high)))``.

    Data: (text1, text2) pairs with a float score label (only the order of the scores matters).
    """

    def __init__(
        self,
        model: nn.Module,
        scale: float = 20.0,
        similarity_fct: Callable[[Tensor, Tensor], Tensor] = util.pairwise_cos_sim,
    ) -> None:
        super().__init__()
        self.model = model
        self.scale = scale
        self.similarity_fct = similarity_fct

    def forward(self, sentence_features: Iterable[Features], labels: Tensor) -> Tensor:
        return self.compute_loss_from_embeddings(embed_columns(self.model, sentence_features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor) -> Tensor:
        _check_labels(self, labels, embeddings[0].shape[0])
        labels = labels.view(-1)
        scores = self.similarity_fct(embeddings[0], embeddings[1])
        if scores.dtype in (torch.float16, torch.bfloat16):
            scores = scores.float()
        scores = scores * self.scale
        if labels.dtype == torch.bool:
            labels = labels.int()
        labels, order = labels.sort()
        scores = scores[order]
        # With the pairs sorted by gold score, the pairs scored above pair i are a suffix: pair i's term is
        # s_i + log sum_{j in suffix} exp(-s_j), the suffix sums computed once from the end (O(n log n)).
        first_higher = torch.searchsorted(labels, labels, right=True)
        suffix = torch.logcumsumexp(-scores.flip(0), dim=0).flip(0)
        suffix = torch.cat((suffix, scores.new_full((1,), -torch.inf)))  # an empty suffix adds nothing
        terms = scores + suffix[first_higher]
        return torch.logsumexp(torch.cat((scores.new_zeros(1), terms)), dim=0)

    def get_config_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "similarity_fct": getattr(self.similarity_fct, "__name__", "?")}


class CosineSimilarityLoss(nn.Module):
    """``loss_fct(cos(u, v), label)``: the cosine similarity of a pair regressed onto its score (MSE).

    Data: (text1, text2) pairs with a float score in [-1, 1] (or [0, 1]).
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fct: nn.Module | None = None,
        cos_score_transformation: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.loss_fct = loss_fct if loss_fct is not None else nn.MSELoss()
        self.cos_score_transformation = (
            cos_score_transformation if cos_score_transformation is not None else nn.Identity()
        )

    def forward(self, sentence_features: Iterable[Features], labels: Tensor) -> Tensor:
        return self.compute_loss_from_embeddings(embed_columns(self.model, sentence_features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor) -> Tensor:
        _check_labels(self, labels, embeddings[0].shape[0])
        scores = self.cos_score_transformation(torch.cosine_similarity(embeddings[0], embeddings[1]))
        return self.loss_fct(scores, labels.float().view(-1))


# -- triplets ----------------------------------------------------------------------------------------------
class TripletDistanceMetric:
    """Distances for :class:`TripletLoss` (smaller is closer)."""

    @staticmethod
    def COSINE(x: Tensor, y: Tensor) -> Tensor:
        return 1 - util.pairwise_cos_sim(x, y)

    @staticmethod
    def EUCLIDEAN(x: Tensor, y: Tensor) -> Tensor:
        return -util.pairwise_euclidean_sim(x, y)

    @staticmethod
    def MANHATTAN(x: Tensor, y: Tensor) -> Tensor:
        return -util.pairwise_manhattan_sim(x, y)


class TripletLoss(nn.Module):
    """``max(0, d(anchor, positive) - d(anchor, negative) + margin)``, averaged (Schroff et al. 2015).

    Data: (anchor, positive, negative) triplets; no label.
    """

    def __init__(
        self,
        model: nn.Module,
        distance_metric: Callable[[Tensor, Tensor], Tensor] = TripletDistanceMetric.EUCLIDEAN,
        triplet_margin: float = 5,
    ) -> None:
        super().__init__()
        self.model = model
        self.distance_metric = distance_metric
        self.triplet_margin = triplet_margin

    def forward(self, sentence_features: Iterable[Features], labels: Tensor | None) -> Tensor:
        return self.compute_loss_from_embeddings(embed_columns(self.model, sentence_features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        if len(embeddings) != 3:
            raise ValueError(
                f"TripletLoss needs (anchor, positive, negative) columns, got {len(embeddings)} columns"
            )
        anchor, positive, negative = embeddings
        gaps = self.distance_metric(anchor, positive) - self.distance_metric(anchor, negative)
        return F.relu(gaps + self.triplet_margin).mean()

    def get_config_dict(self) -> dict[str, Any]:
        name = getattr(self.distance_metric, "__name__", str(self.distance_metric))
        return {"distance_metric": f"TripletDistanceMetric.{name}", "triplet_margin": self.triplet_margin}


# -- classification -----------------------------------------------------------------------------------------
class SoftmaxLoss(nn.Module):
    """A classifier on ``(u, v, |u - v|)`` (and/or ``u * v``) trained with the model (Sentence-BERT's NLI
    objective). The classifier belongs to the loss: it is trained, not saved with the model.

    Args:
        model: The SentenceTransformer to train.
        embedding_dimension: Its embedding size (``sentence_embedding_dimension`` is the older name).
        num_labels: Number of classes.
        concatenation_sent_rep / concatenation_sent_difference / concatenation_sent_multiplication: Which
            vectors the classifier sees.
        loss_fct: The classification loss (cross-entropy).
    """

    def __init__(
        self,
        model: nn.Module,
        embedding_dimension: int | None = None,
        num_labels: int | None = None,
        concatenation_sent_rep: bool = True,
        concatenation_sent_difference: bool = True,
        concatenation_sent_multiplication: bool = False,
        loss_fct: Callable | None = None,
        *,
        sentence_embedding_dimension: int | None = None,
    ) -> None:
        super().__init__()
        dimension = embedding_dimension if embedding_dimension is not None else sentence_embedding_dimension
        if dimension is None or num_labels is None:
            raise TypeError("SoftmaxLoss needs embedding_dimension and num_labels")
        self.model = model
        self.num_labels = num_labels
        self.concatenation_sent_rep = concatenation_sent_rep
        self.concatenation_sent_difference = concatenation_sent_difference
        self.concatenation_sent_multiplication = concatenation_sent_multiplication
        vectors = (
            2 * concatenation_sent_rep + concatenation_sent_difference + concatenation_sent_multiplication
        )
        if vectors == 0:
            raise ValueError("SoftmaxLoss needs at least one of the concatenation_sent_* options")
        device = next(model.parameters()).device
        self.classifier = nn.Linear(vectors * dimension, num_labels, device=device)
        self.loss_fct = loss_fct if loss_fct is not None else nn.CrossEntropyLoss()

    def forward(self, sentence_features: Iterable[Features], labels: Tensor | None) -> Any:
        return self.compute_loss_from_embeddings(embed_columns(self.model, sentence_features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Any:
        """The loss; without labels, ``(embeddings, logits)``."""
        a, b = embeddings
        parts = [a, b] if self.concatenation_sent_rep else []
        if self.concatenation_sent_difference:
            parts.append(torch.abs(a - b))
        if self.concatenation_sent_multiplication:
            parts.append(a * b)
        logits = self.classifier(torch.cat(parts, 1).to(self.classifier.weight.dtype))  # (B, num_labels)
        if labels is None:
            return embeddings, logits
        if self.num_labels == 1 or labels.shape != logits.shape:
            labels = labels.view(-1)
        return self.loss_fct(logits, labels)

    def get_config_dict(self) -> dict[str, Any]:
        return {
            "num_labels": self.num_labels,
            "concatenation_sent_rep": self.concatenation_sent_rep,
            "concatenation_sent_difference": self.concatenation_sent_difference,
            "concatenation_sent_multiplication": self.concatenation_sent_multiplication,
        }


# -- Matryoshka -------------------------------------------------------------------------------------------
def shrink(embeddings: Tensor, dim: int) -> Tensor:
    """The first ``dim`` dimensions, L2-normalised."""
    if dim > embeddings.shape[-1]:
        raise ValueError(f"Matryoshka dimension {dim} is larger than the embeddings ({embeddings.shape[-1]})")
    return F.normalize(embeddings[..., :dim], p=2, dim=-1)


class MatryoshkaLoss(nn.Module):
    """Another loss applied to several leading slices of the embeddings, so that the first dimensions
    alone make a usable smaller embedding (Kusupati et al. 2022).

    The texts are embedded once; each slice (largest first) is cut from the previous one and normalised,
    then scored by the inner loss; the weighted losses are summed. A gradient-caching inner loss scores
    each slice of its cached embeddings instead.

    Args:
        model: The SentenceTransformer to train.
        loss: The inner loss (any loss of this module).
        matryoshka_dims: The slice sizes, e.g. ``[768, 512, 256, 128, 64]``.
        matryoshka_weights: A weight per slice (default 1 each).
        n_dims_per_step: Score only this many randomly chosen slices per step (-1: all).
    """

    def __init__(
        self,
        model: nn.Module,
        loss: nn.Module,
        matryoshka_dims: Sequence[int],
        matryoshka_weights: Sequence[float] | None = None,
        n_dims_per_step: int = -1,
    ) -> None:
        super().__init__()
        if not matryoshka_dims:
            raise ValueError("matryoshka_dims needs at least one dimension")
        if any(d <= 0 for d in matryoshka_dims):
            raise ValueError(f"matryoshka_dims must all be > 0, got {list(matryoshka_dims)}")
        if matryoshka_weights is None:
            matryoshka_weights = [1] * len(matryoshka_dims)
        elif len(matryoshka_weights) != len(matryoshka_dims):
            raise ValueError(f"{len(matryoshka_weights)} matryoshka_weights for {len(matryoshka_dims)} dims")
        full = (
            model.get_sentence_embedding_dimension()
            if hasattr(model, "get_sentence_embedding_dimension")
            else None
        )
        if full is not None:
            if any(d > full for d in matryoshka_dims):
                raise ValueError(
                    f"matryoshka_dims {list(matryoshka_dims)} exceed the embedding dimension {full}"
                )
            if full not in matryoshka_dims:
                logger.warning(
                    "The embedding dimension %d is not among matryoshka_dims %s: the full embedding "
                    "will not be trained",
                    full,
                    list(matryoshka_dims),
                )
        pairs = sorted(zip(matryoshka_dims, matryoshka_weights), key=lambda p: p[0], reverse=True)
        self.matryoshka_dims = tuple(d for d, _ in pairs)
        self.matryoshka_weights = tuple(w for _, w in pairs)
        self.n_dims_per_step = n_dims_per_step
        self.model = model
        self.loss = loss
        self.uses_gradient_cache = bool(getattr(loss, "uses_gradient_cache", False))
        if self.uses_gradient_cache:
            loss.matryoshka = (self.matryoshka_dims, self.matryoshka_weights, n_dims_per_step)
        elif not hasattr(loss, "compute_loss_from_embeddings"):
            raise TypeError(
                f"MatryoshkaLoss needs an inner loss with compute_loss_from_embeddings(embeddings, "
                f"labels); {type(loss).__name__} has none"
            )

    def forward(self, sentence_features: Iterable[Features], labels: Tensor | None) -> Tensor:
        if self.uses_gradient_cache:
            return self.loss(sentence_features, labels)
        chosen = list(range(len(self.matryoshka_dims)))
        if 0 < self.n_dims_per_step < len(chosen):
            chosen = sorted(random.sample(chosen, self.n_dims_per_step))
        embeddings = embed_columns(self.model, sentence_features)
        full = embeddings[0].shape[-1]
        total: Tensor | float = 0.0
        for i in chosen:
            dim = self.matryoshka_dims[i]
            embeddings = [shrink(e, dim) for e in embeddings]  # cut from the previous (larger) slice
            dim_labels = labels
            if isinstance(labels, Tensor) and labels.dim() in (2, 3) and labels.size(-1) == full:
                dim_labels = labels[..., :dim]  # target embeddings (distillation losses) are cut too
            total = total + self.matryoshka_weights[i] * self.loss.compute_loss_from_embeddings(
                embeddings, dim_labels
            )
        return total

    def get_config_dict(self) -> dict[str, Any]:
        return {
            "loss": type(self.loss).__name__,
            "matryoshka_dims": self.matryoshka_dims,
            "matryoshka_weights": self.matryoshka_weights,
            "n_dims_per_step": self.n_dims_per_step,
        }


# The cached form lives in its own module (it needs the classes above); it is one of the losses.
from headway.sentence.gradcache import CachedMultipleNegativesRankingLoss
