"""`headway chat`: a streamed reply to --prompt or to standard input, and a conversation kept across turns.

Replies are compared with the text-generation pipeline's on the same messages (greedy: --temperature 0).
"""

from __future__ import annotations

import builtins
import io
import json
import shutil
import sys

import pytest

import headway
from headway import cli
from tests.pipelines.test_text_generation import SMOLLM2, folders  # noqa: F401 (a fixture)

GREEDY = {"do_sample": False, "max_new_tokens": 5}


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(scope="module")
def pipe(folders):  # noqa: F811
    return headway.pipeline("text-generation", model=str(folders["llama"]), device="cpu")


def _reply(pipe, messages):
    return pipe(messages, return_full_text=False, **GREEDY)[0]["generated_text"]


def _chat(capsys, *argv: str) -> tuple[int, str, str]:
    status = cli.main(["chat", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_prompt_and_system(folders, pipe, capsys):  # noqa: F811
    model = str(folders["llama"])
    status, out, _ = _chat(
        capsys, "-m", model, "--prompt", "Hi there", "--temperature", "0", "--max-new-tokens", "5"
    )
    assert status == 0
    assert out == _reply(pipe, [{"role": "user", "content": "Hi there"}]) + "\n"
    status, out, _ = _chat(
        capsys,
        "-m",
        model,
        "--prompt",
        "Hi",
        "--system",
        "Be brief.",
        "--temperature",
        "0",
        "--max-new-tokens",
        "5",
    )
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert status == 0 and out == _reply(pipe, messages) + "\n"


def test_standard_input_is_one_message(folders, pipe, capsys, monkeypatch):  # noqa: F811
    monkeypatch.setattr(sys, "stdin", io.StringIO("first line\nsecond line\n"))
    status, out, _ = _chat(capsys, "-m", str(folders["llama"]), "--temperature", "0", "--max-new-tokens", "5")
    assert status == 0
    assert out == _reply(pipe, [{"role": "user", "content": "first line\nsecond line"}]) + "\n"


def test_interactive_keeps_the_conversation(folders, pipe, capsys, monkeypatch):  # noqa: F811
    monkeypatch.setattr(sys, "stdin", _Terminal())
    lines = iter(["Hello", "And then?", "exit", "never read"])
    monkeypatch.setattr(builtins, "input", lambda prompt="": next(lines))
    status, out, err = _chat(
        capsys, "-m", str(folders["llama"]), "--temperature", "0", "--max-new-tokens", "5"
    )
    assert status == 0 and "Ctrl-D" in err
    first = _reply(pipe, [{"role": "user", "content": "Hello"}])
    conversation = [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": first},
        {"role": "user", "content": "And then?"},
    ]
    assert out == first + "\n" + _reply(pipe, conversation) + "\n"
    assert next(lines) == "never read", "exit ends the session"


def test_ctrl_d_ends(folders, capsys, monkeypatch):  # noqa: F811
    monkeypatch.setattr(sys, "stdin", _Terminal())

    def eof(prompt: str = "") -> str:
        raise EOFError

    monkeypatch.setattr(builtins, "input", eof)
    status, out, _ = _chat(capsys, "-m", str(folders["llama"]))
    assert status == 0 and out == ""


def test_errors(folders, capsys, tmp_path, monkeypatch):  # noqa: F811
    model = str(folders["llama"])
    status, _, err = _chat(capsys, "-m", model, "--prompt", "Hi", "--temperature", "-1")
    assert status == 2 and "--temperature must be 0 (greedy) or more" in err
    status, _, err = _chat(capsys, "-m", model, "--prompt", "   ")
    assert status == 2 and "the prompt is empty" in err
    plain = tmp_path / "plain"
    shutil.copytree(model, plain)
    config = json.loads((plain / "tokenizer_config.json").read_text())
    del config["chat_template"]
    (plain / "tokenizer_config.json").write_text(json.dumps(config))
    status, _, err = _chat(capsys, "-m", str(plain), "--prompt", "Hi")
    assert status == 2 and "has no chat template" in err


def test_smollm2_names_paris(capsys):
    repo, gguf_file = SMOLLM2
    status, out, _ = _chat(
        capsys,
        "-m",
        repo,
        "--gguf-file",
        gguf_file,
        "--prompt",
        "What is the capital of France?",
        "--temperature",
        "0",
        "--max-new-tokens",
        "20",
    )
    assert status == 0 and "Paris" in out
