"""headway's evaluators give sentence-transformers 6.2's scores (and CSV rows) on the same model and data."""

from __future__ import annotations

import numpy as np
import pytest

import headway
from headway.sentence.evaluation import (
    EmbeddingSimilarityEvaluator,
    InformationRetrievalEvaluator,
    SequentialEvaluator,
    pearson,
    spearman,
)

from .tiny_training import ANCHORS, NEGATIVES, POSITIVES, SCORES, build_sentence_transformer


@pytest.fixture(scope="module")
def models(tmp_path_factory, st):
    folder = build_sentence_transformer(tmp_path_factory.mktemp("evaluation") / "st", seed=1)
    return headway.SentenceTransformer(folder, device="cpu"), st.SentenceTransformer(
        str(folder), device="cpu"
    )


@pytest.fixture(scope="module")
def ref_evaluation(st):
    from sentence_transformers.sentence_transformer import evaluation

    return evaluation


def assert_same_metrics(ours: dict, ref: dict) -> None:
    assert list(ours) == list(ref)
    for key, value in ref.items():
        assert ours[key] == pytest.approx(value, abs=1e-9), key


def test_correlations_equal_scipy():
    from scipy.stats import pearsonr, spearmanr

    rng = np.random.default_rng(0)
    x = rng.normal(size=40)
    y = x + rng.normal(size=40)
    ties = np.round(y, 0)  # many ties
    for a, b in ((x, y), (x, ties), (ties, np.round(x, 1)), (x * 1e30, y)):
        assert pearson(a, b) == pytest.approx(pearsonr(a, b)[0], abs=1e-12)
        assert spearman(a, b) == pytest.approx(spearmanr(a, b)[0], abs=1e-12)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"similarity_fn_names": ["cosine", "euclidean", "manhattan", "dot"], "main_similarity": "cosine"},
        {"similarity_fn_names": ["dot", "euclidean"]},
        {"precision": "int8"},
        {"precision": "binary"},
        {"precision": "ubinary", "truncate_dim": 16},
        {"truncate_dim": 8, "name": "sts-dev"},
    ],
    ids=["default", "all", "two", "int8", "binary", "ubinary", "truncated"],
)
def test_embedding_similarity(models, ref_evaluation, options, tmp_path):
    ours, ref = models
    args = (ANCHORS, POSITIVES[::-1], SCORES)
    mine = EmbeddingSimilarityEvaluator(*args, batch_size=5, **options)
    theirs = ref_evaluation.EmbeddingSimilarityEvaluator(*args, batch_size=5, **options)
    for epoch, steps in ((1, 10), (2, 20)):
        a = mine(ours, output_path=str(tmp_path / "ours"), epoch=epoch, steps=steps)
        b = theirs(ref, output_path=str(tmp_path / "ref"), epoch=epoch, steps=steps)
        assert_same_metrics(a, b)
    assert mine.primary_metric == theirs.primary_metric
    csv_ours = (tmp_path / "ours" / mine.csv_file).read_text().splitlines()
    csv_ref = (tmp_path / "ref" / theirs.csv_file).read_text().splitlines()
    assert csv_ours[0] == csv_ref[0] and len(csv_ours) == len(csv_ref) == 3
    for row_ours, row_ref in zip(csv_ours[1:], csv_ref[1:]):
        assert np.allclose(
            [float(v) for v in row_ours.split(",")], [float(v) for v in row_ref.split(",")], atol=1e-9
        )


def _retrieval_data():
    corpus = {f"d{i:02d}": text for i, text in enumerate(POSITIVES + NEGATIVES)}
    corpus.update(
        {"dup-a": POSITIVES[0], "dup-b": POSITIVES[0], "dup-c": NEGATIVES[3]}
    )  # ties at the cut-off
    queries = {f"q{i}": text for i, text in enumerate(ANCHORS)}
    queries["q-none"] = "a query without relevant documents"
    relevant = {f"q{i}": {f"d{i:02d}", f"d{12 + (i * 5) % 12:02d}"} for i in range(len(ANCHORS))}
    relevant["q0"].add("dup-b")
    return queries, corpus, relevant


