"""Tokenizer inputs that used to crash the process or end in a bare error (issue #11, hardening).

Huge padding lengths made the tokenizers library abort the whole Python process (SIGABRT on a failed
allocation); the ``(batch_index, index)`` form of the alignment methods used on one example ended in
``IndexError: list index out of range``. Each case now raises an error that names the value and the fix.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest

from headway.tokenization import Tokenizer
from headway.tokenization.call import MAX_PADDED_LENGTH, MAX_TRUNCATION_LENGTH


@pytest.fixture(scope="module")
def bert(minilm_path) -> Tokenizer:
    return Tokenizer.from_pretrained(minilm_path)


# ---------------------------------------------------------------------------------------------
# Lengths that reach the tokenizers library


def test_huge_padding_lengths_do_not_abort_the_process(minilm_path) -> None:
    """Run first in a child process: before the fix these calls killed the interpreter with SIGABRT."""
    script = textwrap.dedent(
        f"""
        from headway.tokenization import Tokenizer
        tok = Tokenizer.from_pretrained({str(minilm_path)!r})
        for kwargs in (
            dict(max_length=10**12, padding="max_length"),
            dict(padding=True, pad_to_multiple_of=10**12),
            dict(max_length=2**31 - 1, padding="max_length"),
        ):
            try:
                tok("a", **kwargs)
            except ValueError as err:
                print("ValueError", err)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.count("ValueError") == 3, done.stdout


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_length": 10**12, "padding": "max_length"}, "max_length=1000000000000 is too large to pad to"),
        ({"padding": True, "pad_to_multiple_of": 10**12}, "pad_to_multiple_of=1000000000000 is too large"),
        ({"max_length": 2**31 - 1, "padding": "max_length"}, "max_length=2147483647 is too large to pad to"),
        ({"max_length": 2**64, "truncation": True}, "max_length=18446744073709551616 is above"),
        ({"max_length": -1, "truncation": True}, "max_length must be a non-negative int, got -1"),
        ({"max_length": -1, "padding": "max_length"}, "max_length must be a non-negative int, got -1"),
        (
            {"padding": True, "pad_to_multiple_of": -8},
            "pad_to_multiple_of must be a non-negative int, got -8",
        ),
        ({"stride": -1, "max_length": 8, "truncation": True}, "stride must be a non-negative int, got -1"),
        (
            {"text_target": "b", "max_target_length": 10**9, "padding": "max_length", "max_length": 8},
            "max_target_length=1000000000 is too large to pad to",
        ),
    ],
)
def test_out_of_range_lengths_are_value_errors(bert: Tokenizer, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)) as info:
        bert("a", **kwargs)
    if "too large" in message:
        assert str(MAX_PADDED_LENGTH) in str(info.value)
    if "is above" in message:
        assert str(MAX_TRUNCATION_LENGTH) in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_length": 8.0, "truncation": True}, "max_length must be an int or None, got float 8.0"),
        ({"max_length": "8", "truncation": True}, "max_length must be an int or None, got str '8'"),
        (
            {"padding": True, "pad_to_multiple_of": 2.5},
            "pad_to_multiple_of must be an int or None, got float",
        ),
        (
            {"padding": True, "pad_to_multiple_of": True},
            "pad_to_multiple_of must be an int or None, got bool",
        ),
    ],
)
def test_non_int_lengths_are_type_errors(bert: Tokenizer, kwargs: dict, message: str) -> None:
    with pytest.raises(TypeError, match="^" + re.escape(message)):
        bert("a", **kwargs)


def test_model_max_length_too_large_to_pad_to_is_named(minilm_path) -> None:
    tok = Tokenizer.from_pretrained(minilm_path)
    tok.model_max_length = 10**12
    with pytest.raises(
        ValueError, match=r"max_length=1000000000000 \(tokenizer.model_max_length\) is too large"
    ):
        tok("a", padding="max_length")


def test_lengths_within_bounds_still_work(bert: Tokenizer) -> None:
    # Truncation to a huge length is harmless (nothing is allocated): it stays allowed, as in the reference.
    assert bert("a b", max_length=10**12, truncation=True)["input_ids"] == bert("a b")["input_ids"]
    assert len(bert("a", max_length=1000, padding="max_length")["input_ids"]) == 1000
    # pad_to_multiple_of=0 means no rounding, in __call__ (as the tokenizers library does) and in pad().
    assert bert("a", padding=True, pad_to_multiple_of=0)["input_ids"] == bert("a")["input_ids"]
    assert (
        len(bert("a", padding="max_length", truncation=True, max_length=8, pad_to_multiple_of=0).input_ids)
        == 8
    )
    assert bert.pad({"input_ids": [[1, 2, 3]]}, pad_to_multiple_of=0)["input_ids"] == [[1, 2, 3]]
    assert bert.pad({"input_ids": [[1, 2, 3]]}, pad_to_multiple_of=4)["input_ids"] == [[1, 2, 3, 0]]


