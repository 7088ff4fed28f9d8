"""The sentence-transformers 6 API headway added for conformance (#12), against the real library's numbers.

StaticEmbedding, sparse similarities, packed pooling, encode_query / encode_document, truncate_embeddings,
CrossEncoder folders in the format sentence-transformers 6 writes, model cards and push_to_hub. The whole
of sentence-transformers' own suite runs through tests/conformance (``make conformance``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import headway
from headway.sentence import util
from headway.sentence.pooling import Pooling
from headway.sentence.static_embedding import StaticEmbedding

TEXTS = ["A man is eating food.", "héllo wörld", "The new movie is awesome, a must-see!", "short", ""]


@pytest.fixture(scope="module")
def static_folder(minilm_path, st, tmp_path_factory):
    """A StaticEmbedding model (MiniLM's tokenizer, seeded random 32-d vectors) saved by sentence-transformers."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(minilm_path / "tokenizer.json"))
    weights = torch.randn(tokenizer.get_vocab_size(), 32, generator=torch.Generator().manual_seed(0))
    module = st.sentence_transformer.modules.StaticEmbedding(tokenizer, embedding_weights=weights)
    folder = tmp_path_factory.mktemp("static") / "model"
    st.SentenceTransformer(modules=[module], device="cpu").save(str(folder))
    return folder


def test_static_embedding_matches_reference(static_folder, st, tmp_path):
    ours = headway.SentenceTransformer(static_folder, device="cpu")
    ref = st.SentenceTransformer(str(static_folder), device="cpu")
    assert isinstance(ours[0], StaticEmbedding) and ours.get_embedding_dimension() == 32
    np.testing.assert_allclose(ours.encode(TEXTS), ref.encode(TEXTS), atol=1e-6, rtol=0)
    ours.save(tmp_path / "again")  # and back: the reference reads headway's folder
    again = st.SentenceTransformer(str(tmp_path / "again"), device="cpu")
    np.testing.assert_allclose(again.encode(TEXTS), ref.encode(TEXTS), atol=1e-6, rtol=0)


def test_encode_query_and_document_match_reference(ours, ref, monkeypatch):
    prompts = {"query": "query: ", "passage": "passage: "}
    monkeypatch.setattr(ours, "prompts", dict(prompts))
    monkeypatch.setattr(ref, "prompts", dict(prompts))
    np.testing.assert_allclose(ours.encode_query(TEXTS[:3]), ref.encode_query(TEXTS[:3]), atol=1e-5, rtol=0)
    np.testing.assert_allclose(
        ours.encode_document(TEXTS[:3]), ref.encode_document(TEXTS[:3]), atol=1e-5, rtol=0
    )
    np.testing.assert_allclose(
        ours.encode(inputs=TEXTS[:2], task="query", precision=None),
        ref.encode(TEXTS[:2], task="query"),
        atol=1e-5,
        rtol=0,
    )


def test_truncate_embeddings_is_scoped(ours):
    full = ours.encode(TEXTS[:2])
    with ours.truncate_embeddings(64):
        assert ours.encode(TEXTS[:2]).shape == (2, 64) and ours.get_embedding_dimension() == 64
    assert ours.truncate_dim is None
    np.testing.assert_array_equal(ours.encode(TEXTS[:2]), full)


def test_unknown_encode_keyword_is_refused(ours):
    with pytest.raises(
        ValueError, match=r"additional keyword arguments that this model does not use: \['normalize'\]"
    ):
        ours.encode("text", normalize=True)


@pytest.mark.parametrize(
    "name",
    [
        "cos_sim",
        "dot_score",
        "euclidean_sim",
        "manhattan_sim",
        "pairwise_cos_sim",
        "pairwise_dot_score",
        "pairwise_euclidean_sim",
        "pairwise_manhattan_sim",
        "pairwise_angle_sim",
    ],
)
def test_sparse_similarities_match_reference(st, name):
    generator = torch.Generator().manual_seed(1)
    dense = [
        torch.where(
            torch.rand(6, 50, generator=generator) < 0.1, torch.randn(6, 50, generator=generator), 0.0
        )
        for _ in range(2)
    ]
    a, b = dense[0].to_sparse(), dense[1].to_sparse()
    ours, theirs = getattr(util, name), getattr(st.util, name)
    for x, y in ((a, b), (a, dense[1]), (dense[0], b)):
        torch.testing.assert_close(ours(x, y), theirs(x, y), atol=1e-5, rtol=0)
    torch.testing.assert_close(ours(a, b), ours(dense[0], dense[1]), atol=1e-5, rtol=0)


def test_community_detection_and_paraphrase_mining_match_reference(st):
    generator = torch.Generator().manual_seed(2)
    centres = torch.randn(4, 16, generator=generator)
    embeddings = torch.cat([c + 0.3 * torch.randn(12, 16, generator=generator) for c in centres])
    for kwargs in (
        {"threshold": 0.8, "min_community_size": 5},
        {"threshold": 0.6, "min_community_size": 3, "batch_size": 7},
    ):
        assert util.community_detection(embeddings, **kwargs) == st.util.community_detection(
            embeddings, **kwargs
        )
    for kwargs in ({}, {"top_k": 2, "max_pairs": 10, "query_chunk_size": 5, "corpus_chunk_size": 9}):
        ours = util.paraphrase_mining_embeddings(embeddings, **kwargs)
        theirs = st.util.paraphrase_mining_embeddings(embeddings, **kwargs)
        assert [pair[1:] for pair in ours] == [pair[1:] for pair in theirs]
        np.testing.assert_allclose([p[0] for p in ours], [p[0] for p in theirs], atol=1e-6)


@pytest.mark.parametrize("mode", Pooling.POOLING_MODES)
def test_packed_pooling_equals_padded(mode):
    generator = torch.Generator().manual_seed(3)
    lengths = [3, 5, 1]
    tokens = torch.randn(len(lengths), max(lengths), 8, generator=generator)
    mask = (torch.arange(max(lengths))[None, :] < torch.tensor(lengths)[:, None]).long()
    packed = torch.cat([tokens[i, :n] for i, n in enumerate(lengths)])[None]  # (1, total, 8)
    starts = torch.tensor([0, *np.cumsum(lengths)], dtype=torch.int32)
    pooling = Pooling(8, mode, include_prompt=False)
    padded = pooling({"token_embeddings": tokens, "attention_mask": mask, "prompt_length": 1})
    flat = pooling({"token_embeddings": packed, "cu_seq_lens_q": starts, "prompt_length": 1})
    torch.testing.assert_close(flat["sentence_embedding"], padded["sentence_embedding"])


@pytest.fixture(scope="module")
def ce_folder(minilm_path, tmp_path_factory):
    import transformers

    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification.from_pretrained(str(minilm_path), num_labels=1)
    path = tmp_path_factory.mktemp("ce") / "model"
    model.save_pretrained(path)
    transformers.AutoTokenizer.from_pretrained(str(minilm_path)).save_pretrained(path)
    return path


def test_cross_encoder_folder_keeps_activation_and_prompts(ce_folder, st, tmp_path):
    ours = headway.CrossEncoder(
        ce_folder,
        device="cpu",
        activation_fn=torch.nn.Tanh(),
        prompts={"query": "query: "},
        default_prompt_name="query",
    )
    pairs = [("How many people live in Berlin?", "Berlin has 3.5 million people."), ("a", "b")]
    ours.save(tmp_path / "ce")
    config = json.loads((tmp_path / "ce" / "config_sentence_transformers.json").read_text())
    assert config["activation_fn"] == "torch.nn.modules.activation.Tanh" and config["prompts"] == {
        "query": "query: "
    }
    ref = st.CrossEncoder(str(tmp_path / "ce"), device="cpu")
    assert type(ref.activation_fn) is torch.nn.Tanh and ref.default_prompt_name == "query"
    np.testing.assert_allclose(ours.predict(pairs), ref.predict(pairs), atol=1e-5, rtol=0)
    again = headway.CrossEncoder(tmp_path / "ce", device="cpu")
    assert type(again.activation_fn) is torch.nn.Tanh and again.prompts == {"query": "query: "}
    ranks = again.rank("How many people live in Berlin?", ["Berlin has 3.5 million people.", "Paris"])
    assert [type(hit["score"]) for hit in ranks] == [float, float]


def test_save_writes_a_model_card_and_push_to_hub_uploads_the_folder(ours, tmp_path, monkeypatch):
    from huggingface_hub import CommitInfo, HfApi, RepoUrl

    from headway.sentence.model_card import ModelCardData

    monkeypatch.setattr(
        ours, "model_card_data", ModelCardData()
    )  # the shared model's card data stays as it was

    ours.save(tmp_path / "kept")  # a model loaded with a card writes that card back
    assert (tmp_path / "kept" / "README.md").read_text() == ours._model_card_text
    monkeypatch.setattr(ours, "_model_card_text", None)  # none: a card is generated
    ours.save(tmp_path / "m", model_name="someone/minilm")
    card = (tmp_path / "m" / "README.md").read_text()
    assert 'library_name: "sentence-transformers"' in card and "Output Dimensionality:** 384" in card
    assert 'model = SentenceTransformer("someone/minilm")' in card

    uploaded: dict = {}

    def upload_folder(self, **kwargs):
        uploaded.update(kwargs, files=sorted(p.name for p in Path(kwargs["folder_path"]).iterdir()))
        return CommitInfo(
            commit_url=f"https://huggingface.co/{kwargs['repo_id']}/commit/1",
            commit_message="m",
            commit_description="",
            oid="1",
            pr_url=None,
            _endpoint=None,
        )

    monkeypatch.setattr(
        HfApi, "create_repo", lambda self, repo_id, **kw: RepoUrl(f"https://huggingface.co/{repo_id}")
    )
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    url = ours.push_to_hub("someone/minilm")
    assert url == "https://huggingface.co/someone/minilm/commit/1"
    assert uploaded["commit_message"] == "Add new SentenceTransformer model"
    assert {"modules.json", "config_sentence_transformers.json", "model.safetensors", "README.md"} <= set(
        uploaded["files"]
    )
