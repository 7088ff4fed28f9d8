"""Encoder forward throughput: headway against transformers on random models of real checkpoint shapes.

Each row of ``MODELS`` names a builder returning the reference model (random weights, eval mode) and the
headway class that loads it; the same weights go to both (``from_pretrained`` with the reference's
config.json and state dict). For each input shape the two libraries are timed alternately, call by
call, under ``torch.inference_mode()``, and the outputs are compared.

Run: .venv/bin/python bench/bench_encoders.py [--rows deberta-v3-base] [--repeats 5] [--shapes 32x128,1x16]
     [--threads 1]

The CPU may be shared: the load average is printed before and after; repeat on a quiet machine. On a
busy one, ``--threads 1`` is steadier (a thread waiting for a descheduled sibling at every parallel
operator inflates the time of many small operators).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import torch


def deberta_v3_base() -> tuple[torch.nn.Module, type]:
    """microsoft/deberta-v3-base's shape (184M parameters), random weights."""
    import transformers

    from headway.models.deberta_v2 import DebertaV2Model

    config = transformers.DebertaV2Config(
        vocab_size=128100, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
        max_position_embeddings=512, relative_attention=True, position_buckets=256, max_relative_positions=-1,
        pos_att_type="p2c|c2p", share_att_key=True, norm_rel_ebd="layer_norm", position_biased_input=False,
        type_vocab_size=0, layer_norm_eps=1e-7,
    )
    return transformers.DebertaV2Model(config), DebertaV2Model


def modernbert_base() -> tuple[torch.nn.Module, type]:
    """answerdotai/ModernBERT-base's shape (149M parameters: 22 layers, a global layer every third, a
    128-token local window), random weights."""
    import transformers

    from headway.models.modernbert import ModernBertModel

    config = transformers.ModernBertConfig(
        vocab_size=50368, hidden_size=768, num_hidden_layers=22, num_attention_heads=12, intermediate_size=1152,
        global_attn_every_n_layers=3, local_attention=128,
    )
    return transformers.ModernBertModel(config), ModernBertModel


# name -> builder: add a row to compare another family.
MODELS: dict[str, Callable[[], tuple[torch.nn.Module, type]]] = {
    "deberta-v3-base": deberta_v3_base,
    "modernbert-base": modernbert_base,
}


def load_pair(builder: Callable[[], tuple[torch.nn.Module, type]]) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    ref, our_cls = builder()
    ref.eval()
    with tempfile.TemporaryDirectory() as folder:
        ref.config.save_pretrained(folder)
        ours = our_cls.from_pretrained(folder, state_dict=ref.state_dict())
    return ref, ours.eval()


def inputs_for(vocab_size: int, batch: int, length: int) -> dict[str, torch.Tensor]:
    """Random ids, the rows padded to lengths spread from ``length`` down to ``length // 2``."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, vocab_size, (batch, length), generator=g)
    mask = torch.ones(batch, length, dtype=torch.long)
    for row in range(batch):
        mask[row, length - (row * (length // 2)) // max(batch, 1):] = 0
    return {"input_ids": ids.masked_fill(mask == 0, 0), "attention_mask": mask}


def bench_shape(ref: torch.nn.Module, ours: torch.nn.Module, inputs: dict, repeats: int, calls: int
                ) -> tuple[float, float, float]:
    """Median seconds per forward of each library over ``repeats`` rounds of ``calls``, alternating, and
    the largest absolute difference of the last hidden states."""
    times: dict[str, list[float]] = {"ref": [], "ours": []}
    with torch.inference_mode():
        diff = (ref(**inputs).last_hidden_state - ours(**inputs).last_hidden_state).abs().max().item()  # warm-up
        for _ in range(repeats):
            for name, model in (("ref", ref), ("ours", ours)):
                start = time.perf_counter()
                for _ in range(calls):
                    model(**inputs)
                times[name].append((time.perf_counter() - start) / calls)
    return statistics.median(times["ref"]), statistics.median(times["ours"]), diff


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=",".join(MODELS), help="comma-separated rows of MODELS")
    parser.add_argument("--shapes", default="32x128,1x16", help="batch x length, comma-separated")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; load average before: {os.getloadavg()}")
    print(f"{'model':18s} {'shape':>8s} {'transformers':>14s} {'headway':>12s} {'speed-up':>9s} {'max |diff|':>11s}")
    for name in args.rows.split(","):
        ref, ours = load_pair(MODELS[name])
        for shape in args.shapes.split(","):
            batch, length = (int(n) for n in shape.split("x"))
            inputs = inputs_for(ref.config.vocab_size, batch, length)
            calls = max(1, 256 // (batch * length // 16 or 1))  # small shapes: several calls per round
            t_ref, t_ours, diff = bench_shape(ref, ours, inputs, args.repeats, min(calls, 50))
            print(f"{name:18s} {shape:>8s} {t_ref * 1e3:11.1f} ms {t_ours * 1e3:9.1f} ms "
                  f"{t_ref / t_ours:8.2f}x {diff:11.1e}")
        del ref, ours
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
