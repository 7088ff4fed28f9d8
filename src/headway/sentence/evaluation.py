"""Evaluators for embedding models, scoring as sentence-transformers 6.2 does.

An evaluator is called as ``evaluator(model, output_path=None, epoch=-1, steps=-1)`` and returns a dict
of metrics (prefixed with its ``name``); ``primary_metric`` names the one to select models by. Given an
``output_path``, it appends a row to a CSV file there. The trainer runs them at each evaluation.

- :class:`EmbeddingSimilarityEvaluator`: Pearson and Spearman correlations between gold scores and
  the similarity of each pair's embeddings (STS benchmarks).
- :class:`InformationRetrievalEvaluator`: queries against a corpus: accuracy, precision, recall, MRR,
  NDCG and MAP at k.
- :class:`SequentialEvaluator`: several evaluators, one after the other.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from enum import Enum
from typing import Any

import numpy as np
import torch
from torch import Tensor

from headway.sentence import util

logger = logging.getLogger(__name__)

__all__ = [
    "EmbeddingSimilarityEvaluator",
    "InformationRetrievalEvaluator",
    "SentenceEvaluator",
    "SequentialEvaluator",
    "SimilarityFunction",
]


class SimilarityFunction(str, Enum):
    """The similarity functions the evaluators know (``model.similarity_fn_name`` values)."""

    COSINE = "cosine"
    DOT_PRODUCT = "dot"
    DOT = "dot"  # noqa: PIE796 - an alias, as in the reference
    EUCLIDEAN = "euclidean"
    MANHATTAN = "manhattan"


def _similarity(value: Any) -> SimilarityFunction:
    raw = getattr(value, "value", value)
    if raw == "dot_product":
        raw = "dot"
    try:
        return SimilarityFunction(raw)
    except ValueError:
        raise ValueError(
            f"Unknown similarity function {raw!r}; expected one of "
            f"{sorted({m.value for m in SimilarityFunction})}"
        ) from None


class SentenceEvaluator:
    """Base class: ``__call__(model, output_path=None, epoch=-1, steps=-1) -> dict`` of metrics."""

    def __init__(self) -> None:
        self.greater_is_better = True
        self.primary_metric: str | None = None

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: float = -1, steps: int = -1
    ) -> dict[str, float]:
        raise NotImplementedError

    def prefix_name_to_metrics(self, metrics: dict[str, Any], name: str) -> dict[str, Any]:
        """``{name}_{key}`` keys (as floats where they can be), and the primary metric renamed to match."""

        def as_float(value: Any) -> Any:
            try:
                return float(value)
            except (TypeError, ValueError):
                return value

        if not name:
            return {key: as_float(value) for key, value in metrics.items()}
        if self.primary_metric is not None and not self.primary_metric.startswith(f"{name}_"):
            self.primary_metric = f"{name}_{self.primary_metric}"
        return {f"{name}_{key}": as_float(value) for key, value in metrics.items()}

    @property
    def description(self) -> str:
        return type(self).__name__.removesuffix("Evaluator")

    def get_config_dict(self) -> dict[str, Any]:
        return {}


class SequentialEvaluator(SentenceEvaluator):
    """Runs ``evaluators`` in turn; all their metrics, plus ``sequential_score`` (by default the last
    evaluator's primary metric; ``main_score_function`` picks another from the list of primary scores)."""

    def __init__(
        self,
        evaluators: Iterable[SentenceEvaluator],
        main_score_function: Callable[[list[float]], float] = lambda scores: scores[-1],
    ) -> None:
        super().__init__()
        self.evaluators = list(evaluators)
        self.main_score_function = main_score_function

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: float = -1, steps: int = -1
    ) -> dict[str, float]:
        results: dict[str, float] = {}
        scores = []
        for index, evaluator in enumerate(self.evaluators):
            metrics = evaluator(model, output_path, epoch, steps)
            if not isinstance(metrics, dict):
                scores.append(metrics)
                metrics = {f"evaluator_{index}": metrics}
            else:
                key = getattr(evaluator, "primary_metric", None) or next(iter(metrics))
                scores.append(metrics[key])
            results.update(metrics)
        self.primary_metric = "sequential_score"
        results["sequential_score"] = self.main_score_function(scores) if scores else 0.0
        return results


