"""The encoder-decoder tokenizers (T5, BART, mBART, mBART-50, Marian, Pegasus) against transformers 5.23.

No real vocabulary is available offline, so the tests train their own: small SentencePiece Unigram
models in each family's layout (T5 and Pegasus: ``<pad>``=0 ``</s>``=1 ``<unk>``=2; mBART's fairseq
models and Marian's: ``<unk>``=0 ``<s>``=1 ``</s>``=2) and a byte-level BPE for BART, on text written
here. Each checkpoint folder is loaded by headway and by the reference library; ids, masks, pairs,
targets, padding, truncation, decoding and saving must agree.
"""

from __future__ import annotations

import functools
import json
import random
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import transformers

from headway import tokenization
from headway.tokenization import (
    BertTokenizer,
    GPT2Tokenizer,
    MarianTokenizer,
    MBart50Tokenizer,
    MBartTokenizer,
    PegasusTokenizer,
    T5Tokenizer,
    Tokenizer,
)

pytestmark = pytest.mark.filterwarnings("ignore:Recommended. pip install sacremoses")

# ---------------------------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------------------------

# Training text: words drawn from these (the target side is German-like and lacks some source characters).
_SOURCE_TEXT = (
    "the quick brown fox jumps over a lazy dog . , ! ? hello world translation summary model tokenizer "
    "sentence piece unigram language code source target encoder decoder naïve café résumé Zürich straße "
    "42 3.14 1,000 2024 don't it's can't HuggingFace transformers (parens) quotes: \"yes\" e-mail@x.org"
)
_TARGET_TEXT = (
    "der schnelle braune Fuchs springt über einen faulen Hund . , ! ? hallo Welt Übersetzung Zusammenfassung "
    "Modell Satz Sprache Quelle Ziel Straße größer 42 3,14 2024 nicht ist kann"
)
_SOURCE_WORDS, _TARGET_WORDS = tuple(_SOURCE_TEXT.split()), tuple(_TARGET_TEXT.split())

TEXTS = [
    "hello world",
    "The quick brown fox jumps over the lazy dog.",
    "naïve café résumé Zürich straße",
    "",
    " ",
    "  leading and trailing spaces  ",
    "multiple   spaces\tand\ttabs\nand\nnewlines",
    "non\u00a0breaking space",
    "don't it's can't 3.14 1,000 2024",
    "unknown letters: ☃ 😀 漢字 ß ẞ",
    "hello </s> world <pad> x <unk> y",
    "a <mask> in the middle and <mask>at the end<mask>",
    "sentinels <extra_id_0> and <extra_id_3> here",
    "en_XX ro_RO de_DE language codes in text",
    ">>fr<< a leading language code",
    ">>de<<with no space",
    'HuggingFace transformers (parens) "quotes" e-mail@x.org',
    "UPPER lower MiXeD",
    "word " * 60,
    "Übersetzung größer Straße",
]
TARGETS = [
    "hallo Welt",
    "der schnelle braune Fuchs springt.",
    "",
    "Übersetzung <unk> größer",
    "nicht ist kann " * 20,
]


def _training_lines(words: tuple[str, ...] | list[str], seed: int, count: int = 300) -> str:
    rng = random.Random(seed)
    return "\n".join(" ".join(rng.choice(words) for _ in range(rng.randint(3, 14))) for _ in range(count))


@functools.cache
def _spm(layout: str) -> bytes:
    """A small SentencePiece Unigram model in one family's id layout (trained once per session)."""
    import sentencepiece as spm

    ids = {
        "t5": {"pad_id": 0, "eos_id": 1, "unk_id": 2, "bos_id": -1},  # also Pegasus's layout
        "fairseq": {},  # SentencePiece's own: <unk>=0, <s>=1, </s>=2 (mBART, Marian)
        "target": {},
    }[layout]
    words = _TARGET_WORDS if layout == "target" else _SOURCE_WORDS
    with tempfile.TemporaryDirectory() as work:
        text = Path(work) / "text.txt"
        text.write_text(_training_lines(words, seed=len(layout)), encoding="utf-8")
        spm.SentencePieceTrainer.train(
            input=str(text),
            model_prefix=str(Path(work) / "m"),
            model_type="unigram",
            vocab_size=250 if layout == "target" else 300,
            hard_vocab_limit=False,
            character_coverage=1.0,
            num_threads=1,
            minloglevel=2,
            **ids,
        )
        return (Path(work) / "m.model").read_bytes()


