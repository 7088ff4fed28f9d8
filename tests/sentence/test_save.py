"""save() writes the sentence-transformers folder format: the reference and headway both load it back."""

from __future__ import annotations

import json

import numpy as np
import torch

import headway

from .conftest import SENTENCES

ATOL = 1e-5
TEXTS = [text for text in SENTENCES if len(text) < 200]


def test_save_round_trip(ours, st, tmp_path):
    folder = tmp_path / "saved"
    ours.save(folder)
    modules = json.loads((folder / "modules.json").read_text())
    assert [m["type"] for m in modules] == [
        "sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling",
        "sentence_transformers.models.Normalize",
    ]
    assert [m["path"] for m in modules] == ["", "1_Pooling", "2_Normalize"]
    assert json.loads((folder / "sentence_bert_config.json").read_text()) == {"max_seq_length": 256,
                                                                                "do_lower_case": False}
    assert not list(folder.rglob("*.tmp"))  # atomic writes leave no temporaries
    expected = ours.encode(TEXTS)

    ref = st.SentenceTransformer(str(folder), device="cpu")
    assert ref.max_seq_length == 256 and ref.similarity_fn_name == "cosine"
    np.testing.assert_allclose(ref.encode(TEXTS), expected, atol=ATOL, rtol=0)

    again = headway.SentenceTransformer(folder, device="cpu")
    np.testing.assert_allclose(again.encode(TEXTS), expected, atol=0, rtol=0)


def test_save_keeps_settings(st, tmp_path):
    """Prompts, the default prompt, the similarity function, truncate_dim and a new max length survive."""
    model = headway.SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2", device="cpu",
                                        prompts={"query": "query: "}, default_prompt_name="query",
                                        similarity_fn_name="dot", truncate_dim=128)
    model.max_seq_length = 32
    model.save(tmp_path / "m")
    for loaded in (headway.SentenceTransformer(tmp_path / "m", device="cpu"),
                   st.SentenceTransformer(str(tmp_path / "m"), device="cpu")):
        assert loaded.prompts["query"] == "query: " and loaded.default_prompt_name == "query"
        assert loaded.similarity_fn_name == "dot" and loaded.truncate_dim == 128
        assert loaded.max_seq_length == 32
    np.testing.assert_allclose(headway.SentenceTransformer(tmp_path / "m", device="cpu").encode(TEXTS),
                               model.encode(TEXTS), atol=0, rtol=0)


def test_dense_pipeline_round_trip(minilm_path, st, tmp_path):
    """reference-built Dense model -> headway load -> headway save -> reference load: same numbers."""
    from sentence_transformers.models import Dense, Normalize, Pooling, Transformer

    torch.manual_seed(0)
    built = st.SentenceTransformer(
        modules=[Transformer(str(minilm_path)), Pooling(384, "max"), Dense(384, 16), Normalize()], device="cpu"
    )
    built.save(str(tmp_path / "a"))
    headway.SentenceTransformer(tmp_path / "a", device="cpu").save(tmp_path / "b")
    again = st.SentenceTransformer(str(tmp_path / "b"), device="cpu")
    np.testing.assert_allclose(again.encode(TEXTS), built.encode(TEXTS), atol=ATOL, rtol=0)