def _append_csv(folder: str, filename: str, headers: list[str], row: list[Any]) -> None:
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, filename)
    new = not os.path.isfile(path)
    with open(path, "a" if not new else "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(headers)
        writer.writerow(row)


def _when(epoch: float, steps: int) -> str:
    if epoch == -1:
        return ""
    return f" after epoch {epoch}" if steps == -1 else f" in epoch {epoch} after {steps} steps"


# -- correlations (float64, as scipy.stats computes them) ----------------------------------------------------
def pearson(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Pearson's r."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    xm, ym = x - x.mean(), y - y.mean()
    # Scaled to at most 1 first, so the norms cannot overflow.
    xm, ym = xm / np.max(np.abs(xm)), ym / np.max(np.abs(ym))
    r = float(np.dot(xm / np.linalg.norm(xm), ym / np.linalg.norm(ym)))
    return max(-1.0, min(1.0, r))


def _ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.r_[True, ordered[1:] != ordered[:-1]]
    group = np.cumsum(starts) - 1
    bounds = np.r_[np.flatnonzero(starts), len(values)]
    mean_rank = (bounds[:-1] + bounds[1:] + 1) / 2.0  # mean of the 1-based positions start+1 .. end
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = mean_rank[group]
    return ranks


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Spearman's rho: Pearson's r of the ranks."""
    return pearson(_ranks(np.asarray(x, dtype=np.float64)), _ranks(np.asarray(y, dtype=np.float64)))


class EmbeddingSimilarityEvaluator(SentenceEvaluator):
    """Correlation of gold similarity scores with the similarity of each pair's embeddings.

    Args:
        sentences1 / sentences2: The pairs.
        scores: Their gold scores.
        batch_size: Encoding batch size.
        main_similarity: The similarity whose Spearman correlation is the primary metric.
        similarity_fn_names: Similarities to report ("cosine", "euclidean", "manhattan", "dot"); default:
            the model's.
        name: Prefix of the metric names (and part of the CSV file's).
        show_progress_bar: Encoding progress bar.
        write_csv: Append a row to ``similarity_evaluation[_name][_precision]_results.csv``.
        precision: Quantize the (normalised) embeddings first: "float32", "int8", "uint8", "binary",
            "ubinary".
        truncate_dim: Keep the first dimensions only.
    """

    def __init__(
        self,
        sentences1: list[str],
        sentences2: list[str],
        scores: list[float],
        batch_size: int = 16,
        main_similarity: str | SimilarityFunction | None = None,
        similarity_fn_names: list[str] | None = None,
        name: str = "",
        show_progress_bar: bool = False,
        write_csv: bool = True,
        precision: str | None = None,
        truncate_dim: int | None = None,
    ) -> None:
        super().__init__()
        if not len(sentences1) == len(sentences2) == len(scores):
            raise ValueError(
                f"sentences1, sentences2 and scores must be as long as each other, got "
                f"{len(sentences1)}, {len(sentences2)} and {len(scores)}"
            )
        if precision is not None and precision not in util.PRECISIONS:
            raise ValueError(f"precision must be one of {list(util.PRECISIONS)} or None, got {precision!r}")
        self.sentences1, self.sentences2, self.scores = sentences1, sentences2, scores
        self.batch_size = batch_size
        self.main_similarity = _similarity(main_similarity) if main_similarity else None
        self.similarity_fn_names = [_similarity(n).value for n in similarity_fn_names or []]
        if not self.similarity_fn_names and self.main_similarity is not None:
            self.similarity_fn_names = [self.main_similarity.value]
        self.name = name
        self.show_progress_bar = show_progress_bar
        self.write_csv = write_csv
        self.precision = precision
        self.truncate_dim = truncate_dim
        self.csv_file = (
            f"similarity_evaluation{'_' + name if name else ''}{'_' + precision if precision else ''}"
            "_results.csv"
        )

    @property
    def csv_headers(self) -> list[str]:
        return [
            "epoch",
            "steps",
            *(f"{fn}_{m}" for fn in self.similarity_fn_names for m in ("pearson", "spearman")),
        ]

    def embed_inputs(self, model: Any, sentences: list[str]) -> np.ndarray:
        return model.encode(
            sentences,
            batch_size=self.batch_size,
            show_progress_bar=self.show_progress_bar,
            convert_to_numpy=True,
            precision=self.precision or "float32",
            normalize_embeddings=bool(self.precision),
            truncate_dim=self.truncate_dim,
        )

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: float = -1, steps: int = -1
    ) -> dict[str, float]:
        logger.info(
            "EmbeddingSimilarityEvaluator on the %s data set%s",
            self.name or "evaluation",
            _when(epoch, steps),
        )
        if self.precision in ("int8", "uint8"):  # one quantization range for both sides
            both = self.embed_inputs(model, [*self.sentences1, *self.sentences2])
            first, second = both[: len(self.sentences1)], both[len(self.sentences1) :]
        else:
            first, second = (
                self.embed_inputs(model, self.sentences1),
                self.embed_inputs(model, self.sentences2),
            )
        if self.precision == "binary":  # int8-packed bits back to their unsigned bytes
            first, second = first.astype(np.int16) + 128, second.astype(np.int16) + 128
        if self.precision in ("binary", "ubinary"):
            first = np.unpackbits(first.astype(np.uint8), axis=1)
            second = np.unpackbits(second.astype(np.uint8), axis=1)
        if self.precision in ("int8", "uint8", "binary", "ubinary"):
            first, second = first.astype(np.float32), second.astype(np.float32)
        if not self.similarity_fn_names:
            self.similarity_fn_names = [model.similarity_fn_name]
        metrics: dict[str, float] = {}
        for fn in self.similarity_fn_names:
            predicted = util.SIMILARITY_FUNCTIONS[fn][1](first, second).detach().cpu().numpy()
            metrics[f"pearson_{fn}"] = pearson(self.scores, predicted)
            metrics[f"spearman_{fn}"] = spearman(self.scores, predicted)
            logger.info(
                "%s similarity: Pearson %.4f  Spearman %.4f",
                fn,
                metrics[f"pearson_{fn}"],
                metrics[f"spearman_{fn}"],
            )
        if output_path is not None and self.write_csv:
            row = [metrics[f"{m}_{fn}"] for fn in self.similarity_fn_names for m in ("pearson", "spearman")]
            _append_csv(output_path, self.csv_file, self.csv_headers, [epoch, steps, *row])
        if len(self.similarity_fn_names) > 1:
            metrics["pearson_max"] = max(metrics[f"pearson_{fn}"] for fn in self.similarity_fn_names)
            metrics["spearman_max"] = max(metrics[f"spearman_{fn}"] for fn in self.similarity_fn_names)
        if self.main_similarity is not None:
            self.primary_metric = f"spearman_{self.main_similarity.value}"
        elif len(self.similarity_fn_names) > 1:
            self.primary_metric = "spearman_max"
        else:
            self.primary_metric = f"spearman_{self.similarity_fn_names[0]}"
        return self.prefix_name_to_metrics(metrics, self.name)

    @property
    def description(self) -> str:
        return "Semantic Similarity"

    def get_config_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("truncate_dim", "precision") if getattr(self, k) is not None}


class InformationRetrievalEvaluator(SentenceEvaluator):
    """Retrieval quality: each query's top documents in the corpus against its relevant ones.

    Args:
        queries: Query id -> text (queries without relevant documents are left out).
        corpus: Document id -> text.
        relevant_docs: Query id -> set of relevant document ids.
        corpus_chunk_size: Documents embedded and scored at a time.
        mrr_at_k / ndcg_at_k / accuracy_at_k / precision_recall_at_k / map_at_k: The cut-offs to report.
        batch_size, show_progress_bar, truncate_dim: Encoding options.
        name: Prefix of the metric names.
        write_csv: Append a row to ``Information-Retrieval_evaluation[_name]_results.csv``.
        score_functions: Name -> similarity matrix function; default: the model's similarity.
        main_score_function: The score function whose NDCG is the primary metric.
        query_prompt / query_prompt_name / corpus_prompt / corpus_prompt_name: Prompts for each side.
        write_predictions: Also write each query's ranked results (JSON lines).
    """

    def __init__(
        self,
        queries: dict[str, str],
        corpus: dict[str, str],
        relevant_docs: dict[str, set[str]],
        corpus_chunk_size: int = 50000,
        mrr_at_k: list[int] | None = None,
        ndcg_at_k: list[int] | None = None,
        accuracy_at_k: list[int] | None = None,
        precision_recall_at_k: list[int] | None = None,
        map_at_k: list[int] | None = None,
        show_progress_bar: bool = False,
        batch_size: int = 32,
        name: str = "",
        write_csv: bool = True,
        truncate_dim: int | None = None,
        score_functions: dict[str, Callable[[Tensor, Tensor], Tensor]] | None = None,
        main_score_function: str | SimilarityFunction | None = None,
        query_prompt: str | None = None,
        query_prompt_name: str | None = None,
        corpus_prompt: str | None = None,
        corpus_prompt_name: str | None = None,
        write_predictions: bool = False,
    ) -> None:
        super().__init__()
        self.queries_ids = [qid for qid in queries if relevant_docs.get(qid)]
        self.queries = [queries[qid] for qid in self.queries_ids]
        self.corpus_ids = list(corpus)
        self.corpus = [corpus[cid] for cid in self.corpus_ids]
        self.relevant_docs = relevant_docs
        self.corpus_chunk_size = corpus_chunk_size
        self.mrr_at_k = mrr_at_k or [10]
        self.ndcg_at_k = ndcg_at_k or [10]
        self.accuracy_at_k = accuracy_at_k or [1, 3, 5, 10]
        self.precision_recall_at_k = precision_recall_at_k or [1, 3, 5, 10]
        self.map_at_k = map_at_k or [100]
        self.show_progress_bar = show_progress_bar
        self.batch_size = batch_size
        self.name = name
        self.write_csv = write_csv
        self.truncate_dim = truncate_dim
        self.score_functions = score_functions
        self._score_functions_from_model = score_functions is None
        self.main_score_function = _similarity(main_score_function) if main_score_function else None
        self.query_prompt, self.query_prompt_name = query_prompt, query_prompt_name
        self.corpus_prompt, self.corpus_prompt_name = corpus_prompt, corpus_prompt_name
        self.write_predictions = write_predictions
        suffix = f"_{name}" if name else ""
        self.csv_file = f"Information-Retrieval_evaluation{suffix}_results.csv"
        self.predictions_file = f"Information-Retrieval_evaluation{suffix}_predictions.jsonl"
        self._id_ranks: Tensor | None = None

    def _csv_headers(self, names: list[str]) -> list[str]:
        headers = ["epoch", "steps"]
        for fn in names:
            headers += [f"{fn}-Accuracy@{k}" for k in self.accuracy_at_k]
            for k in self.precision_recall_at_k:
                headers += [f"{fn}-Precision@{k}", f"{fn}-Recall@{k}"]
            headers += [f"{fn}-MRR@{k}" for k in self.mrr_at_k]
            headers += [f"{fn}-NDCG@{k}" for k in self.ndcg_at_k]
            headers += [f"{fn}-MAP@{k}" for k in self.map_at_k]
        return headers

    def __call__(
        self,
        model: Any,
        output_path: str | None = None,
        epoch: float = -1,
        steps: int = -1,
        *args: Any,
        **kwargs: Any,
    ) -> dict[str, float]:
        logger.info(
            "Information retrieval evaluation on the %s data set%s",
            self.name or "evaluation",
            _when(epoch, steps),
        )
        if self._score_functions_from_model:
            functions = {model.similarity_fn_name: model.similarity}
            if self.score_functions is None or sorted(self.score_functions) != sorted(functions):
                self.primary_metric = None
            self.score_functions = functions
        names = sorted(self.score_functions)
        scores = self.compute_metrics_of(model, *args, output_path=output_path, **kwargs)
        if output_path is not None and self.write_csv:
            row: list[Any] = [epoch, steps]
            for fn in names:
                row += [scores[fn]["accuracy@k"][k] for k in self.accuracy_at_k]
                for k in self.precision_recall_at_k:
                    row += [scores[fn]["precision@k"][k], scores[fn]["recall@k"][k]]
                row += [scores[fn]["mrr@k"][k] for k in self.mrr_at_k]
                row += [scores[fn]["ndcg@k"][k] for k in self.ndcg_at_k]
                row += [scores[fn]["map@k"][k] for k in self.map_at_k]
            _append_csv(output_path, self.csv_file, self._csv_headers(names), row)
        if not self.primary_metric:
            k = max(self.ndcg_at_k)
            if self.main_score_function is None:
                best = max(names, key=lambda fn: scores[fn]["ndcg@k"][k])
                self.primary_metric = f"{best}_ndcg@{k}"
            else:
                self.primary_metric = f"{self.main_score_function.value}_ndcg@{k}"
        metrics = {
            f"{fn}_{metric.replace('@k', f'@{k}')}": value
            for fn, table in scores.items()
            for metric, values in table.items()
            for k, value in values.items()
        }
        return self.prefix_name_to_metrics(metrics, self.name)

    def _corpus_id_ranks(self) -> Tensor:
        """Each corpus position's rank in id order (ties in score go to the smaller id)."""
        if self._id_ranks is None:
            order = sorted(range(len(self.corpus_ids)), key=self.corpus_ids.__getitem__)
            self._id_ranks = torch.empty(len(order), dtype=torch.long)
            self._id_ranks[torch.tensor(order, dtype=torch.long)] = torch.arange(len(order))
        return self._id_ranks

    def embed_inputs(
        self, model: Any, texts: list[str], side: str, prompt_name: str | None, prompt: str | None
    ) -> Tensor:
        encode = model.encode_query if side == "query" else model.encode_document
        return encode(
            texts,
            prompt_name=prompt_name,
            prompt=prompt,
            batch_size=self.batch_size,
            show_progress_bar=self.show_progress_bar,
            convert_to_tensor=True,
            truncate_dim=self.truncate_dim,
        )

    def compute_metrics_of(
        self,
        model: Any,
        corpus_model: Any = None,
        corpus_embeddings: Tensor | None = None,
        output_path: str | None = None,
    ) -> dict[str, dict[str, dict[int, float]]]:
        """Top hits of every query for each score function, and their metrics."""
        corpus_model = corpus_model if corpus_model is not None else model
        max_k = max(
            *self.mrr_at_k, *self.ndcg_at_k, *self.accuracy_at_k, *self.precision_recall_at_k, *self.map_at_k
        )
        queries = self.embed_inputs(model, self.queries, "query", self.query_prompt_name, self.query_prompt)
        hits: dict[str, list[list[tuple[float, str]]]] = {
            fn: [[] for _ in self.queries] for fn in self.score_functions
        }
        for start in range(0, len(self.corpus), self.corpus_chunk_size):
            end = min(start + self.corpus_chunk_size, len(self.corpus))
            if corpus_embeddings is None:
                chunk = self.embed_inputs(
                    corpus_model,
                    self.corpus[start:end],
                    "document",
                    self.corpus_prompt_name,
                    self.corpus_prompt,
                )
            else:
                chunk = corpus_embeddings[start:end]
            for fn, score_fn in self.score_functions.items():
                self._collect_hits(score_fn(queries, chunk), start, max_k, hits[fn])
        results = {
            fn: [[{"corpus_id": cid, "score": s} for s, cid in query] for query in per_query]
            for fn, per_query in hits.items()
        }
        if self.write_predictions and output_path is not None:
            os.makedirs(output_path, exist_ok=True)
            for fn, per_query in results.items():
                path = os.path.join(output_path, self.predictions_file.replace(".jsonl", f"_{fn}.jsonl"))
                with open(path, "w", encoding="utf-8") as f:
                    for qid, text, found in zip(self.queries_ids, self.queries, per_query):
                        ranked = sorted(found, key=lambda h: (-h["score"], h["corpus_id"]))
                        f.write(json.dumps({"query_id": qid, "query": text, "results": ranked}) + "\n")
        return {fn: self.compute_metrics(results[fn]) for fn in self.score_functions}

    def _collect_hits(
        self, scores: Tensor, start: int, max_k: int, hits: list[list[tuple[float, str]]]
    ) -> None:
        """Merge one corpus chunk's top ``max_k`` into each query's running top list. Of documents tied at
        the cut-off score, those with the smaller ids are kept (the result does not depend on chunking)."""
        top_k = min(max_k, scores.shape[1])
        values, indices = torch.topk(scores, top_k, dim=1, largest=True, sorted=False)
        threshold = values.min(dim=1, keepdim=True).values
        tied = ((scores >= threshold).sum(dim=1) > top_k).cpu().tolist()
        if any(tied):
            n = len(self.corpus_ids)
            ranks = self._corpus_id_ranks()[start : start + scores.shape[1]].to(scores.device)
            keys = torch.where(scores > threshold, ranks, 2 * n)  # above the cut-off first, by id
            keys = torch.where(scores == threshold, ranks + n, keys)  # then the tied ones, by id
            tie_index = keys.topk(top_k, dim=1, largest=False).indices
            tie_values = scores.gather(1, tie_index).cpu().tolist()
            tie_index = tie_index.cpu().tolist()
        values, indices = values.cpu().tolist(), indices.cpu().tolist()
        for q, query_hits in enumerate(hits):
            found = zip(tie_index[q], tie_values[q]) if tied[q] else zip(indices[q], values[q])
            query_hits.extend((score, self.corpus_ids[start + i]) for i, score in found)
            query_hits.sort(key=lambda h: (-h[0], h[1]))
            del query_hits[max_k:]

    def compute_metrics(self, results: list[list[dict[str, Any]]]) -> dict[str, dict[int, float]]:
        """Accuracy, precision, recall, MRR, NDCG and MAP at each k, averaged over the queries."""
        accuracy = dict.fromkeys(self.accuracy_at_k, 0)
        precision: dict[int, list[float]] = {k: [] for k in self.precision_recall_at_k}
        recall: dict[int, list[float]] = {k: [] for k in self.precision_recall_at_k}
        mrr = dict.fromkeys(self.mrr_at_k, 0.0)
        ndcg: dict[int, list[float]] = {k: [] for k in self.ndcg_at_k}
        average_precision: dict[int, list[float]] = {k: [] for k in self.map_at_k}
        for qid, found in zip(self.queries_ids, results):
            ranked = sorted(found, key=lambda h: (-h["score"], h["corpus_id"]))
            relevant = self.relevant_docs[qid]
            is_hit = [h["corpus_id"] in relevant for h in ranked]
            for k in self.accuracy_at_k:
                accuracy[k] += any(is_hit[:k])
            for k in self.precision_recall_at_k:
                correct = sum(is_hit[:k])
                precision[k].append(correct / k)
                recall[k].append(correct / len(relevant))
            for k in self.mrr_at_k:
                first = next((rank for rank, hit in enumerate(is_hit[:k]) if hit), None)
                if first is not None:
                    mrr[k] += 1.0 / (first + 1)
            for k in self.ndcg_at_k:
                ideal = self.compute_dcg_at_k([1] * len(relevant), k)
                ndcg[k].append(self.compute_dcg_at_k([int(h) for h in is_hit[:k]], k) / ideal)
            for k in self.map_at_k:
                correct, total = 0, 0.0
                for rank, hit in enumerate(is_hit[:k]):
                    if hit:
                        correct += 1
                        total += correct / (rank + 1)
                average_precision[k].append(total / min(k, len(relevant)))
        n = len(self.queries)
        return {
            "accuracy@k": {k: v / n for k, v in accuracy.items()},
            "precision@k": {k: np.mean(v) for k, v in precision.items()},
            "recall@k": {k: np.mean(v) for k, v in recall.items()},
            "ndcg@k": {k: np.mean(v) for k, v in ndcg.items()},
            "mrr@k": {k: v / n for k, v in mrr.items()},
            "map@k": {k: np.mean(v) for k, v in average_precision.items()},
        }

    @staticmethod
    def compute_dcg_at_k(relevances: list[int], k: int) -> float:
        return sum(relevances[i] / np.log2(i + 2) for i in range(min(len(relevances), k)))

    @property
    def description(self) -> str:
        return "Information Retrieval"

    def get_config_dict(self) -> dict[str, Any]:
        keys = ("truncate_dim", "query_prompt", "query_prompt_name", "corpus_prompt", "corpus_prompt_name")
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}
