"""The tiny checkpoints the fuzz targets start from, built once per process (or once per campaign) in a folder.

Everything is headway-made and tiny (vocab 101, hidden 16, one or two layers): a WordPiece tokenizer folder
(``tokenizer.json`` + ``tokenizer_config.json`` + ``special_tokens_map.json``) and one with only
``vocab.txt``; BERT, GPT-2 and Llama checkpoints (single file, and BERT sharded with an index); a
sentence-transformers folder (Transformer, Pooling, Normalize); and, in memory, the models and pipelines the
runtime targets call.
"""

from __future__ import annotations

import functools
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

WORDS = (  # noqa: SIM905 - a sentence is easier to read than thirty quoted words
    "the a an is was cat dog sat on mat hello world paris france capital of what where who be good bad movie "
    "great terrible i you he she it"
).split()
VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    *WORDS,
    *(f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"),
    *"abcdefghijklmnopqrstuvwxyz0123456789.,!?",
]
VOCAB_SIZE = len(VOCAB)  # 101
MAX_POSITIONS = 32
TINY = {
    "vocab_size": VOCAB_SIZE,
    "hidden_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "max_position_embeddings": MAX_POSITIONS,
    "pad_token_id": 0,
}
FAMILIES: dict[str, dict[str, Any]] = {
    "bert": TINY,
    "roberta": {**TINY, "pad_token_id": 1},
    "distilbert": {
        "vocab_size": VOCAB_SIZE,
        "dim": 16,
        "n_layers": 2,
        "n_heads": 2,
        "hidden_dim": 32,
        "max_position_embeddings": MAX_POSITIONS,
        "pad_token_id": 0,
    },
    "deberta-v2": {
        **TINY,
        "type_vocab_size": 2,
        "position_biased_input": True,
        "relative_attention": True,
        "pos_att_type": ["c2p", "p2c"],
        "max_relative_positions": 16,
    },
    "mpnet": {**TINY, "pad_token_id": 1},
    "modernbert": {
        **TINY,
        "global_attn_every_n_layers": 2,
        "local_attention": 8,
        "bos_token_id": 2,
        "eos_token_id": 3,
        "sep_token_id": 3,
        "cls_token_id": 2,
    },
    "gpt2": {
        "vocab_size": VOCAB_SIZE,
        "n_embd": 16,
        "n_layer": 2,
        "n_head": 2,
        "n_positions": MAX_POSITIONS,
        "bos_token_id": 2,
        "eos_token_id": 3,
        "pad_token_id": 0,
    },
    "llama": {**TINY, "num_key_value_heads": 1, "bos_token_id": 2, "eos_token_id": 3},
}
LABELS = {
    "id2label": {0: "contradiction", 1: "neutral", 2: "entailment"},
    "label2id": {"contradiction": 0, "neutral": 1, "entailment": 2},
}


@dataclass
class Env:
    """Paths of the tiny checkpoints, and (built on first use) what the runtime targets call."""

    root: Path
    folders: dict[str, Path] = field(default_factory=dict)
    # Models built from fuzzed configs are skipped above this size (None: build any size, under the
    # campaign's memory limit; a test process has none, and a CI machine may have the memory to try).
    max_build_params: int | None = 20_000_000

    @functools.cached_property
    def tokenizer(self) -> Any:
        from headway import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.folders["tokenizer"])

    @functools.cached_property
    def models(self) -> dict[str, torch.nn.Module]:
        """One bare model per family, in memory."""
        from headway import AutoConfig, AutoModel

        torch.manual_seed(0)
        return {
            name: AutoModel.from_config(AutoConfig.for_model(name, **kwargs)).eval()
            for name, kwargs in FAMILIES.items()
        }

    @functools.cached_property
    def sentence_transformer(self) -> Any:
        from headway import SentenceTransformer

        return SentenceTransformer(self.folders["sentence"], device="cpu")

    @functools.cached_property
    def pipelines(self) -> dict[str, Any]:
        from headway import (
            AutoConfig,
            AutoModelForCausalLM,
            AutoModelForMaskedLM,
            AutoModelForQuestionAnswering,
            AutoModelForSequenceClassification,
            AutoModelForTokenClassification,
            pipeline,
        )

        torch.manual_seed(0)
        bert = functools.partial(AutoConfig.for_model, "bert", **TINY)
        made = {
            "text-classification": AutoModelForSequenceClassification.from_config(bert(num_labels=2)),
            "zero-shot-classification": AutoModelForSequenceClassification.from_config(bert(**LABELS)),
            "fill-mask": AutoModelForMaskedLM.from_config(bert()),
            "token-classification": AutoModelForTokenClassification.from_config(
                bert(id2label={0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"})
            ),
            "question-answering": AutoModelForQuestionAnswering.from_config(bert()),
            "feature-extraction": self.models["bert"],
            "text-generation": AutoModelForCausalLM.from_config(
                AutoConfig.for_model("llama", **FAMILIES["llama"])
            ),
        }
        return {
            task: pipeline(task, model=model.eval(), tokenizer=self.tokenizer, device="cpu")
            for task, model in made.items()
        }


def build(root: str | Path) -> Env:
    """Write every tiny checkpoint under ``root`` (once: an existing build is reused)."""
    root = Path(root)
    env = Env(
        root,
        {
            name: root / name
            for name in ("tokenizer", "vocab_only", "bert", "gpt2", "llama", "sharded", "sentence")
        },
    )
    if (root / "DONE").exists():
        return env
    from headway import AutoConfig, AutoModel, AutoTokenizer

    vocab_only = env.folders["vocab_only"]
    vocab_only.mkdir(parents=True, exist_ok=True)
    (vocab_only / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    (vocab_only / "tokenizer_config.json").write_text(
        json.dumps(
            {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": MAX_POSITIONS}
        )
    )
    tokenizer = AutoTokenizer.from_pretrained(vocab_only)
    tokenizer.save_pretrained(env.folders["tokenizer"])

    torch.manual_seed(0)
    for name in ("bert", "gpt2", "llama"):
        model = AutoModel.from_config(AutoConfig.for_model(name, **FAMILIES[name]))
        model.save_pretrained(env.folders[name])
    AutoModel.from_pretrained(env.folders["bert"]).save_pretrained(
        env.folders["sharded"], max_shard_size=20_000
    )

    sentence = env.folders["sentence"]
    shutil.copytree(env.folders["bert"], sentence)
    tokenizer.save_pretrained(sentence)
    _write(
        sentence / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
    )
    _write(sentence / "sentence_bert_config.json", {"max_seq_length": 24, "do_lower_case": False})
    _write(
        sentence / "1_Pooling" / "config.json",
        {"word_embedding_dimension": 16, "pooling_mode_mean_tokens": True},
    )
    (sentence / "2_Normalize").mkdir()
    _write(
        sentence / "config_sentence_transformers.json",
        {"prompts": {"query": "query: "}, "default_prompt_name": None, "similarity_fn_name": "cosine"},
    )
    (root / "DONE").write_text("")
    return env


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
