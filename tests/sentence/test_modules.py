"""Module types and folder layouts: pooling modes, Dense + Normalize, plain checkpoints; against the reference."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

import headway
from headway.sentence.modules import Pooling

from .conftest import SENTENCES, link_folder, write_json

ATOL = 1e-5
TEXTS = [text for text in SENTENCES if len(text) < 200]
TRANSFORMER_AND_POOLING = [
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
]


def pooling_folder(minilm_path, tmp_path, pooling_config: dict):
    folder = link_folder(minilm_path, tmp_path / "model", skip=("1_Pooling", "modules.json"))
    write_json(folder / "modules.json", TRANSFORMER_AND_POOLING)
    write_json(folder / "1_Pooling" / "config.json", pooling_config)
    return folder


def assert_same_embeddings(folder, st, **encode_kwargs):
    ours = headway.SentenceTransformer(folder, device="cpu")
    ref = st.SentenceTransformer(str(folder), device="cpu")
    a = ours.encode(TEXTS, batch_size=4, **encode_kwargs)  # batches of mixed lengths: padding matters
    b = ref.encode(TEXTS, batch_size=4, **encode_kwargs)
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, atol=ATOL, rtol=0)
    return ours


@pytest.mark.parametrize("mode", ["cls", "max", "mean_sqrt_len_tokens", "weightedmean", "lasttoken", ["cls", "mean"]])
def test_pooling_modes(minilm_path, tmp_path, st, mode):
    folder = pooling_folder(minilm_path, tmp_path, {"embedding_dimension": 384, "pooling_mode": mode,
                                                    "include_prompt": True})
    ours = assert_same_embeddings(folder, st)
    assert ours.get_sentence_embedding_dimension() == 384 * (1 if isinstance(mode, str) else len(mode))


def test_pooling_legacy_boolean_form(minilm_path, tmp_path, st):
    """The older config: word_embedding_dimension and one boolean per mode (here two: concatenated)."""
    config = {"word_embedding_dimension": 384, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
              "pooling_mode_max_tokens": True, "pooling_mode_mean_sqrt_len_tokens": False}
    ours = assert_same_embeddings(pooling_folder(minilm_path, tmp_path, config), st)
    assert ours[1].pooling_mode == ("max", "mean")


def test_pooling_without_prompt_tokens(minilm_path, tmp_path, st):
    """include_prompt=False (INSTRUCTOR models): the prompt's tokens are left out of the mean."""
    folder = pooling_folder(minilm_path, tmp_path, {"embedding_dimension": 384, "pooling_mode": "mean",
                                                    "include_prompt": False})
    assert_same_embeddings(folder, st, prompt="Represent the sentence for retrieval: ")


def test_dense_and_normalize_pipeline(minilm_path, tmp_path, st):
    from sentence_transformers.models import Dense, Normalize, Transformer
    from sentence_transformers.models import Pooling as RefPooling

    torch.manual_seed(0)
    built = st.SentenceTransformer(
        modules=[Transformer(str(minilm_path)), RefPooling(384, "mean"), Dense(384, 16), Normalize()], device="cpu"
    )
    built.save(str(tmp_path / "dense"))
    ours = headway.SentenceTransformer(tmp_path / "dense", device="cpu")
    assert [type(m).__name__ for m in ours] == ["Transformer", "Pooling", "Dense", "Normalize"]
    assert ours.get_sentence_embedding_dimension() == 16
    a, b = ours.encode(TEXTS, batch_size=4), built.encode(TEXTS, batch_size=4)
    assert a.shape == (len(TEXTS), 16)
    np.testing.assert_allclose(a, b, atol=ATOL, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-6)


def test_dense_from_pytorch_bin_without_bias(minilm_path, tmp_path, st):
    """A Dense saved as pytorch_model.bin (read with weights_only) with ReLU and no bias."""
    from sentence_transformers.models import Dense, Transformer
    from sentence_transformers.models import Pooling as RefPooling

    torch.manual_seed(1)
    dense = Dense(384, 8, bias=False, activation_function=torch.nn.ReLU())
    built = st.SentenceTransformer(modules=[Transformer(str(minilm_path)), RefPooling(384, "cls"), dense],
                                   device="cpu")
    folder = tmp_path / "bin"
    built.save(str(folder))
    (folder / "2_Dense" / "model.safetensors").unlink()
    torch.save(dense.state_dict(), folder / "2_Dense" / "pytorch_model.bin")
    ours = headway.SentenceTransformer(folder, device="cpu")
    np.testing.assert_allclose(ours.encode(TEXTS), built.encode(TEXTS), atol=ATOL, rtol=0)


def test_plain_checkpoint_gets_mean_pooling(minilm_path, tmp_path, st, caplog):
    folder = link_folder(minilm_path, tmp_path / "plain", skip=(
        "modules.json", "1_Pooling", "sentence_bert_config.json", "config_sentence_transformers.json", "README.md"))
    with caplog.at_level(logging.WARNING, logger="headway.sentence.encoder"):
        ours = headway.SentenceTransformer(folder, device="cpu")
    assert "no modules.json" in caplog.text and "mean pooling" in caplog.text
    assert [type(m).__name__ for m in ours] == ["Transformer", "Pooling"]
    assert ours[1].pooling_mode == "mean" and ours.max_seq_length == 512
    ref = st.SentenceTransformer(str(folder), device="cpu")
    np.testing.assert_allclose(ours.encode(TEXTS), ref.encode(TEXTS), atol=ATOL, rtol=0)


def test_pooling_config_round_trip():
    for mode in ["mean", ("cls", "max"), ("max", "cls"), "lasttoken"]:
        pooling = Pooling(8, mode, include_prompt=False)
        again = Pooling.from_config(pooling.get_config_dict())
        assert again.pooling_mode == pooling.pooling_mode and again.include_prompt is False


def test_build_from_modules(ours):
    """The sentence-transformers way of composing a model: SentenceTransformer(modules=[...])."""
    from headway.sentence import Normalize, Transformer

    built = headway.SentenceTransformer(
        modules=[Transformer("sentence-transformers/all-MiniLM-L6-v2", max_seq_length=256), Pooling(384, "mean"),
                 Normalize()], device="cpu")
    np.testing.assert_allclose(built.encode(TEXTS), ours.encode(TEXTS), atol=0, rtol=0)


def test_sentence_bert_config_is_honoured(minilm_path, tmp_path, st):
    folder = link_folder(minilm_path, tmp_path / "m", skip=("sentence_bert_config.json",))
    write_json(folder / "sentence_bert_config.json", {"max_seq_length": 8, "do_lower_case": True})
    ours = assert_same_embeddings(folder, st)
    assert ours.max_seq_length == 8
    assert ours.tokenize(["A Long Sentence With Many Words In It"])["input_ids"].shape == (1, 8)
