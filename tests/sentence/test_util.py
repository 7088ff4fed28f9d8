"""headway.util (= headway.sentence.util) against sentence_transformers.util on fixed random data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from headway import util

ATOL = 1e-6


@pytest.fixture(scope="module")
def data():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(7, 24, generator=gen)
    b = torch.randn(11, 24, generator=gen)
    return a, b


@pytest.mark.parametrize("name", ["cos_sim", "dot_score", "euclidean_sim", "manhattan_sim"])
def test_matrix_functions(st, data, name):
    a, b = data
    ours, theirs = getattr(util, name), getattr(st.util, name)
    torch.testing.assert_close(ours(a, b), theirs(a, b), atol=ATOL, rtol=0)
    torch.testing.assert_close(ours(a[0], b.numpy()), theirs(a[0], b.numpy()), atol=ATOL, rtol=0)  # 1-D, numpy
    torch.testing.assert_close(ours(list(a), list(b.numpy())), theirs(list(a), list(b.numpy())), atol=ATOL, rtol=0)


@pytest.mark.parametrize("name", ["pairwise_cos_sim", "pairwise_dot_score", "pairwise_euclidean_sim",
                                  "pairwise_manhattan_sim"])
def test_pairwise_functions(st, data, name):
    a, b = data
    torch.testing.assert_close(getattr(util, name)(a, b[:7]), getattr(st.util, name)(a, b[:7]), atol=ATOL, rtol=0)


def test_normalize_and_half_precision(st, data):
    a, _ = data
    torch.testing.assert_close(util.normalize_embeddings(a), st.util.normalize_embeddings(a))
    half = a.half()
    assert util.cos_sim(half, half).dtype == torch.float32  # no fp16 ties in the scores
    torch.testing.assert_close(util.cos_sim(half, half), st.util.cos_sim(half, half), atol=ATOL, rtol=0)


@pytest.mark.parametrize("precision", ["float32", "int8", "uint8", "binary", "ubinary"])
def test_quantize_embeddings_bit_for_bit(st, data, precision):
    a, b = data
    mine = util.quantize_embeddings(a, precision)
    theirs = st.util.quantize_embeddings(a, precision=precision)
    assert mine.dtype == theirs.dtype
    np.testing.assert_array_equal(mine, theirs)
    if precision.endswith("int8"):  # calibration set and explicit ranges
        np.testing.assert_array_equal(util.quantize_embeddings(a, precision, calibration_embeddings=b.numpy()),
                                      st.util.quantize_embeddings(a, precision, calibration_embeddings=b.numpy()))
        ranges = np.stack([np.full(24, -1.0), np.full(24, 1.0)])
        np.testing.assert_array_equal(util.quantize_embeddings(a.numpy(), precision, ranges=ranges),
                                      st.util.quantize_embeddings(a.numpy(), precision, ranges=ranges))


def test_quantize_rejects_bad_input(data):
    a, _ = data
    with pytest.raises(ValueError, match="Precision 'int4' is not supported"):
        util.quantize_embeddings(a, "int4")
    with pytest.raises(ValueError, match="must be float"):
        util.quantize_embeddings(util.quantize_embeddings(a, "int8"), "int8")


@pytest.mark.parametrize("kwargs", [
    {},
    {"top_k": 3, "query_chunk_size": 2, "corpus_chunk_size": 4},
    {"top_k": 50},
    {"score_function": "dot_score", "corpus_chunk_size": 5},
])
def test_semantic_search(st, data, kwargs):
    a, b = data
    # duplicated corpus rows make ties: the order among equal scores must match too
    corpus = torch.cat([b, b[:3]])
    ours_kwargs, ref_kwargs = dict(kwargs), dict(kwargs)
    if "score_function" in kwargs:
        ours_kwargs["score_function"] = getattr(util, kwargs["score_function"])
        ref_kwargs["score_function"] = getattr(st.util, kwargs["score_function"])
    mine = util.semantic_search(a, corpus, **ours_kwargs)
    theirs = st.util.semantic_search(a, corpus, **ref_kwargs)
    assert len(mine) == len(theirs) == len(a)
    for m, t in zip(mine, theirs):
        assert [h["corpus_id"] for h in m] == [h["corpus_id"] for h in t]
        np.testing.assert_allclose([h["score"] for h in m], [h["score"] for h in t], atol=ATOL)


def test_semantic_search_single_query_and_numpy(st, data):
    a, b = data
    mine = util.semantic_search(a[0].numpy(), b.numpy(), top_k=4)
    theirs = st.util.semantic_search(a[0].numpy(), b.numpy(), top_k=4)
    assert [h["corpus_id"] for h in mine[0]] == [h["corpus_id"] for h in theirs[0]]
