"""Tiny models and data for the training tests: a 2-layer, 32-wide BERT over a 150-token WordPiece
vocabulary built from the data below, saved as a sentence-transformers folder (Transformer + mean
pooling) and as a one-label cross-encoder, plus small pair / triplet / score / NLI data sets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

ANCHORS = [
    "a man eats food in the kitchen",
    "a woman plays music on a guitar",
    "the dog runs in the park",
    "a child reads a book",
    "the cat sleeps on the table",
    "a bird sings a song in the tree",
    "the man walks slowly on the road",
    "a woman drives a red car",
    "two children play with a ball",
    "the old man sits near the river",
    "a girl writes a letter",
    "the boy climbs a big tree",
]
POSITIVES = [
    "the man eats",
    "the woman plays the guitar",
    "a dog runs fast",
    "the child reads",
    "a cat sleeps",
    "the bird sings",
    "a man walks",
    "the woman drives a car",
    "children play ball",
    "an old man sits by the river",
    "the girl writes",
    "a boy climbs",
]
NEGATIVES = [
    "the car is red",
    "a dog sleeps",
    "the park is green",
    "a phone on the table",
    "the river is cold",
    "a man drives",
    "the kitchen is small",
    "a child sings",
    "the tree is old",
    "a girl reads a book",
    "the ball is blue",
    "a woman eats food",
]
SCORES = [0.9, 0.8, 0.1, 0.7, 0.3, 0.95, 0.2, 0.6, 0.5, 0.4, 0.85, 0.05]
NLI_LABELS = [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def vocabulary() -> list[str]:
    words = sorted({w for text in ANCHORS + POSITIVES + NEGATIVES for w in text.split()})
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?")
    return list(dict.fromkeys(SPECIALS + words + chars + ["##" + c for c in chars[:26]]))


def build_bert(folder: Path, *, seed: int = 0, head: str | None = None) -> Path:
    """A tiny random BERT (and its tokenizer) saved by transformers; ``head="cross-encoder"`` gives it a
    one-label classification head."""
    import transformers

    folder.mkdir(parents=True, exist_ok=True)
    vocab = vocabulary()
    transformers.BertTokenizer(
        vocab={t: i for i, t in enumerate(vocab)}, model_max_length=64
    ).save_pretrained(folder)
    config = transformers.BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        classifier_dropout=0.0,
        num_labels=1,
    )
    torch.manual_seed(seed)
    cls = transformers.BertForSequenceClassification if head == "cross-encoder" else transformers.BertModel
    cls(config).save_pretrained(folder)
    return folder


def build_sentence_transformer(folder: Path, seed: int = 0) -> Path:
    """A sentence-transformers folder (Transformer + mean pooling) around a tiny BERT."""
    from headway import SentenceTransformer

    bert = build_bert(folder.parent / f"{folder.name}_bert", seed=seed)
    SentenceTransformer(bert, device="cpu").save(folder)
    return folder


def datasets() -> dict:
    """The data sets the tests train on, by kind."""
    from datasets import Dataset

    n = len(ANCHORS)
    return {
        "pairs": Dataset.from_dict({"anchor": ANCHORS, "positive": POSITIVES}),
        "triplets": Dataset.from_dict({"anchor": ANCHORS, "positive": POSITIVES, "negative": NEGATIVES}),
        "scored": Dataset.from_dict({"sentence1": ANCHORS, "sentence2": NEGATIVES[::-1], "score": SCORES}),
        "nli": Dataset.from_dict({"premise": ANCHORS, "hypothesis": POSITIVES, "label": NLI_LABELS}),
        "ce_pairs": Dataset.from_dict(
            {"query": ANCHORS + ANCHORS, "document": POSITIVES + NEGATIVES, "label": [1.0] * n + [0.0] * n}
        ),
        "ce_lists": Dataset.from_dict(
            {
                "query": ANCHORS[:8],
                "docs": [[POSITIVES[i], NEGATIVES[i], POSITIVES[(i + 1) % n]][: 2 + i % 2] for i in range(8)],
                "labels": [[1.0, 0.0, 0.5][: 2 + i % 2] for i in range(8)],
            }
        ),
    }


def as_reference_keys(state: dict) -> dict:
    """headway's SentenceTransformer weight names -> sentence-transformers 6's (``0.auto_model.`` -> ``0.model.``)."""
    return {k.replace(".auto_model.", ".model."): v for k, v in state.items()}


def max_weight_difference(ours: torch.nn.Module, ref: torch.nn.Module) -> float:
    a, b = as_reference_keys(ours.state_dict()), ref.state_dict()
    assert set(a) == set(b), sorted(set(a) ^ set(b))
    return max((a[k].float() - b[k].float()).abs().max().item() for k in b)


# -- torchrun --------------------------------------------------------------------------------------------------
TORCHRUN_ARGS = {
    "per_device_train_batch_size": 3,
    "max_steps": 2,
    "learning_rate": 1e-3,
    "logging_steps": 1,
    "save_strategy": "no",
    "report_to": "none",
    "disable_tqdm": True,
    "seed": 0,
    "batch_sampler": "no_duplicates",
}
TORCHRUN_SCRIPT = textwrap.dedent("""
    import json, sys, torch
    sys.path.insert(0, sys.argv[3])
    from tiny_training import datasets
    import headway
    from headway.sentence.losses import MultipleNegativesRankingLoss
    from headway.sentence.trainer import SentenceTransformerTrainer
    from headway.sentence.training_args import SentenceTransformerTrainingArguments

    torch.set_num_threads(1)
    folder, out = sys.argv[1], sys.argv[2]
    model = headway.SentenceTransformer(folder, device="cpu")
    args = SentenceTransformerTrainingArguments(out, **json.loads(sys.argv[4]))
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=datasets()["pairs"],
                                         loss=MultipleNegativesRankingLoss(model))
    trainer.train()
    trainer.save_model(out + "/final")
    if trainer.is_world_process_zero():
        json.dump([h["loss"] for h in trainer.state.log_history if "loss" in h], open(out + "/losses.json", "w"))
""")


def torchrun_train(folder: Path, out: Path, work: Path, processes: int = 2) -> None:
    """Train the sentence-transformer in ``folder`` with ``TORCHRUN_ARGS`` (MultipleNegativesRankingLoss on
    the pairs) under ``torchrun --nproc_per_node=processes`` (gloo, one thread each), saving to ``out/final``
    and rank 0's logged losses to ``out/losses.json``."""
    script = work / "train.py"
    script.write_text(TORCHRUN_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
        str(script), str(folder), str(out), str(Path(__file__).parent), json.dumps(TORCHRUN_ARGS),
    ]  # fmt: skip
    result = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=170, check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
