"""Streamers: text handed out while ``generate`` runs, one step at a time.

``generate(..., streamer=s)`` calls ``s.put(prompt_ids)`` once, then ``s.put(new_ids)`` after each step
and ``s.end()`` at the end. ``TextStreamer`` prints whole words as they complete; ``TextIteratorStreamer``
puts them on a queue that another thread iterates. Printing is this module's job (like the CLI), so it
prints rather than logs.
"""

from __future__ import annotations

from queue import Queue
from typing import Any

import torch


class BaseStreamer:
    """What ``generate`` calls: ``put(token_ids)`` for the prompt and each new step, ``end()`` once."""

    def put(self, value: torch.Tensor) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement put(value)")

    def end(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement end()")


def _is_cjk(char: str) -> bool:
    """Whether ``char`` is a CJK ideograph: those are whole words, printed at once."""
    cp = ord(char)
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


class TextStreamer(BaseStreamer):
    """Print generated text as it comes, a word at a time.

    Tokens are decoded together since the last line break (decoding tokens one by one would lose the
    spaces and split multi-byte characters). Text is released up to the last space, at once after a line
    break or a CJK character, and the rest when ``end()`` is called.

    Args:
        tokenizer: decodes the token ids.
        skip_prompt: do not print the prompt (the first ``put``).
        **decode_kwargs: passed to ``tokenizer.decode`` (``skip_special_tokens=True``, say).

    Raises:
        ValueError: ``put`` gets a batch of more than one sequence.
    """

    def __init__(self, tokenizer: Any, skip_prompt: bool = False, **decode_kwargs: Any) -> None:
        self.tokenizer = tokenizer
        self.skip_prompt = skip_prompt
        self.decode_kwargs = decode_kwargs
        self.token_cache: list[int] = []  # ids since the last line break
        self.print_len = 0  # characters of their text already released
        self.next_tokens_are_prompt = True

    def put(self, value: torch.Tensor) -> None:
        if value.dim() > 1:
            if value.shape[0] > 1:
                raise ValueError(
                    f"{type(self).__name__} streams one sequence, got a batch of {value.shape[0]}"
                )
            value = value[0]
        if self.skip_prompt and self.next_tokens_are_prompt:
            self.next_tokens_are_prompt = False
            return
        self.token_cache.extend(value.tolist())
        text = self.tokenizer.decode(self.token_cache, **self.decode_kwargs)
        if text.endswith("\n"):  # a finished line: release it and start afresh
            printable = text[self.print_len :]
            self.token_cache = []
            self.print_len = 0
        elif text and _is_cjk(text[-1]):
            printable = text[self.print_len :]
            self.print_len += len(printable)
        else:  # hold back the word being written
            printable = text[self.print_len : text.rfind(" ") + 1]
            self.print_len += len(printable)
        self.on_finalized_text(printable)

    def end(self) -> None:
        """Release what is held back and close the stream."""
        printable = ""
        if self.token_cache:
            text = self.tokenizer.decode(self.token_cache, **self.decode_kwargs)
            printable = text[self.print_len :]
        self.token_cache = []
        self.print_len = 0
        self.next_tokens_are_prompt = True
        self.on_finalized_text(printable, stream_end=True)

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        """Hand out released text (here: print it; a line break closes the stream)."""
        print(text, flush=True, end=None if stream_end else "")


class TextIteratorStreamer(TextStreamer):
    """Like ``TextStreamer`` but the text goes on a queue: run ``generate`` in a thread and iterate this
    object in another to get the pieces of text as they are released.

    Args:
        tokenizer: decodes the token ids.
        skip_prompt: do not hand out the prompt.
        timeout: seconds to wait for the next piece before ``queue.Empty`` is raised (None: forever).
        **decode_kwargs: passed to ``tokenizer.decode``.
    """

    def __init__(
        self, tokenizer: Any, skip_prompt: bool = False, timeout: float | None = None, **decode_kwargs: Any
    ):
        super().__init__(tokenizer, skip_prompt, **decode_kwargs)
        self.text_queue: Queue[str | None] = Queue()
        self.stop_signal = None
        self.timeout = timeout

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        self.text_queue.put(text, timeout=self.timeout)
        if stream_end:
            self.text_queue.put(self.stop_signal, timeout=self.timeout)

    def __iter__(self) -> TextIteratorStreamer:
        return self

    def __next__(self) -> str:
        value = self.text_queue.get(timeout=self.timeout)
        if value is self.stop_signal:
            raise StopIteration
        return value


__all__ = ["BaseStreamer", "TextIteratorStreamer", "TextStreamer"]