@pytest.mark.parametrize(
    "options",
    [
        {},
        {
            "corpus_chunk_size": 5,
            "accuracy_at_k": [1, 2, 30],
            "precision_recall_at_k": [1, 4],
            "mrr_at_k": [3, 30],
            "ndcg_at_k": [2, 10],
            "map_at_k": [5, 40],
            "name": "tiny",
        },
        {"truncate_dim": 12, "query_prompt": "query: ", "corpus_chunk_size": 7, "write_predictions": True},
    ],
    ids=["default", "chunked", "truncated-prompted"],
)
def test_information_retrieval(models, ref_evaluation, options, tmp_path):
    ours, ref = models
    queries, corpus, relevant = _retrieval_data()
    mine = InformationRetrievalEvaluator(queries, corpus, relevant, batch_size=6, **options)
    theirs = ref_evaluation.InformationRetrievalEvaluator(queries, corpus, relevant, batch_size=6, **options)
    a = mine(ours, output_path=str(tmp_path / "ours"), epoch=1, steps=4)
    b = theirs(ref, output_path=str(tmp_path / "ref"), epoch=1, steps=4)
    assert_same_metrics(a, b)
    assert mine.primary_metric == theirs.primary_metric
    for name in [mine.csv_file] + (
        [mine.predictions_file.replace(".jsonl", "_cosine.jsonl")] if options.get("write_predictions") else []
    ):
        lines_ours = (tmp_path / "ours" / name).read_text().splitlines()
        lines_ref = (tmp_path / "ref" / name).read_text().splitlines()
        assert len(lines_ours) == len(lines_ref)
        assert lines_ours[0] == lines_ref[0] or name.endswith(".jsonl")
    if options.get("write_predictions"):
        import json

        for line_ours, line_ref in zip(lines_ours, lines_ref):
            x, y = json.loads(line_ours), json.loads(line_ref)
            assert [h["corpus_id"] for h in x["results"]] == [h["corpus_id"] for h in y["results"]]


def test_information_retrieval_other_score_functions(models, ref_evaluation, st):
    ours, ref = models
    queries, corpus, relevant = _retrieval_data()
    mine = InformationRetrievalEvaluator(
        queries,
        corpus,
        relevant,
        main_score_function="dot",
        score_functions={"cosine": headway.util.cos_sim, "dot": headway.util.dot_score},
    )
    theirs = ref_evaluation.InformationRetrievalEvaluator(
        queries,
        corpus,
        relevant,
        main_score_function="dot",
        score_functions={"cosine": st.util.cos_sim, "dot": st.util.dot_score},
    )
    assert_same_metrics(mine(ours), theirs(ref))
    assert mine.primary_metric == theirs.primary_metric == "dot_ndcg@10"


def test_sequential(models, ref_evaluation):
    ours, ref = models
    queries, corpus, relevant = _retrieval_data()
    mine = SequentialEvaluator(
        [
            EmbeddingSimilarityEvaluator(ANCHORS, NEGATIVES, SCORES, name="a"),
            InformationRetrievalEvaluator(queries, corpus, relevant, name="b"),
        ]
    )
    theirs = ref_evaluation.SequentialEvaluator(
        [
            ref_evaluation.EmbeddingSimilarityEvaluator(ANCHORS, NEGATIVES, SCORES, name="a"),
            ref_evaluation.InformationRetrievalEvaluator(queries, corpus, relevant, name="b"),
        ]
    )
    assert_same_metrics(mine(ours), theirs(ref))
    assert mine.primary_metric == "sequential_score"


def test_evaluator_checks_its_inputs():
    with pytest.raises(ValueError, match="as long as each other"):
        EmbeddingSimilarityEvaluator(["a", "b"], ["c"], [1.0, 0.0])
    with pytest.raises(ValueError, match="precision"):
        EmbeddingSimilarityEvaluator(["a"], ["b"], [1.0], precision="int4")
    with pytest.raises(ValueError, match="similarity function"):
        EmbeddingSimilarityEvaluator(["a"], ["b"], [1.0], main_similarity="jaccard")