def test_pad_bounds_its_lengths(bert: Tokenizer) -> None:
    with pytest.raises(ValueError, match="^pad_to_multiple_of=1000000000000 is too large to pad to"):
        bert.pad({"input_ids": [[1, 2, 3]]}, pad_to_multiple_of=10**12)
    with pytest.raises(ValueError, match="^max_length=1000000000000 is too large to pad to"):
        bert.pad({"input_ids": [[1, 2, 3]]}, padding="max_length", max_length=10**12)
    with pytest.raises(ValueError, match="^max_length must be a non-negative int, got -2"):
        bert.pad({"input_ids": [[1, 2, 3]]}, padding="max_length", max_length=-2)


# ---------------------------------------------------------------------------------------------
# Batch indices of the alignment methods


def test_char_to_token_batch_index_on_one_example_names_the_likely_call(bert: Tokenizer) -> None:
    """The QA preprocessing slip: char_to_token(1, start) on one (question, context) pair."""
    inputs = bert("what is it?", "a context here")
    with pytest.raises(ValueError) as info:
        inputs.char_to_token(1, 3)
    message = str(info.value)
    assert message.startswith(
        "char_to_token(1, 3): this BatchEncoding holds one encoded input (batch size 1)"
    )
    assert "call char_to_token(3, sequence_index=1)" in message
    assert isinstance(info.value, IndexError)  # still the reference's exception type
    # The call it suggests is the one that works: character 3 of the context.
    assert inputs.char_to_token(3, sequence_index=1) == inputs.char_to_token(0, 3, sequence_index=1)


@pytest.mark.parametrize(
    ("method", "hint"),
    [
        ("char_to_word", "call char_to_word(2, sequence_index=1)"),
        ("word_to_tokens", "call word_to_tokens(2, sequence_index=1)"),
        ("word_to_chars", "call word_to_chars(2, sequence_index=1)"),
        ("token_to_chars", "For item 0, call token_to_chars(2)."),
        ("token_to_word", "For item 0, call token_to_word(2)."),
        ("token_to_sequence", "For item 0, call token_to_sequence(2)."),
    ],
)
def test_two_argument_form_on_one_example(bert: Tokenizer, method: str, hint: str) -> None:
    inputs = bert("what is it?", "a context here")
    with pytest.raises(ValueError) as info:
        getattr(inputs, method)(1, 2)
    assert str(info.value).startswith(f"{method}(1, 2): this BatchEncoding holds one encoded input")
    assert hint in str(info.value)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda b: b.word_ids(2),
            "word_ids(2): batch index 2 is out of range for this BatchEncoding of batch size 2",
        ),
        (lambda b: b.sequence_ids(-3), "sequence_ids(-3): batch index -3 is out of range"),
        (lambda b: b.tokens(5), "tokens(5): batch index 5 is out of range"),
        (lambda b: b.char_to_token(2, 0), "char_to_token(2, 0): batch index 2 is out of range"),
        (lambda b: b.token_to_chars(7, 1), "token_to_chars(7, 1): batch index 7 is out of range"),
        (lambda b: b[3], "BatchEncoding[3]: batch index 3 is out of range"),
    ],
)
def test_batch_index_out_of_range_names_index_and_size(bert: Tokenizer, call, message: str) -> None:
    batch = bert(["a b", "c"])
    with pytest.raises(IndexError) as info:
        call(batch)
    assert str(info.value).startswith(message)
    assert "valid: 0 to 1, or -2 to -1" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_batch_indices_in_range_still_work(bert: Tokenizer) -> None:
    batch = bert(["a b", "c"])
    assert batch.word_ids(-1) == batch.word_ids(1) == [None, 0, None]
    assert batch[-1].ids == batch["input_ids"][1]
    assert batch.token_to_chars(0, 1) == (0, 1)
    with pytest.raises(TypeError, match=r"^tokens\(\): batch_index must be an int, got str"):
        batch.tokens("0")
