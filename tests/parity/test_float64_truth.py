"""On a real checkpoint, headway's float32 outputs are no further from the float64 truth (the reference
library run in float64) than the reference's own float32 outputs: the accuracy half of "same numbers".

all-MiniLM-L6-v2 (real trained weights) on a padded batch; SmolLM2's GGUF has the same check in
test_smollm2.py. A kernel that rounds worse than the reference's (oneDNN's matrix product from 8 rows
on, ~1.3x MKL's mean error with these weights) fails it.
"""

from __future__ import annotations

import torch
import transformers

from headway import AutoModel, AutoTokenizer

TEXTS = [
    "A man is eating food.",
    "The quick brown fox jumps over the lazy dog, again and again and again.",
    "Héllo wörld 12345, numbers and ünïcödé.",
] * 4


def test_minilm_no_further_from_float64_than_the_reference(minilm_path) -> None:
    tok = AutoTokenizer.from_pretrained(minilm_path)
    ours = AutoModel.from_pretrained(minilm_path).eval()
    reference = transformers.AutoModel.from_pretrained(minilm_path).eval()
    batch = tok(TEXTS, padding=True, return_tensors="pt")
    keep = batch["attention_mask"].bool()
    with torch.no_grad():
        mine = ours(**batch).last_hidden_state.double()
        ref = reference(**batch).last_hidden_state.double()
        truth = reference.double()(**batch).last_hidden_state
    mine, ref = (mine - truth).abs()[keep], (ref - truth).abs()[keep]
    assert mine.max() <= ref.max() * 1.05, (mine.max().item(), ref.max().item())
    assert mine.mean() <= ref.mean() * 1.05, (mine.mean().item(), ref.mean().item())


def test_one_row_products_round_no_worse_than_mkl(minilm_path) -> None:
    """A one-row product (a batch-1 decoding step) takes oneDNN by default: with trained weights it is
    closer to the float64 product than MKL's matrix-vector product, the reference's kernel."""
    model = AutoModel.from_pretrained(minilm_path).eval()
    torch.manual_seed(0)
    for layer in (model.encoder.layer[2].attention.self.query, model.encoder.layer[2].output.dense):
        x = torch.randn(16, 1, layer.in_features)  # 16 separate one-row products
        with torch.no_grad():
            truth = torch.nn.functional.linear(x.double(), layer.weight.double(), layer.bias.double())
            ours = torch.stack([layer(row) for row in x]).double()
            mkl = torch.nn.functional.linear(x, layer.weight, layer.bias).double()
        assert (ours - truth).abs().mean() <= (mkl - truth).abs().mean()
