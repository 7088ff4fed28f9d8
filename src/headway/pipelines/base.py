"""The Pipeline: three visible steps, batching, and the input checks every task shares.

One call flows like this::

    inputs ─ preprocess ─▶ features: token rows, one or more per input (one tokenizer call per window)
           ─ _collate ──▶ padded tensors; rows are grouped by length so a batch pads little
           ─ _forward ──▶ model outputs, under torch.inference_mode (no gradients)
           ─ postprocess ▶ one result per row, vectorised over the batch
           ─ _combine ──▶ one result per input (rows of a long input merged), in input order

A task subclass writes ``_sanitize_parameters`` (which keyword goes to which step), ``_check_input``,
``preprocess``, ``_forward`` and ``postprocess``; tasks that split one input into several rows (long texts,
question-answering, zero-shot) also write ``_combine``.

Inputs are read in windows: a list (or any sized collection) ``batch_size * 64`` items at a time, so rows
of similar length from the whole window share a batch; a generator ``batch_size`` items at a time, so its
results come out as its inputs come in.
"""

from __future__ import annotations

import itertools
import logging
import types
from collections.abc import Iterable, Iterator, Sized
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

logger = logging.getLogger(__name__)

# Inputs read per window for a sized input, in batches: rows are sorted by length inside a window.
GROUP_WINDOW_BATCHES = 64
# A progress bar is shown by default when a call has more inputs than this.
PROGRESS_BAR_MIN_INPUTS = 256
_LARGE = int(1e20)  # a tokenizer's model_max_length above this means "no limit"


@dataclass
class Feature:
    """One model row: token ids plus what postprocess needs to read the row's outputs.

    Attributes:
        input_ids: Token ids, unpadded.
        token_type_ids: Segment ids (None when the model takes none).
        encoding: The tokenizer's alignment object (offsets, word and sequence ids), if kept.
        meta: Task data (the text, a candidate label, a mask of answer tokens, ...).
    """

    input_ids: list[int]
    token_type_ids: list[int] | None = None
    encoding: Any = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.input_ids)


