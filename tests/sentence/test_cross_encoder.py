"""CrossEncoder.predict / rank against sentence-transformers' CrossEncoder on MiniLM + a seeded random head."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import headway

ATOL = 1e-5
QUERY = "How many people live in Berlin?"
DOCUMENTS = [
    "Berlin had a population of 3,520,031 registered inhabitants in an area of 891.82 square kilometers.",
    "Berlin is well known for its museums.",
    "In 2013 around 600,000 Berliners were registered in one of the more than 2,300 sport and fitness clubs.",
    "The city of Paris had a population of 2,165,423 people within its administrative city limits as of 2019.",
    "short",
    "Berlin " * 100,
]
PAIRS = [(QUERY, doc) for doc in DOCUMENTS] + [("A man is eating food.", "A man eats.")]


@pytest.fixture(scope="module", params=[1, 3], ids=["1label", "3labels"])
def folder(request, minilm_path, tmp_path_factory):
    """MiniLM with a classification head of ``num_labels`` drawn from a fixed seed, saved by transformers."""
    import transformers
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification.from_pretrained(str(minilm_path), num_labels=request.param)
    path = tmp_path_factory.mktemp(f"ce{request.param}")
    model.save_pretrained(path)
    transformers.AutoTokenizer.from_pretrained(str(minilm_path)).save_pretrained(path)
    return path, request.param


@pytest.fixture(scope="module")
def pair(folder, st):
    path, num_labels = folder
    return headway.CrossEncoder(path, device="cpu"), st.CrossEncoder(str(path), device="cpu"), num_labels


def test_predict_equals_reference(pair):
    ours, ref, num_labels = pair
    assert ours.num_labels == ref.num_labels == num_labels
    assert ours.max_length == ref.max_seq_length == 512
    a, b = ours.predict(PAIRS, batch_size=3), ref.predict(PAIRS, batch_size=3)
    assert a.shape == b.shape == ((len(PAIRS),) if num_labels == 1 else (len(PAIRS), num_labels))
    np.testing.assert_allclose(a, b, atol=ATOL, rtol=0)
    if num_labels == 1:  # default activation: sigmoid
        assert ((a > 0) & (a < 1)).all()


@pytest.mark.parametrize("options", [
    {"apply_softmax": True},
    {"activation_fn": torch.nn.Identity()},
    {"convert_to_tensor": True},
    {"convert_to_numpy": False},
])
def test_predict_options(pair, options):
    ours, ref, _ = pair
    a, b = ours.predict(PAIRS[:4], **options), ref.predict(PAIRS[:4], **options)
    if isinstance(b, list):
        assert isinstance(a, list) and len(a) == len(b)
        a, b = torch.stack(a), torch.stack(b)
    elif isinstance(b, torch.Tensor):
        assert isinstance(a, torch.Tensor)
    torch.testing.assert_close(torch.as_tensor(a), torch.as_tensor(b), atol=ATOL, rtol=0)


def test_max_length_truncates_longest_first(folder, st):
    path, _ = folder
    ours, ref = headway.CrossEncoder(path, max_length=24, device="cpu"), st.CrossEncoder(str(path), max_length=24,
                                                                                         device="cpu")
    assert ours.max_length == 24
    np.testing.assert_allclose(ours.predict(PAIRS), ref.predict(PAIRS), atol=ATOL, rtol=0)


def test_single_pair(pair):
    ours, ref, num_labels = pair
    a, b = ours.predict(PAIRS[0]), ref.predict(PAIRS[0])
    assert np.shape(a) == np.shape(b) == (() if num_labels == 1 else (num_labels,))
    np.testing.assert_allclose(a, b, atol=ATOL, rtol=0)


def test_rank(pair):
    ours, ref, num_labels = pair
    if num_labels != 1:
        with pytest.raises(ValueError, match="num_labels=1"):
            ours.rank(QUERY, DOCUMENTS)
        return
    for kwargs in ({}, {"top_k": 3, "return_documents": True}):
        mine, theirs = ours.rank(QUERY, DOCUMENTS, **kwargs), ref.rank(QUERY, DOCUMENTS, **kwargs)
        assert [h["corpus_id"] for h in mine] == [h["corpus_id"] for h in theirs]
        assert [h.get("text") for h in mine] == [h.get("text") for h in theirs]
        np.testing.assert_allclose([h["score"] for h in mine], [h["score"] for h in theirs], atol=ATOL)


def test_save_round_trip(pair, st, tmp_path):
    ours, ref, _ = pair
    ours.save(tmp_path / "ce")
    for loaded in (headway.CrossEncoder(tmp_path / "ce", device="cpu"), st.CrossEncoder(str(tmp_path / "ce"), device="cpu")):
        np.testing.assert_allclose(loaded.predict(PAIRS[:3]), ref.predict(PAIRS[:3]), atol=ATOL, rtol=0)
