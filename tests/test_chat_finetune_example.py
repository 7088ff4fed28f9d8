"""examples/chat_finetune.py: the prompt masking, and a reduced run on the real SmolLM2 GGUF (2 steps)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def example():
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        yield importlib.import_module("chat_finetune")
    finally:
        sys.path.remove(str(ROOT / "examples"))


def test_reduced_run(example):
    """Only the assistant's reply is labelled; a couple of steps lower the loss and the model still replies."""
    from headway import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(example.REPO, gguf_file=example.GGUF_FILE)
    question, answer = example.CHATS[0]
    chat = example.encode_chat(tokenizer, question, answer)
    learned = [t for t, label in zip(chat["input_ids"], chat["labels"]) if label != -100]
    assert chat["labels"][: len(chat["labels"]) - len(learned)] == [-100] * (
        len(chat["labels"]) - len(learned)
    )
    assert tokenizer.decode(learned).startswith(answer + "<|im_end|>")
    assert question in tokenizer.decode(
        [t for t, label in zip(chat["input_ids"], chat["labels"]) if label == -100]
    )

    result = example.main(["--steps", "2", "--max-examples", "4", "--max-new-tokens", "8"])
    assert len(result["losses"]) == 2
    assert result["losses"][1] < result["losses"][0]
    assert isinstance(result["reply"], str) and result["reply"]