def describe(value: Any) -> str:
    """A short description of a bad input for error messages: its type and a clipped repr."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def check_text(value: Any, what: str = "input") -> str:
    """Return ``value`` if it is a non-empty string.

    Raises:
        TypeError: ``value`` is not a str.
        ValueError: ``value`` is empty or only whitespace.
    """
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {describe(value)}")
    if not value.strip():
        raise ValueError(f"{what} is an empty string ({value!r}); expected some text")
    return value


def _is_stream(inputs: Any) -> bool:
    """Generators, iterators and datasets (KeyDataset, a ``datasets`` column, a torch Dataset)."""
    if isinstance(inputs, (str, bytes, dict, list, tuple)):
        return False
    if isinstance(inputs, (types.GeneratorType, Iterator)):
        return True
    return hasattr(inputs, "__len__") and hasattr(inputs, "__getitem__")


class Pipeline:
    """Base class of every task pipeline: ``pipe(inputs, **params)`` returns the task's results.

    Args:
        model: A loaded headway model (with the head the task needs).
        tokenizer: The model's tokenizer.
        task: The task name (for messages).
        device: Where the model runs: None (a GPU if there is one, as the reference), -1 or "cpu",
            a GPU index, a string such as "cuda:1", or a ``torch.device``.
        batch_size: Rows per forward pass (default 1; a call's ``batch_size=`` overrides it).
        progress_bar: True or False to force the tqdm bar on or off; None shows it above 256 inputs.
        **kwargs: Default task parameters (``top_k=3``, ...), overridable in each call.
    """

    default_task: ClassVar[str] = ""
    # Suffix of the model class names the task works with ("ForSequenceClassification"); "" accepts any.
    model_kind: ClassVar[str] = ""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        task: str = "",
        device: int | str | torch.device | None = None,
        batch_size: int | None = None,
        progress_bar: bool | None = None,
        **kwargs: Any,
    ) -> None:
        if tokenizer is None:
            raise ValueError(f"The {task or self.default_task} pipeline needs a tokenizer; pass tokenizer=...")
        name = type(model).__name__
        if self.model_kind and not name.endswith(self.model_kind):
            raise ValueError(
                f"The {task or self.default_task} pipeline needs a model with a *{self.model_kind} head, "
                f"got {name}. Load one with the matching Auto class or let pipeline() load it from a checkpoint."
            )
        kwargs.pop("dtype", None), kwargs.pop("torch_dtype", None)  # consumed by pipeline() when loading
        self.task = task or self.default_task
        self.model = model
        self.tokenizer = tokenizer
        self.device = _choose_device(device, model)
        if self.model.device != self.device:
            self.model.to(self.device)
        self.model.eval()
        self.batch_size = _check_batch_size(batch_size if batch_size is not None else 1)
        self.progress_bar = progress_bar
        self._num_workers = kwargs.pop("num_workers", None)  # accepted for compatibility, not used
        self._defaults = self._sanitize_parameters(**kwargs)
        self._window: tuple[int, bool] = (0, False)  # (index of the window's first input, single-input call)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(task={self.task!r}, model={type(self.model).__name__}, "
            f"device={self.device}, batch_size={self.batch_size})"
        )

    # -- what a task writes ---------------------------------------------------------------------------
    def _sanitize_parameters(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """Split call keywords into (preprocess, forward, postprocess) parameters; unknown ones raise."""
        if kwargs:
            raise TypeError(f"{self.task} got unexpected keyword arguments {sorted(kwargs)}")
        return {}, {}, {}

    def _check_input(self, item: Any, index: int | None = None) -> Any:
        """Validate (and normalise) one input; the default takes non-empty strings."""
        return check_text(item, self._what(index))

    def preprocess(self, inputs: list[Any], **params: Any) -> list[list[Feature]]:
        """Tokenize a window of inputs (one tokenizer call); each input gives one or more rows."""
        raise NotImplementedError

    def _forward(self, model_inputs: dict[str, torch.Tensor], **params: Any) -> dict[str, torch.Tensor]:
        """Run the model on one padded batch; returns the output tensors postprocess needs."""
        raise NotImplementedError

    def postprocess(self, outputs: dict[str, torch.Tensor], features: list[Feature], **params: Any) -> list[Any]:
        """Turn one batch of outputs (on the CPU) into one result per row."""
        raise NotImplementedError

    def _combine(self, rows: list[Any], **params: Any) -> Any:
        """Merge the results of the rows of one input; most inputs have exactly one row."""
        return rows[0]

    # -- calling --------------------------------------------------------------------------------------
    def __call__(
        self,
        inputs: Any,
        *args: Any,
        batch_size: int | None = None,
        progress_bar: bool | None = None,
        **kwargs: Any,
    ) -> Any:
        """Run the pipeline on one input, a list (results in order), or a generator/dataset (lazily).

        Raises:
            TypeError: An input has the wrong type.
            ValueError: An input is empty or otherwise unusable, or the list is empty.
        """
        if args:
            raise TypeError(f"{self.task} takes the inputs as one argument; got {len(args)} more: {args!r}")
        kwargs.pop("num_workers", None)
        params = self._call_parameters(kwargs)
        batch_size = _check_batch_size(batch_size if batch_size is not None else self.batch_size)
        progress_bar = self.progress_bar if progress_bar is None else progress_bar
        if isinstance(inputs, (list, tuple)):
            if not inputs:
                raise ValueError(
                    f"{self.task} got an empty {type(inputs).__name__}; expected at least one input"
                )
            items = [self._check_input(item, index) for index, item in enumerate(inputs)]
            return list(self._iterate(items, len(items), batch_size, progress_bar, params))
        if _is_stream(inputs):
            size = len(inputs) if isinstance(inputs, Sized) else None
            checked = (self._check_input(item, index) for index, item in enumerate(inputs))
            return self._iterate(checked, size, batch_size, progress_bar, params)
        item = self._check_input(inputs)
        return next(self._iterate([item], None, 1, False, params, single=True))

    def _call_parameters(self, kwargs: dict[str, Any]) -> tuple[dict[str, Any], ...]:
        """This call's (preprocess, forward, postprocess) parameters over the pipeline's defaults."""
        call = self._sanitize_parameters(**kwargs)
        return tuple({**default, **given} for default, given in zip(self._defaults, call))

    def _what(self, index: int | None) -> str:
        """How messages name input ``index`` of a call (None: the call's only input)."""
        return f"{self.task} input" if index is None else f"{self.task} input [{index}]"

    def _window_name(self, index: int) -> str:
        """How messages name input ``index`` of the window being preprocessed."""
        start, single = self._window
        return self._what(None if single else start + index)

    def _iterate(
        self,
        items: Iterable[Any],
        size: int | None,
        batch_size: int,
        progress_bar: bool | None,
        params: tuple[dict[str, Any], ...],
        single: bool = False,
    ) -> Iterator[Any]:
        """Yield one result per input, in input order, reading the inputs window by window."""
        from tqdm.auto import tqdm

        show = progress_bar if progress_bar is not None else (size or 0) > PROGRESS_BAR_MIN_INPUTS
        window = batch_size * GROUP_WINDOW_BATCHES if size is not None else batch_size
        iterator, start = iter(items), 0
        with tqdm(total=size, disable=not show, desc=self.task, unit="input") as bar:
            while chunk := list(itertools.islice(iterator, window)):
                self._window = (start, single)
                yield from self._run_window(chunk, batch_size, params, bar)
                start += len(chunk)

    def _run_window(
        self, chunk: list[Any], batch_size: int, params: tuple[dict[str, Any], ...], bar: Any
    ) -> list[Any]:
        """The three steps over one window of inputs; rows are batched shortest first."""
        pre, fwd, post = params
        features = self.preprocess(chunk, **pre)
        rows = [(owner, feature) for owner, feats in enumerate(features) for feature in feats]
        order = sorted(range(len(rows)), key=lambda r: len(rows[r][1]))  # group by length
        results: list[Any] = [None] * len(rows)
        left = [len(feats) for feats in features]  # rows still to run, per input
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            batch_features = [rows[r][1] for r in batch]
            outputs = self.forward(self._collate(batch_features), **fwd)
            for r, result in zip(batch, self.postprocess(outputs, batch_features, **post)):
                results[r] = result
                left[rows[r][0]] -= 1
                bar.update(int(left[rows[r][0]] == 0))
        combined, position = [], 0
        for feats in features:
            combined.append(self._combine(results[position : position + len(feats)], **post))
            position += len(feats)
        return combined

    def forward(self, model_inputs: dict[str, torch.Tensor], **params: Any) -> dict[str, torch.Tensor]:
        """``_forward`` on the pipeline's device without gradients; outputs come back on the CPU."""
        with torch.inference_mode():
            model_inputs = {k: v.to(self.device) for k, v in model_inputs.items()}
            outputs = self._forward(model_inputs, **params)
        return {k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in outputs.items()}

    def _collate(self, features: list[Feature]) -> dict[str, torch.Tensor]:
        """Right-pad a batch of rows into tensors.

        Rows are always padded on the right: for the encoder models here (absolute positions) that is
        what makes a padded row give the same outputs as the row alone.
        """
        longest = max(len(f) for f in features)
        pad = self.tokenizer.pad_token_id
        if pad is None:
            if any(len(f) != longest for f in features):
                raise ValueError(
                    f"The tokenizer has no pad_token, so {self.task} cannot batch inputs of different lengths. "
                    "Set one (tokenizer.pad_token = tokenizer.eos_token) or use batch_size=1."
                )
            pad = 0
        ids = [f.input_ids + [pad] * (longest - len(f)) for f in features]
        mask = [[1] * len(f) + [0] * (longest - len(f)) for f in features]
        batch = {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask)}  # (B, T) each
        if features[0].token_type_ids is not None and "token_type_ids" in self.tokenizer.model_input_names:
            types_ = [f.token_type_ids + [0] * (longest - len(f)) for f in features]
            batch["token_type_ids"] = torch.tensor(types_)
        return batch

    # -- shared tokenization ----------------------------------------------------------------------------
    @property
    def max_length(self) -> int:
        """The most tokens one row may hold: the tokenizer's limit, capped by the model's positions."""
        limits = []
        if 0 < self.tokenizer.model_max_length < _LARGE:
            limits.append(int(self.tokenizer.model_max_length))
        positions = getattr(self.model.config, "max_input_length", None)  # the model's own limit
        if positions:
            limits.append(int(positions))
        return min(limits) if limits else _LARGE

    def tokenize(
        self,
        texts: list[str],
        pairs: list[str] | None = None,
        *,
        stride: int | None = None,
        truncation: bool | str = True,
        max_length: int | None = None,
        offsets: bool = False,
        hint: str = "",
        owners: list[int] | None = None,
        **tokenizer_kwargs: Any,
    ) -> list[list[Feature]]:
        """Tokenize a batch in one call; each text (or pair) gives its rows.

        Without ``stride`` a text longer than ``max_length`` is truncated (with a warning) and gives one
        row; with ``stride`` it is split into overlapping windows of ``max_length`` tokens that share
        ``stride`` tokens, one row each. With ``truncation=False`` a text that is too long is an error.
        ``owners`` maps each text to the input it comes from, for messages (default: the same index).

        Raises:
            ValueError: A row is longer than the model allows and truncation is off.
        """
        limit = max_length if max_length is not None else self.max_length
        encoded = self.tokenizer(
            texts,
            pairs,
            truncation=truncation if truncation else False,
            max_length=limit if truncation and limit < _LARGE else None,
            stride=stride or 0,
            return_overflowing_tokens=bool(truncation),
            return_offsets_mapping=offsets,
            return_special_tokens_mask=offsets,
            verbose=False,
            **tokenizer_kwargs,
        )
        owners = owners if owners is not None else list(range(len(texts)))
        rows: list[list[Feature]] = [[] for _ in texts]
        samples = encoded.get("overflow_to_sample_mapping", range(len(texts)))
        types_ = encoded.get("token_type_ids")
        for row, sample in enumerate(samples):
            ids = encoded["input_ids"][row]
            if len(ids) > self.max_length:
                raise ValueError(
                    f"{self._window_name(owners[sample])} is {len(ids)} tokens long, more than the {self.max_length} this model "
                    f"takes. Leave truncation on (the default) or shorten the text.{hint}"
                )
            rows[sample].append(Feature(ids, types_[row] if types_ is not None else None, encoded.encodings[row]))
        if not stride:
            truncated = sorted({owners[index] for index, feats in enumerate(rows) if len(feats) > 1})
            for owner in truncated:
                logger.warning(
                    "%s is longer than %d tokens, the most this model takes: it was truncated.%s",
                    self._window_name(owner), limit, hint,
                )
            for feats in rows:
                del feats[1:]
        return rows


def _check_batch_size(batch_size: Any) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    return batch_size


def _choose_device(device: int | str | torch.device | None, model: Any) -> torch.device:
    """The reference's rule: None picks the first GPU when there is one; -1 means the CPU."""
    if device is None:
        if model.device.type != "cpu":
            return model.device
        return torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu")
    if isinstance(device, torch.device):
        return device
    if isinstance(device, bool) or not isinstance(device, (int, str)):
        raise TypeError(f"device must be an int, a str or a torch.device, got {describe(device)}")
    if isinstance(device, int):
        if device < 0:
            return torch.device("cpu")
        if not torch.cuda.is_available():
            raise ValueError(f"device={device} asks for a GPU but CUDA is not available; use device='cpu'")
        return torch.device("cuda", device)
    try:
        return torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"Unknown device {device!r}: {err}") from None

