"""SentenceTransformer.encode on the real all-MiniLM-L6-v2 against sentence-transformers 6."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from headway.sentence import util

from .conftest import MODEL_ID, SENTENCES

ATOL = 1e-5
SHORT = [text for text in SENTENCES if len(text) < 200]  # no 256-token batch: cheaper where length is moot


def test_seed_example():
    from headway import SentenceTransformer

    assert SentenceTransformer(MODEL_ID).encode(["I love machine learning", "I am expert in AI"]).shape == (2, 384)


@pytest.mark.parametrize("normalize", [False, True])
def test_float_embeddings_equal_reference(ours, ref, normalize):
    # batch_size 3 puts texts of different lengths in one padded batch
    a = ours.encode(SENTENCES, batch_size=3, normalize_embeddings=normalize)
    b = ref.encode(SENTENCES, batch_size=3, normalize_embeddings=normalize)
    assert a.shape == b.shape == (len(SENTENCES), 384) and a.dtype == b.dtype == np.float32
    np.testing.assert_allclose(a, b, atol=ATOL, rtol=0)


def test_order_restored_with_mixed_lengths(ours):
    """Each text gets its own embedding back whatever the batching (sorting by length is undone)."""
    together = ours.encode(SENTENCES, batch_size=4)
    alone = np.stack([ours.encode(text) for text in SENTENCES])
    np.testing.assert_allclose(together, alone, atol=ATOL, rtol=0)


def test_single_string_gives_1d(ours, ref):
    a, b = ours.encode("I love machine learning"), ref.encode("I love machine learning")
    assert a.shape == b.shape == (384,)
    np.testing.assert_allclose(a, b, atol=ATOL, rtol=0)


def test_convert_to_tensor_and_lists(ours, ref):
    a = ours.encode(SENTENCES[:4], convert_to_tensor=True)
    b = ref.encode(SENTENCES[:4], convert_to_tensor=True)
    assert isinstance(a, torch.Tensor) and a.shape == b.shape and a.dtype == b.dtype
    torch.testing.assert_close(a, b, atol=ATOL, rtol=0)
    rows = ours.encode(SENTENCES[:4], convert_to_numpy=False)
    assert isinstance(rows, list) and len(rows) == 4 and all(r.shape == (384,) for r in rows)
    assert isinstance(ours.encode("one", convert_to_tensor=True), torch.Tensor)


@pytest.mark.parametrize("precision", ["binary", "ubinary"])
def test_binary_precisions_equal_reference_exactly(ours, ref, precision):
    a, b = ours.encode(SHORT, precision=precision), ref.encode(SHORT, precision=precision)
    assert a.dtype == b.dtype and a.shape == b.shape == (len(SHORT), 48)
    np.testing.assert_array_equal(a, b)
    t = ours.encode(SHORT, precision=precision, convert_to_tensor=True)
    assert t.dtype == ref.encode(SHORT, precision=precision, convert_to_tensor=True).dtype


@pytest.mark.parametrize("precision", ["int8", "uint8"])
def test_scalar_precisions_equal_reference_exactly(ours, ref, st, precision):
    """int8/uint8 buckets come from the embeddings themselves: computed bit for bit as the reference."""
    floats = ours.encode(SHORT)
    np.testing.assert_array_equal(util.quantize_embeddings(floats, precision),
                                  st.util.quantize_embeddings(floats, precision=precision))
    quantized, theirs = ours.encode(SHORT, precision=precision), ref.encode(SHORT, precision=precision)
    assert quantized.dtype == theirs.dtype and quantized.shape == theirs.shape
    np.testing.assert_array_equal(quantized, theirs)


def test_token_embeddings(ours, ref):
    a = ours.encode(SENTENCES, output_value="token_embeddings", batch_size=4)
    b = ref.encode(SENTENCES, output_value="token_embeddings", batch_size=4)
    assert isinstance(a, list) and len(a) == len(b)
    for x, y in zip(a, b):
        assert x.shape == y.shape  # padding removed: one row per real token
        torch.testing.assert_close(x, y, atol=ATOL, rtol=0)
    assert len(a[SENTENCES.index("word " * 300)]) == 256  # truncated to max_seq_length


@pytest.mark.parametrize("dim", [32, 100])
def test_truncate_dim(ours, ref, dim):
    a = ours.encode(SENTENCES[:5], truncate_dim=dim, normalize_embeddings=True)
    b = ref.encode(SENTENCES[:5], truncate_dim=dim, normalize_embeddings=True)
    assert a.shape == (5, dim)
    np.testing.assert_allclose(a, b, atol=ATOL, rtol=0)


def test_truncate_dim_of_the_model(st, minilm_path):
    import headway

    ours = headway.SentenceTransformer(MODEL_ID, device="cpu", truncate_dim=64)
    ref = st.SentenceTransformer(str(minilm_path), device="cpu", truncate_dim=64)
    assert ours.get_sentence_embedding_dimension() == 64
    np.testing.assert_allclose(ours.encode(SENTENCES[:3]), ref.encode(SENTENCES[:3]), atol=ATOL, rtol=0)


def test_prompts(st, minilm_path):
    import headway

    prompts = {"query": "query: ", "passage": "passage: "}
    ours = headway.SentenceTransformer(MODEL_ID, device="cpu", prompts=prompts, default_prompt_name="passage")
    ref = st.SentenceTransformer(str(minilm_path), device="cpu", prompts=prompts, default_prompt_name="passage")
    texts = SENTENCES[:4]
    for kwargs in ({}, {"prompt_name": "query"}, {"prompt": "Represent this: "}):
        np.testing.assert_allclose(ours.encode(texts, **kwargs), ref.encode(texts, **kwargs), atol=ATOL, rtol=0)
    np.testing.assert_allclose(ours.encode_query(texts), ref.encode_query(texts), atol=ATOL, rtol=0)
    np.testing.assert_allclose(ours.encode_document(texts), ref.encode_document(texts), atol=ATOL, rtol=0)
    # the default prompt really is prepended
    np.testing.assert_allclose(ours.encode(texts), ours.encode(["passage: " + t for t in texts], prompt=""),
                               atol=ATOL, rtol=0)


@pytest.mark.parametrize("name", ["cosine", "dot", "euclidean", "manhattan"])
def test_similarity_functions(ours, ref, name):
    a = ours.encode(SENTENCES[:5])
    ours.similarity_fn_name = ref.similarity_fn_name = name
    try:
        torch.testing.assert_close(ours.similarity(a, a[:3]), ref.similarity(a, a[:3]), atol=ATOL, rtol=0)
        torch.testing.assert_close(ours.similarity_pairwise(a, a[::-1].copy()),
                                   ref.similarity_pairwise(a, a[::-1].copy()), atol=ATOL, rtol=0)
    finally:
        ours.similarity_fn_name = ref.similarity_fn_name = "cosine"


def test_semantic_search_same_hits(ours, ref, st):
    corpus = SHORT + ["A woman is slicing bread.", "Cats are great pets.", "Deep learning for NLP."]
    queries = ["Someone eats a meal.", "artificial intelligence", "pets"]
    ours_hits = util.semantic_search(ours.encode(queries, convert_to_tensor=True),
                                     ours.encode(corpus, convert_to_tensor=True), top_k=5, corpus_chunk_size=4)
    ref_hits = st.util.semantic_search(ref.encode(queries, convert_to_tensor=True),
                                       ref.encode(corpus, convert_to_tensor=True), top_k=5, corpus_chunk_size=4)
    for mine, theirs in zip(ours_hits, ref_hits, strict=True):
        assert [h["corpus_id"] for h in mine] == [h["corpus_id"] for h in theirs]
        np.testing.assert_allclose([h["score"] for h in mine], [h["score"] for h in theirs], atol=ATOL)


def test_model_facts(ours, ref):
    assert ours.max_seq_length == ref.max_seq_length == 256
    assert ours.get_sentence_embedding_dimension() == 384
    assert ours.similarity_fn_name == "cosine"
    assert ours.prompts == ref.prompts and ours.default_prompt_name is None
    assert ours.device.type == "cpu"
    assert type(ours[1]).__name__ == "Pooling" and len(ours) == 3
    assert [type(m).__name__ for m in ours[:2]] == ["Transformer", "Pooling"]  # a slice is a model too
    assert ours[:2].encode("hi").shape == (384,)
    assert ours.tokenizer("hello")["input_ids"] == ref.tokenizer("hello")["input_ids"]
