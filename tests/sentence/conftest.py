"""Shared fixtures: the real all-MiniLM-L6-v2 in headway and in sentence-transformers, and folder builders."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
# Short, long, accented, emoji, CJK and over-long (truncated) texts, in no particular length order.
SENTENCES = [
    "A man is eating food.",
    "The new movie is awesome, a must-see! " * 3,
    "héllo wörld 東京 🤖",
    "short",
    "A man is eating a piece of bread.",
    "word " * 300,
    "Another sentence about cats and dogs playing in the yard with a ball.",
    "",
    "I love machine learning",
    "I am expert in AI",
]


@pytest.fixture(scope="session")
def st():
    """The sentence_transformers package (the reference)."""
    import sentence_transformers
    return sentence_transformers


@pytest.fixture(scope="session")
def ours():
    import headway

    return headway.SentenceTransformer(MODEL_ID, device="cpu")


@pytest.fixture(scope="session")
def ref(st, minilm_path):
    return st.SentenceTransformer(str(minilm_path), device="cpu")


def link_folder(source: Path, target: Path, *, skip: tuple[str, ...] = ()) -> Path:
    """A copy of a model folder made of symlinks (cheap), without the names in ``skip``.

    Module folders are copied (they are small): a module folder that is a symlink out of the model is
    refused on load.
    """
    target.mkdir(parents=True, exist_ok=True)
    for item in Path(source).iterdir():
        if item.name in skip:
            continue
        if item.is_dir():
            shutil.copytree(item, target / item.name)
        else:
            os.symlink(item, target / item.name)
    return target


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
