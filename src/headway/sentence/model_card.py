"""Model cards (README.md) for saved SentenceTransformer and CrossEncoder folders.

``ModelCardData`` holds what a card says (language, license, model id, base model, tags...) and is
kept on the model as ``model.model_card_data``. ``generate_model_card(model)`` writes the card: YAML
metadata the Hugging Face Hub reads (library, pipeline tag, tags, base model), a description with the
model's architecture, and a usage snippet. A model loaded from a folder that had a README keeps that
text and writes it back on save (with the placeholder model id replaced once the id is known), unless
the card data was changed since; a fresh card is generated otherwise.

Only the facts the model knows are written: headway records no training logs or evaluation results.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

MODEL_ID_PLACEHOLDER = "sentence_transformers_model_id"

__all__ = [
    "MODEL_ID_PLACEHOLDER",
    "ModelCardData",
    "generate_model_card",
    "get_dataset_info",
    "get_model_info",
]


def get_model_info(model_id: str) -> Any:
    """The Hub's information on ``model_id`` (``huggingface_hub.model_info``); a network call."""
    from huggingface_hub import model_info

    return model_info(model_id)


def get_dataset_info(dataset_id: str) -> Any:
    """The Hub's information on ``dataset_id`` (``huggingface_hub.dataset_info``); a network call."""
    from huggingface_hub import dataset_info

    return dataset_info(dataset_id)


@dataclass
class ModelCardData:
    """What a model card says about a model.

    Args:
        language: Language code(s) of the model's texts.
        license: A license id (e.g. "apache-2.0").
        model_name: A human-readable name (the card's title).
        model_id: The Hub id the model is (or will be) published as; used in the usage snippet.
        train_datasets: ``{"name": ..., "id": ...}`` of the training data, when known.
        task_name: What the embeddings are for, in words.
        tags: Hub tags.
        local_files_only: Never ask the Hub about the base model.
        generate_widget_examples: Whether to write widget examples (kept for compatibility; headway
            writes none).
    """

    language: str | list[str] | None = field(default_factory=list)
    license: str | None = None
    model_name: str | None = None
    model_id: str | None = None
    train_datasets: list[dict[str, str]] = field(default_factory=list)
    eval_datasets: list[dict[str, str]] = field(default_factory=list)
    task_name: str | None = None
    tags: list[str] | None = None
    local_files_only: bool = False
    generate_widget_examples: bool = True
    base_model: str | None = field(default=None, init=False)
    base_model_revision: str | None = field(default=None, init=False)
    save_dir: str | None = field(default=None, init=False, repr=False)

    def set_model_id(self, model_id: str) -> None:
        self.model_id = model_id

    def set_base_model(self, model_id: str, revision: str | None = None) -> bool:
        """Record the model this one was built from (a Hub id, not a local folder)."""
        self.base_model = model_id
        self.base_model_revision = revision
        return True

    def to_dict(self) -> dict[str, Any]:
        """The card's YAML metadata, without empty values."""
        data = {
            "language": self.language,
            "license": self.license,
            "tags": self.tags,
            "base_model": self.base_model,
            "datasets": [d["id"] for d in self.train_datasets if d.get("id")],
        }
        return {key: value for key, value in data.items() if value not in (None, [], "")}


# kind -> (the Hub's pipeline tag, default tags, what the model does, default task description)
_KINDS: dict[str, tuple[str, list[str], str, str]] = {
    "SentenceTransformer": (
        "sentence-similarity",
        ["sentence-transformers", "sentence-similarity", "feature-extraction"],
        "maps sentences and paragraphs to a {dimension}-dimensional dense vector space",
        (
            "semantic textual similarity, semantic search, paraphrase mining, text classification, clustering, "
            "and more"
        ),
    ),
    "CrossEncoder": (
        "text-ranking",
        ["sentence-transformers", "cross-encoder", "reranker"],
        "computes scores for pairs of texts",
        "text reranking and semantic search",
    ),
}


def _yaml_value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)  # JSON scalars and lists are valid YAML


def _metadata(model: Any, kind: str) -> str:
    pipeline_tag, default_tags, _, _ = _KINDS[kind]
    data = model.model_card_data
    meta = {
        **data.to_dict(),
        "tags": data.tags or default_tags,
        "pipeline_tag": pipeline_tag,
        "library_name": "sentence-transformers",
    }
    lines = []
    for key, value in meta.items():
        if isinstance(value, list):
            lines.append(f"{key}:")
            lines.extend(f"- {_yaml_value(item)}" for item in value)
        else:
            lines.append(f"{key}: {_yaml_value(value)}")
    return "\n".join(lines)


def _usage(model: Any, kind: str, model_id: str) -> str:
    if kind == "CrossEncoder":
        return f"""```python
from sentence_transformers import CrossEncoder

model = CrossEncoder("{model_id}")
pairs = [
    ["How many people live in Berlin?", "Berlin has a population of 3,520,031 registered inhabitants."],
    ["How many people live in Berlin?", "Berlin is well known for its museums."],
]
scores = model.predict(pairs)
print(scores.shape)
```"""
    return f"""```python
from sentence_transformers import SentenceTransformer

model = SentenceTransformer("{model_id}")
sentences = [
    "The weather is lovely today.",
    "It's so sunny outside!",
    "He drove to the stadium.",
]
embeddings = model.encode(sentences)
print(embeddings.shape)

similarities = model.similarity(embeddings, embeddings)
print(similarities.shape)
```"""


def generate_model_card(model: Any) -> str:
    """The README.md text for ``model`` (a SentenceTransformer or a CrossEncoder)."""
    kind = "CrossEncoder" if type(model).__name__ == "CrossEncoder" else "SentenceTransformer"
    data = model.model_card_data
    _, _, does, task = _KINDS[kind]
    dimension = model.get_embedding_dimension() if kind == "SentenceTransformer" else None
    model_id = data.model_id or MODEL_ID_PLACEHOLDER
    title = data.model_name or (f"{kind} based on {data.base_model}" if data.base_model else f"{kind} model")
    origin = (
        f" finetuned from [{data.base_model}](https://huggingface.co/{data.base_model})"
        if data.base_model
        else ""
    )
    details = [f"- **Model Type:** {'Cross Encoder' if kind == 'CrossEncoder' else 'Sentence Transformer'}"]
    if data.base_model:
        details.append(f"- **Base model:** [{data.base_model}](https://huggingface.co/{data.base_model})")
    max_length = model.get_max_seq_length()
    if max_length is not None:
        details.append(f"- **Maximum Sequence Length:** {max_length} tokens")
    if kind == "SentenceTransformer":
        details.append(f"- **Output Dimensionality:** {dimension} dimensions")
        details.append(f"- **Similarity Function:** {model.similarity_fn_name}")
    else:
        details.append(
            f"- **Number of Output Labels:** {model.num_labels} label{'s' if model.num_labels > 1 else ''}"
        )
    if data.language:
        language = data.language if isinstance(data.language, str) else ", ".join(data.language)
        details.append(f"- **Language:** {language}")
    if data.license:
        details.append(f"- **License:** {data.license}")
    return f"""---
{_metadata(model, kind)}
---

# {title}

This is a [sentence-transformers](https://www.SBERT.net) {kind} model{origin}. It {does.format(dimension=dimension)} \
and can be used for {data.task_name or task}.

## Model Details

### Model Description
{chr(10).join(details)}

### Full Model Architecture

```
{model}
```

## Usage

Install the library that reads this folder (`pip install -U sentence-transformers`), or use headway's
`{kind}`, which reads and writes the same format:

{_usage(model, kind, model_id)}
"""