def _pieces(model: bytes) -> list[str]:
    """The normal pieces of a SentencePiece model, in id order."""
    import sentencepiece as spm

    processor = spm.SentencePieceProcessor(model_proto=model)
    return [
        processor.id_to_piece(i)
        for i in range(processor.get_piece_size())
        if not (processor.is_control(i) or processor.is_unknown(i))
    ]


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data), encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# Checkpoint folders
# ---------------------------------------------------------------------------------------------


def _t5(folder: Path) -> None:
    (folder / "spiece.model").write_bytes(_spm("t5"))
    _write_json(folder / "config.json", {"model_type": "t5"})


def _t5_ten_sentinels(folder: Path) -> None:
    (folder / "spiece.model").write_bytes(_spm("t5"))
    _write_json(folder / "tokenizer_config.json", {"tokenizer_class": "T5Tokenizer", "extra_ids": 10})


@functools.cache
def _bart_files() -> tuple[str, str]:
    from tokenizers import Tokenizer as Backend
    from tokenizers import models, pre_tokenizers, trainers

    backend = Backend(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(_training_lines(_SOURCE_WORDS, seed=7).splitlines(), trainer)
    with tempfile.TemporaryDirectory() as work:
        backend.model.save(work)
        vocab = json.loads((Path(work) / "vocab.json").read_text(encoding="utf-8"))
        vocab["<mask>"] = len(vocab)
        return json.dumps(vocab), (Path(work) / "merges.txt").read_text(encoding="utf-8")


def _bart(folder: Path) -> None:
    vocab, merges = _bart_files()
    (folder / "vocab.json").write_text(vocab, encoding="utf-8")
    (folder / "merges.txt").write_text(merges, encoding="utf-8")
    _write_json(folder / "config.json", {"model_type": "bart"})


def _bart_prefix_space(folder: Path) -> None:
    _bart(folder)
    _write_json(
        folder / "tokenizer_config.json", {"tokenizer_class": "BartTokenizer", "add_prefix_space": True}
    )


def _mbart(folder: Path) -> None:
    (folder / "sentencepiece.bpe.model").write_bytes(_spm("fairseq"))
    _write_json(folder / "tokenizer_config.json", {"src_lang": "en_XX", "tgt_lang": "ro_RO"})
    _write_json(folder / "config.json", {"model_type": "mbart"})


def _mbart50(folder: Path) -> None:
    (folder / "sentencepiece.bpe.model").write_bytes(_spm("fairseq"))
    _write_json(
        folder / "tokenizer_config.json",
        {"tokenizer_class": "MBart50Tokenizer", "src_lang": "de_DE", "tgt_lang": "pt_XX"},
    )
    _write_json(folder / "config.json", {"model_type": "mbart"})


def _pegasus(folder: Path) -> None:
    (folder / "spiece.model").write_bytes(_spm("t5"))
    _write_json(folder / "config.json", {"model_type": "pegasus"})


def _pegasus_offset(folder: Path) -> None:
    # The masks named as the Hub's Pegasus configs name them, and a smaller offset.
    (folder / "spiece.model").write_bytes(_spm("t5"))
    _write_json(
        folder / "tokenizer_config.json",
        {
            "tokenizer_class": "PegasusTokenizer",
            "mask_token": "<mask_2>",
            "mask_token_sent": "<mask_1>",
            "offset": 12,
        },
    )


def _marian(folder: Path, separate: bool = False) -> None:
    source, target = _spm("fairseq"), _spm("target")
    (folder / "source.spm").write_bytes(source)
    (folder / "target.spm").write_bytes(target)
    if separate:
        for name, model in (("vocab.json", source), ("target_vocab.json", target)):
            vocab = {"</s>": 0, "<unk>": 1, ">>fr<<": 2, ">>de<<": 3}
            for piece in _pieces(model):
                vocab.setdefault(piece, len(vocab))
            vocab["<pad>"] = len(vocab)
            _write_json(folder / name, vocab)
    else:  # one vocabulary for both sides, with two language codes, as multilingual OPUS-MT models have
        vocab = {"</s>": 0, "<unk>": 1, ">>fr<<": 2, ">>de<<": 3}
        for piece in _pieces(source) + _pieces(target):
            vocab.setdefault(piece, len(vocab))
        vocab["<pad>"] = len(vocab)
        _write_json(folder / "vocab.json", vocab)
    config = {"source_lang": "en", "target_lang": "de", "separate_vocabs": separate}
    _write_json(folder / "tokenizer_config.json", config)
    _write_json(folder / "config.json", {"model_type": "marian"})


CASES: dict[str, Callable[[Path], None]] = {
    "t5": _t5,
    "t5-10-sentinels": _t5_ten_sentinels,
    "bart": _bart,
    "bart-prefix-space": _bart_prefix_space,
    "mbart": _mbart,
    "mbart50": _mbart50,
    "pegasus": _pegasus,
    "pegasus-offset-12": _pegasus_offset,
    "marian": _marian,
    "marian-separate-vocabs": functools.partial(_marian, separate=True),
}
CLASS_NAMES = {
    "t5": "T5Tokenizer",
    "bart": "RobertaTokenizer",  # transformers v5: BartTokenizer is RobertaTokenizer
    "mbart": "MBartTokenizer",
    "mbart50": "MBart50Tokenizer",
    "pegasus": "PegasusTokenizer",
    "marian": "MarianTokenizer",
}


def _reference(folder: Path | str, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Marian recommends sacremoses
        return transformers.AutoTokenizer.from_pretrained(str(folder), **kwargs)


class Pair:
    """A headway tokenizer and the reference's, loaded from the same folder."""

    def __init__(self, name: str, folder: Path) -> None:
        self.name, self.folder = name, folder
        self.hw = Tokenizer.from_pretrained(folder)
        self.ref = _reference(folder)
        self.is_marian = name.startswith("marian")


@pytest.fixture(scope="module", params=list(CASES))
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Pair:
    folder = tmp_path_factory.mktemp(request.param)
    CASES[request.param](folder)
    return Pair(request.param, folder)


def _plain(encoding: Any) -> dict[str, Any]:
    return {key: value.tolist() if hasattr(value, "tolist") else value for key, value in encoding.items()}


def assert_same(hw: Any, ref: Any, texts: list[str] | None = None) -> None:
    """Same keys in the same order and the same values (the first differing row is shown)."""
    a, b = _plain(hw), _plain(ref)
    assert list(a) == list(b)
    for key in b:
        if a[key] != b[key] and isinstance(b[key], list) and len(a[key]) == len(b[key]):
            row = next(i for i, (x, y) in enumerate(zip(a[key], b[key])) if x != y)
            text = f" ({texts[row]!r})" if texts and row < len(texts) else ""
            raise AssertionError(f"{key}[{row}]{text}:\n headway:   {a[key][row]}\n reference: {b[key][row]}")
        assert a[key] == b[key], key


# ---------------------------------------------------------------------------------------------
# Parity on every family
# ---------------------------------------------------------------------------------------------


def test_class_and_vocabulary(pair: Pair) -> None:
    hw, ref = pair.hw, pair.ref
    family = pair.name.split("-")[0]
    assert type(ref).__name__ == type(hw).__name__ == CLASS_NAMES[family]
    assert hw.special_tokens_map == ref.special_tokens_map
    assert hw.extra_special_tokens == ref.extra_special_tokens
    assert hw.all_special_tokens == ref.all_special_tokens
    assert hw.all_special_ids == ref.all_special_ids
    assert hw.vocab_size == ref.vocab_size
    assert len(hw) == len(ref)
    assert hw.get_vocab() == ref.get_vocab()
    assert {k: repr(v) for k, v in hw.added_tokens_decoder.items()} == {
        k: repr(v) for k, v in ref.added_tokens_decoder.items()
    }
    for name in ("bos", "eos", "unk", "sep", "pad", "cls", "mask"):
        assert getattr(hw, f"{name}_token") == getattr(ref, f"{name}_token"), name
        assert getattr(hw, f"{name}_token_id") == getattr(ref, f"{name}_token_id"), name
    assert hw.model_max_length == ref.model_max_length
    assert hw.model_input_names == ref.model_input_names
    assert hw.num_special_tokens_to_add() == ref.num_special_tokens_to_add()
    assert hw.num_special_tokens_to_add(pair=True) == ref.num_special_tokens_to_add(pair=True)
    if not pair.is_marian:  # the reference's Marian runs the sentencepiece library, not a backend
        for part in ("normalizer", "pre_tokenizer", "post_processor", "decoder", "model"):
            ours = json.loads(hw.backend_tokenizer.to_str())[part]
            assert ours == json.loads(ref.backend_tokenizer.to_str())[part], part


def test_singles_pairs_and_tokens(pair: Pair) -> None:
    assert_same(pair.hw(TEXTS), pair.ref(TEXTS), TEXTS)
    assert_same(pair.hw(TEXTS, TEXTS[::-1]), pair.ref(TEXTS, TEXTS[::-1]), TEXTS)
    for text in TEXTS:
        assert pair.hw(text)["input_ids"] == pair.ref(text)["input_ids"], text
        assert pair.hw.tokenize(text) == pair.ref.tokenize(text), text
        assert pair.hw.encode(text, add_special_tokens=False) == pair.ref.encode(
            text, add_special_tokens=False
        )
    if not pair.is_marian:  # the reference's Marian has no offsets (a Python tokenizer)
        options = {"return_offsets_mapping": True, "return_special_tokens_mask": True}
        assert_same(pair.hw(TEXTS, **options), pair.ref(TEXTS, **options), TEXTS)


def test_padding_and_truncation(pair: Pair) -> None:
    for options in (
        {"padding": True},
        {"padding": "max_length", "max_length": 24, "truncation": True},
        {"padding": True, "truncation": True, "max_length": 9, "return_tensors": "pt"},
        {"padding": "longest", "pad_to_multiple_of": 8, "padding_side": "left"},
        {"truncation": True, "max_length": 5},
    ):
        assert_same(pair.hw(TEXTS, **options), pair.ref(TEXTS, **options), TEXTS)
    # Cutting a pair down to an odd number of tokens, the reference's Python Marian leaves the extra token to
    # the first text, the tokenizers library to the longer one; Marian encodes single texts anyway.
    strategies = ["only_second"] if pair.is_marian else ["longest_first", "only_second"]
    for strategy in strategies:
        options = {"padding": True, "truncation": strategy, "max_length": 24}
        firsts = [text[:12] for text in TEXTS[::-1]] if strategy == "only_second" else TEXTS[::-1]
        assert_same(pair.hw(firsts, TEXTS, **options), pair.ref(firsts, TEXTS, **options), firsts)


def test_targets(pair: Pair) -> None:
    texts = TEXTS[: len(TARGETS)]
    assert_same(pair.hw(texts, text_target=TARGETS), pair.ref(texts, text_target=TARGETS))
    assert_same(pair.hw(text_target=TARGETS), pair.ref(text_target=TARGETS))
    assert_same(pair.hw(text_target=TARGETS[1]), pair.ref(text_target=TARGETS[1]))
    options = {"padding": "max_length", "truncation": True, "max_length": 12, "max_target_length": 6}
    assert_same(
        pair.hw(texts, text_target=TARGETS, **options), pair.ref(texts, text_target=TARGETS, **options)
    )
    options = {"padding": True, "return_tensors": "pt"}
    assert_same(
        pair.hw(texts, text_target=TARGETS, **options), pair.ref(texts, text_target=TARGETS, **options)
    )
    # Inputs encoded after targets are inputs again.
    assert_same(pair.hw(TEXTS), pair.ref(TEXTS))


def test_as_target_tokenizer_gives_the_labels(pair: Pair) -> None:
    """The transformers v4 spelling encodes what ``text_target=`` encodes, then switches back."""
    labels = pair.ref(TEXTS[:3], text_target=TARGETS)["labels"]
    with pair.hw.as_target_tokenizer() as tok:
        assert tok is pair.hw
        assert pair.hw(TARGETS)["input_ids"] == labels
        assert (
            pair.hw(TARGETS, padding=True)["input_ids"]
            == pair.ref(text_target=TARGETS, padding=True)["input_ids"]
        )
    assert pair.hw(TEXTS)["input_ids"] == pair.ref(TEXTS)["input_ids"]


def test_decode(pair: Pair) -> None:
    ids = pair.ref(text_target=TARGETS + TEXTS)["input_ids"]
    if pair.name != "marian-separate-vocabs":  # there ids decode through the target vocabulary only
        ids = pair.ref(TEXTS, TEXTS[::-1])["input_ids"] + ids
    for skip in (False, True):
        assert pair.hw.batch_decode(ids, skip_special_tokens=skip) == pair.ref.batch_decode(
            ids, skip_special_tokens=skip
        )
        for row in ids[:8]:
            assert pair.hw.decode(row, skip_special_tokens=skip) == pair.ref.decode(
                row, skip_special_tokens=skip
            )
    for row in ids[:8]:
        assert pair.hw.convert_ids_to_tokens(row) == pair.ref.convert_ids_to_tokens(row)
        assert pair.hw.convert_ids_to_tokens(row, skip_special_tokens=True) == pair.ref.convert_ids_to_tokens(
            row, skip_special_tokens=True
        )
    tokens = pair.ref.tokenize(TEXTS[1])
    assert pair.hw.convert_tokens_to_ids(tokens) == pair.ref.convert_tokens_to_ids(tokens)
    assert pair.hw.convert_tokens_to_string(tokens) == pair.ref.convert_tokens_to_string(tokens)


def test_save_and_reload(pair: Pair, tmp_path: Path) -> None:
    texts, expected = TEXTS, pair.ref(TEXTS, text_target=TEXTS[::-1], padding=True)
    # Saved by headway: both libraries load it back to the same behaviour.
    pair.hw.save_pretrained(tmp_path / "headway")
    for reloaded in (Tokenizer.from_pretrained(tmp_path / "headway"), _reference(tmp_path / "headway")):
        assert type(reloaded).__name__ == type(pair.ref).__name__
        assert_same(reloaded(texts, text_target=TEXTS[::-1], padding=True), expected, texts)
        assert reloaded.special_tokens_map == pair.ref.special_tokens_map
        assert reloaded.extra_special_tokens == pair.ref.extra_special_tokens
        ids = expected["labels"]
        assert reloaded.batch_decode(ids) == pair.ref.batch_decode(ids)
    # Saved by the reference: headway loads it as the reference does.
    pair.ref.save_pretrained(tmp_path / "reference")
    ours, theirs = Tokenizer.from_pretrained(tmp_path / "reference"), _reference(tmp_path / "reference")
    assert_same(ours(texts, text_target=TEXTS[::-1]), theirs(texts, text_target=TEXTS[::-1]), texts)
    assert ours.extra_special_tokens == theirs.extra_special_tokens


def test_auto_tokenizer_picks_the_family(pair: Pair) -> None:
    from headway import AutoTokenizer

    assert type(AutoTokenizer.from_pretrained(pair.folder)).__name__ == type(pair.ref).__name__


# ---------------------------------------------------------------------------------------------
# Family details
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    made = {}
    for name in ("t5", "mbart", "mbart50", "pegasus", "marian", "marian-separate-vocabs", "bart"):
        made[name] = tmp_path_factory.mktemp(f"{name}-details")
        CASES[name](made[name])
    return made


def test_public_names() -> None:
    for name in ("T5", "MBart", "MBart50", "Pegasus", "Bart", "Marian"):
        slow, fast = f"{name}Tokenizer", f"{name}TokenizerFast"
        assert slow in tokenization.__all__ and fast in tokenization.__all__
        assert getattr(tokenization, fast) is getattr(tokenization, slow)
        assert getattr(tokenization, slow).__name__ == getattr(transformers, slow).__name__
    assert tokenization.BartTokenizer is tokenization.RobertaTokenizer  # as transformers v5 has it


def test_t5_sentinels_count_from_the_end(folders: dict[str, Path]) -> None:
    tok = Tokenizer.from_pretrained(folders["t5"])
    assert tok.convert_tokens_to_ids("<extra_id_0>") == len(tok) - 1
    assert tok.convert_tokens_to_ids("<extra_id_99>") == len(tok) - 100
    assert tok.get_sentinel_tokens() == [f"<extra_id_{i}>" for i in range(100)]
    assert tok.get_sentinel_token_ids() == list(range(len(tok) - 1, len(tok) - 101, -1))
    assert tok("a <extra_id_0> b")["input_ids"][-1] == tok.eos_token_id  # </s> appended, no BOS
    assert tok.bos_token is None
    with pytest.raises(ValueError, match=r"extra_ids=3 but additional_special_tokens holds 1"):
        T5Tokenizer(
            [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)],
            extra_ids=3,
            additional_special_tokens=["<extra_id_0>"],
        )


def test_family_classes_from_a_vocabulary(folders: dict[str, Path]) -> None:
    """``T5Tokenizer("spiece.model")`` is what from_pretrained gives on a folder with that file alone."""
    for cls, folder, name in (
        (T5Tokenizer, "t5", "spiece.model"),
        (PegasusTokenizer, "pegasus", "spiece.model"),
        (MBartTokenizer, "mbart", "sentencepiece.bpe.model"),
        (MBart50Tokenizer, "mbart50", "sentencepiece.bpe.model"),
    ):
        path = folders[folder] / name
        built, loaded = cls(path), cls.from_pretrained(folders[folder], src_lang="en_XX", tgt_lang=None)
        assert cls(vocab_file=path).get_vocab() == built.get_vocab() == loaded.get_vocab()
        assert built(TEXTS, TEXTS[::-1])["input_ids"] == loaded(TEXTS, TEXTS[::-1])["input_ids"]
        pieces = json.loads(built.backend_tokenizer.to_str())["model"]["vocab"]
        from_list = cls([tuple(piece) for piece in pieces])  # the same pieces, without the charsmap
        assert from_list(TEXTS[:2])["input_ids"] == built(TEXTS[:2])["input_ids"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        T5Tokenizer(folders["t5"] / "missing.model")
    with pytest.raises(TypeError, match="SentencePiece .model path or a list"):
        PegasusTokenizer({"a": 0})
    marian = folders["marian"]
    built = MarianTokenizer(marian / "source.spm", marian / "target.spm", marian / "vocab.json")
    assert (
        built(TEXTS, text_target=TEXTS)["labels"]
        == Tokenizer.from_pretrained(marian)(TEXTS, text_target=TEXTS)["labels"]
    )


def test_pegasus_layout(folders: dict[str, Path]) -> None:
    tok = Tokenizer.from_pretrained(folders["pegasus"])
    ids = tok.convert_tokens_to_ids(
        ["<pad>", "</s>", "<mask_1>", "<mask_2>", "<unk_2>", "<unk_102>", "<unk>"]
    )
    assert ids == [0, 1, 2, 3, 4, 104, 105]
    assert tok.mask_token == "<mask_2>" and tok.mask_token_sent == "<mask_1>" and tok.offset == 103
    assert tok.extra_special_tokens == ["<mask_1>", *(f"<unk_{i}>" for i in range(2, 103))]


def test_mbart_language_codes(folders: dict[str, Path]) -> None:
    mbart = Tokenizer.from_pretrained(folders["mbart"])
    assert isinstance(mbart, MBartTokenizer) and mbart.src_lang == "en_XX" and mbart.tgt_lang == "ro_RO"
    en, ro, eos = mbart.lang_code_to_id["en_XX"], mbart.lang_code_to_id["ro_RO"], mbart.eos_token_id
    assert list(mbart.lang_code_to_id) == transformers.models.mbart.tokenization_mbart.FAIRSEQ_LANGUAGE_CODES
    assert min(mbart.lang_code_to_id.values()) == mbart.vocab_size - 26  # after the pieces, before <mask>
    assert mbart.convert_tokens_to_ids("<mask>") == mbart.vocab_size - 1
    encoded = mbart("hello world", text_target="hallo Welt")
    assert encoded["input_ids"][-2:] == [eos, en] and encoded["labels"][-2:] == [eos, ro]
    mbart.src_lang = "de_DE"
    assert mbart("hello")["input_ids"][-2:] == [eos, mbart.lang_code_to_id["de_DE"]]

    mbart50 = Tokenizer.from_pretrained(folders["mbart50"])
    assert isinstance(mbart50, MBart50Tokenizer) and len(mbart50.lang_code_to_id) == 52
    encoded = mbart50("hello world", text_target="hallo Welt")
    assert encoded["input_ids"][0] == mbart50.lang_code_to_id["de_DE"] and encoded["input_ids"][-1] == eos
    assert encoded["labels"][0] == mbart50.lang_code_to_id["pt_XX"]
    inputs = mbart50._build_translation_inputs(["hello"], None, "en_XX", "ro_RO")
    assert inputs["forced_bos_token_id"] == mbart50.lang_code_to_id["ro_RO"] and mbart50.src_lang == "en_XX"

    for tok in (mbart, mbart50):
        with pytest.raises(
            ValueError, match=r"src_lang='xx_YY' is not a language code .* known codes: ar_AR, cs_CZ"
        ):
            tok.src_lang = "xx_YY"
        with pytest.raises(ValueError, match=r"tgt_lang='english' is not a language code"):
            tok.tgt_lang = "english"
    with pytest.raises(ValueError, match=r"src_lang='en' is not a language code of this MBartTokenizer"):
        Tokenizer.from_pretrained(folders["mbart"], src_lang="en")


def test_mbart_switching_languages_matches_the_reference(folders: dict[str, Path], tmp_path: Path) -> None:
    for name in ("mbart", "mbart50"):
        hw, ref = Tokenizer.from_pretrained(folders[name]), _reference(folders[name])
        for source, target in (("fr_XX", "de_DE"), ("ja_XX", None), ("ro_RO", "en_XX")):
            hw.src_lang = ref.src_lang = source
            hw.tgt_lang = ref.tgt_lang = target
            assert_same(hw(TEXTS, text_target=TEXTS[::-1]), ref(TEXTS, text_target=TEXTS[::-1]))
            assert hw.tgt_lang == ref.tgt_lang  # unset, targets take the source language
        # The languages in use are saved.
        hw.save_pretrained(tmp_path / name)
        reloaded = Tokenizer.from_pretrained(tmp_path / name)
        assert (reloaded.src_lang, reloaded.tgt_lang) == ("ro_RO", "en_XX")


def test_bart_mask_takes_the_space_before_it(folders: dict[str, Path]) -> None:
    tok, ref = Tokenizer.from_pretrained(folders["bart"]), _reference(folders["bart"])
    assert tok("a <mask> b")["input_ids"] == ref("a <mask> b")["input_ids"]
    assert tok("a <mask> b")["input_ids"][0] == tok.bos_token_id == 0
    assert_same(tok("one", "two"), ref("one", "two"))  # <s> A </s></s> B </s>
    assert tok.convert_ids_to_tokens(tok("one", "two")["input_ids"]).count("</s>") == 3


def test_marian_sides_and_languages(folders: dict[str, Path]) -> None:
    tok = Tokenizer.from_pretrained(folders["marian"])
    ref = _reference(folders["marian"])
    assert tok.supported_language_codes == ref.supported_language_codes == [">>fr<<", ">>de<<"]
    assert tok(">>fr<< hello")["input_ids"][0] == tok.convert_tokens_to_ids(">>fr<<") == 2
    # The two sides cut the same word differently.
    word = "Übersetzung"
    assert tok.tokenize(word) != tok(text_target=word)["input_ids"]
    with tok.as_target_tokenizer():
        assert tok(word)["input_ids"] == ref(text_target=word)["input_ids"]
    for use_source in (True, False):
        ids = ref(TEXTS)["input_ids"] + ref(text_target=TEXTS)["input_ids"]
        options = {"use_source_tokenizer": use_source, "skip_special_tokens": True}
        assert tok.batch_decode(ids, **options) == ref.batch_decode(ids, **options)
    separate = Tokenizer.from_pretrained(folders["marian-separate-vocabs"])
    assert separate.separate_vocabs and separate.supported_language_codes == []
    assert separate.get_tgt_vocab() != separate.get_src_vocab()


def test_marian_saves_its_vocabulary_files(folders: dict[str, Path], tmp_path: Path) -> None:
    for name, extra in (("marian", set()), ("marian-separate-vocabs", {"target_vocab.json"})):
        tok = Tokenizer.from_pretrained(folders[name])
        written = {Path(path).name for path in tok.save_pretrained(tmp_path / name)}
        expected = {
            "tokenizer_config.json",
            "special_tokens_map.json",
            "source.spm",
            "target.spm",
            "vocab.json",
        }
        assert written == expected | extra == {path.name for path in (tmp_path / name).iterdir()}
        for file in ("source.spm", "target.spm", "vocab.json", *extra):
            original, saved = folders[name] / file, tmp_path / name / file
            if file.endswith(".json"):
                assert json.loads(saved.read_text()) == json.loads(original.read_text())
            else:
                assert saved.read_bytes() == original.read_bytes()


def test_marian_errors(folders: dict[str, Path], tmp_path: Path) -> None:
    marian = folders["marian"]
    with pytest.raises(ValueError, match="needs source_spm, target_spm and vocab"):
        MarianTokenizer()
    vocab = json.loads((marian / "vocab.json").read_text())
    del vocab["<unk>"]
    _write_json(tmp_path / "vocab.json", {token: index for index, token in enumerate(vocab)})
    with pytest.raises(ValueError, match="unknown token '<unk>' is not in the Marian vocabulary"):
        MarianTokenizer(marian / "source.spm", marian / "target.spm", tmp_path / "vocab.json")
    with pytest.raises(ValueError, match=r"separate_vocabs=True needs target_vocab_file"):
        MarianTokenizer(
            marian / "source.spm", marian / "target.spm", marian / "vocab.json", separate_vocabs=True
        )
    broken = tmp_path / "broken"
    shutil.copytree(marian, broken)
    (broken / "target.spm").unlink()
    with pytest.raises(FileNotFoundError, match="Marian checkpoint without target.spm"):
        Tokenizer.from_pretrained(broken)


@pytest.mark.parametrize("cls", [BertTokenizer, GPT2Tokenizer])
def test_every_tokenizer_has_as_target_tokenizer(cls: type[Tokenizer], minilm_path: Path) -> None:
    """For families without target handling the v4 context manager changes nothing."""
    if cls is BertTokenizer:
        tok = cls.from_pretrained(minilm_path)
    else:
        vocab, merges = _bart_files()
        tok = cls(json.loads(vocab), [line.split() for line in merges.splitlines()[1:] if line])
    expected = tok(TEXTS)
    with tok.as_target_tokenizer():
        assert tok(TEXTS) == expected
    assert tok(TEXTS) == expected and tok(TEXTS, text_target=TEXTS)["labels"] == expected["input_ids"]


# ---------------------------------------------------------------------------------------------
# as_target_tokenizer() against transformers 4.57 (5.23 removed it)
# ---------------------------------------------------------------------------------------------

FIXTURES = Path(__file__).parents[1] / "fixtures" / "seq2seq_tokenizers"


@pytest.mark.parametrize("name", ["marian", "mbart", "mbart50"])
def test_as_target_tokenizer_matches_transformers_4(name: str) -> None:
    """Golden outputs of 4.57 (tests/fixtures/record_seq2seq_tokenizer_golden.py) on checkpoints kept there."""
    golden = json.loads((FIXTURES / "golden_v4.json").read_text(encoding="utf-8"))
    options = {"marian": {}, "mbart": {"src_lang": "en_XX", "tgt_lang": "ro_RO"}}
    tok = Tokenizer.from_pretrained(
        FIXTURES / name, **options.get(name, {"src_lang": "de_DE", "tgt_lang": "fr_XX"})
    )
    expected = golden[name]
    assert type(tok).__name__ == expected["class"].removesuffix("Fast")
    with tok.as_target_tokenizer():
        assert tok(golden["targets"])["input_ids"] == expected["inside"]
        # 4.57 switches back to input mode after the first call of a block (its __call__ always ends in
        # input mode); headway keeps the whole block in target mode, as the context manager promises.
        padded = tok(golden["targets"], padding=True, return_tensors="np")["input_ids"]
        assert padded.tolist() == expected["inside_padded"]
    assert tok(golden["inputs"])["input_ids"] == expected["after"]
    assert tok(golden["inputs"], text_target=golden["targets"])["labels"] == expected["text_target"]
