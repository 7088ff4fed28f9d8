"""Keyed dropout: masks that are a function of where an element sits in the global batch, not of a process.

With torch's dropout each process draws its masks from its own RNG, so N processes sharing a global
batch reach different weights than one process taking it whole. Under :func:`keyed_dropout` (the
Trainer sets it around each micro-batch) the mask of an element is instead a hash of

    (seed, step, the example's index in the global batch, the dropout call's place in the forward,
     the element's position inside its example)

so the same example gets the same mask whichever process holds it, whatever else shares its batch and
however far its batch is padded. Positions are counted from the start of each example: a sequence
dimension is recognised by its length (that of the batch's ``attention_mask``), and with left padding
each row's leading pad count is subtracted.

The hash is counter-based (no state): per-row keys are mixed on small tensors, then every element gets
``fmix32(row_key + position * odd)`` (MurmurHash3's finaliser, on int32 tensors that wrap), and is
dropped when that value falls in the lowest fraction ``p`` of the int32 range. It costs fewer passes
over memory than drawing a Bernoulli mask from the CPU generator.

Outside the context (inference, a user's own loop) nothing changes: :class:`headway.nn.layers.Dropout`
and :func:`headway.nn.attention.attention` use torch's RNG exactly as before.

Gradient checkpointing recomputes a layer's forward during the backward pass; the call counter must
then restart where that layer started. :func:`track_recomputation` puts a pre-hook on each block of
the model's ``nn.ModuleList`` s that records the counter in the forward and restores it when the block
runs again inside the backward.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

__all__ = [
    "DropoutKeys",
    "active_keys",
    "attention_dropout",
    "dropout",
    "keyed_dropout",
    "track_recomputation",
]

_MASK64 = (1 << 64) - 1
# MurmurHash3 fmix32 multipliers, and the odd steps between neighbouring positions, as signed int32.
_M1, _M2 = 0x85EBCA6B - (1 << 32), 0xC2B2AE35 - (1 << 32)
_STEP = 0x9E3779B9 - (1 << 32)  # between positions along the last dimension(s)
_ROW_STEP = 0x7FEB352D  # between (head, query) rows of attention probabilities
_HEAD_STRIDE = 1 << 16  # a head's queries are numbered head * 2**16 + query position
_SHARED = 0x5BD1E995  # the "example" of tensors with no batch dimension

_ACTIVE: contextvars.ContextVar[DropoutKeys | None] = contextvars.ContextVar(
    "headway_dropout_keys", default=None
)
_graph_task_id = getattr(torch._C, "_current_graph_task_id", None)
RECOMPUTATION_SUPPORTED = _graph_task_id is not None


def _mix64(*values: int) -> int:
    """A 64-bit hash of integers (splitmix64's finaliser after each one), in plain Python."""
    h = 0x243F6A8885A308D3
    for v in values:
        h = (h ^ (v & _MASK64)) * 0x9E3779B97F4A7C15 & _MASK64
        h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9 & _MASK64
        h = (h ^ (h >> 27)) * 0x94D049BB133111EB & _MASK64
        h ^= h >> 31
    return h


def _int32(v: int) -> int:
    """The low 32 bits of ``v`` as a signed int32 value."""
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def _fmix_(h: Tensor, *, final: bool = True) -> Tensor:
    """MurmurHash3's fmix32 on an int32 tensor, in place (``>>`` is arithmetic: mask to shift logically).

    Without ``final`` the last xor-shift, which only changes the low 16 bits, is left out: callers that
    compare the value against a threshold read it through its high bits.
    """
    tmp = torch.empty_like(h)
    for shift, mult in ((16, _M1), (13, _M2), (16, None)):
        if mult is None and not final:
            break
        torch.bitwise_right_shift(h, shift, out=tmp)
        h.bitwise_xor_(tmp.bitwise_and_((1 << (32 - shift)) - 1))
        if mult is not None:
            h.mul_(mult)
    return h


class DropoutKeys:
    """The keys of one micro-batch's forward and backward.

    Args:
        seed: the run's seed.
        step: the optimiser step this micro-batch belongs to.
        examples: (B,) each row's index in the step's global batch (int).
        offsets: (B,) each row's leading padding (left padding), or None when rows start at 0.
        seq_len: the padded sequence length of this batch (dimensions of that size are positions in
            a sequence, shifted by ``offsets``).
    """

    def __init__(
        self,
        seed: int,
        step: int,
        examples: Tensor | list[int],
        *,
        offsets: Tensor | None = None,
        seq_len: int | None = None,
    ) -> None:
        examples = torch.as_tensor(examples, dtype=torch.int64).reshape(-1)
        self.key = _mix64(seed, step)
        self.num_rows = examples.numel()
        self._example_keys = torch.tensor(
            [_int32(_mix64(self.key, e)) for e in examples.tolist()], dtype=torch.int32
        )
        self._offsets = None if offsets is None else offsets.to(torch.int32).reshape(-1).cpu()
        self.seq_len = seq_len
        self.calls = 0
        self._on_device: dict[torch.device, tuple[Tensor, Tensor | None]] = {}
        self._starts: dict[int, list[int]] = {}
        self._replay: dict[int, list[int]] = {}

    def _rows(self, device: torch.device) -> tuple[Tensor, Tensor | None]:
        if device not in self._on_device:
            offsets = None if self._offsets is None else self._offsets.to(device)
            self._on_device[device] = (self._example_keys.to(device), offsets)
        return self._on_device[device]

    def enter_block(self, block: int) -> None:
        """A block starts: remember the call counter, or restore it if the backward is recomputing it."""
        if _graph_task_id is not None and _graph_task_id() != -1:
            replay = self._replay.get(block)
            if not replay:  # backward recomputes the block's calls last first; start over if asked again
                replay = self._replay[block] = list(self._starts.get(block, ()))
            if replay:
                self.calls = replay.pop()
        else:
            self._starts.setdefault(block, []).append(self.calls)

    def _row_keys(
        self, rows: int, device: torch.device, shared: bool = False
    ) -> tuple[Tensor | int, Tensor | None]:
        """This call's key per row (rows,) and the rows' left-padding offsets; advances the counter.

        Dim 0 is the batch when it has ``num_rows`` rows, or a multiple (``k`` consecutive rows per
        example, as multiple-choice heads flatten them; no offsets then). Otherwise, or when ``shared``,
        the tensor has no batch dimension: one key (an int) for the whole batch, which every process
        draws alike.
        """
        if not self._starts and _graph_task_id is not None and _graph_task_id() != -1:
            raise RuntimeError(
                "keyed dropout ran inside the backward pass (gradient checkpointing recomputing a layer) but the "
                "model's blocks are not tracked: call headway.nn.dropout.track_recomputation(model) first, or "
                "the recomputed masks would differ from the forward's"
            )
        call = _mix64(self.key, self.calls, 1)
        self.calls += 1
        keys, offsets = self._rows(device)
        if shared:
            return _int32(_mix64(call, _SHARED)), None
        if rows == self.num_rows:
            return keys * _int32(call | 1) + _int32(call >> 32), offsets  # a bijection of the example keys
        if rows % self.num_rows == 0:
            per = rows // self.num_rows
            sub = torch.arange(rows, dtype=torch.int32, device=device) % per
            return _fmix_((keys * _int32(call | 1)).repeat_interleave(per) + sub * _ROW_STEP), None
        return _int32(_mix64(call, _SHARED)), None

    def hashes(self, shape: torch.Size, device: torch.device, *, shared: bool = False) -> Tensor:
        """Pseudo-random int32 values (``shape``) for one dropout call on (rows, ...) activations.

        Positions inside a row are numbered row-major, so only dim 1 may change size between batches
        (the sequence: (B, T, hidden) or (B, hidden)); with left padding dim 1 counts from each
        example's first token when it has the batch's sequence length and a dimension follows it.
        ``shared``: the tensor belongs to no example (a table used by the whole batch).
        """
        return self._row_major(*self._row_keys(shape[0], device, shared), shape, device)

    def _row_major(
        self, keys: Tensor | int, offsets: Tensor | None, shape: torch.Size, device: torch.device
    ) -> Tensor:
        if isinstance(keys, int):  # shared: the whole tensor is one row
            return _fmix_(_positions(math.prod(shape), device) + keys, final=False).view(shape)
        per_row = math.prod(shape[1:])
        if offsets is not None and len(shape) >= 3 and shape[1] == self.seq_len:
            keys = keys - offsets * _int32(
                per_row // shape[1] * _STEP
            )  # position (t - offset) * stride + rest
        return _fmix_(keys[:, None] + _positions(per_row, device), final=False).view(shape)

    def attention_hashes(self, shape: torch.Size, device: torch.device) -> Tensor:
        """Pseudo-random int32 values for attention probabilities (B, heads, T, S): both T and S are
        sequence positions, counted from each example's first token."""
        batch, heads, queries, keys_len = shape
        keys, offsets = self._row_keys(batch, device)
        if (
            isinstance(keys, int)
            or keys.numel() != batch
            or (offsets is not None and (queries, keys_len) != (self.seq_len, self.seq_len))
        ):
            return self._row_major(keys, None, shape, device)  # not this batch's self-attention: fixed layout
        head_query = torch.arange(heads, dtype=torch.int32, device=device)[:, None] * _HEAD_STRIDE
        head_query = head_query + torch.arange(queries, dtype=torch.int32, device=device)  # (heads, T)
        rows = keys.view(-1, 1, 1) + head_query * _ROW_STEP  # (B, heads, T)
        if offsets is not None:
            rows -= offsets.view(-1, 1, 1) * _ROW_STEP
        rows = _fmix_(rows)
        if offsets is not None:
            rows -= offsets.view(-1, 1, 1) * _STEP
        return _fmix_(rows.unsqueeze(-1) + _positions(keys_len, device), final=False)  # (B, heads, T, S)


_POSITIONS: dict[torch.device, Tensor] = {}


def _positions(n: int, device: torch.device) -> Tensor:
    """``arange(n) * _STEP`` (int32), a prefix of one cached tensor per device."""
    cached = _POSITIONS.get(device)
    if cached is None or cached.numel() < n:
        size = max(n, 2 * cached.numel() if cached is not None else 1 << 12)
        cached = _POSITIONS[device] = torch.arange(size, dtype=torch.int32, device=device) * _STEP
    return cached[:n]


@contextlib.contextmanager
def keyed_dropout(keys: DropoutKeys) -> Iterator[DropoutKeys]:
    """Make every dropout in this context (forward and backward) keyed by ``keys``: one context per
    micro-batch forward. With gradient checkpointing, :func:`track_recomputation` must hook the model."""
    token = _ACTIVE.set(keys)
    try:
        yield keys
    finally:
        _ACTIVE.reset(token)


def active_keys() -> DropoutKeys | None:
    """The keys set by :func:`keyed_dropout`, or None outside it."""
    return _ACTIVE.get()


def _threshold(p: float) -> int:
    """int32 values below this are dropped: a fraction ``p`` of the int32 range."""
    return -(1 << 31) + round(p * (1 << 32))


def _apply(x: Tensor, p: float, hashes: Tensor) -> Tensor:
    return x.masked_fill(hashes < _threshold(p), 0.0).mul_(1.0 / (1.0 - p))


def dropout(x: Tensor, p: float, keys: DropoutKeys, *, shared: bool = False) -> Tensor:
    """Keyed dropout of activations ``x`` (rows first; see :meth:`DropoutKeys.hashes`), scaled by 1/(1-p).

    ``shared``: ``x`` has no batch dimension (e.g. a relative-position table used by every example); its
    one mask is then the same in every process whatever the batch size.
    """
    if p <= 0.0:
        return x
    if p >= 1.0:
        keys.calls += 1
        return x * 0.0
    return _apply(x, p, keys.hashes(x.shape, x.device, shared=shared))


def attention_dropout(weights: Tensor, p: float, keys: DropoutKeys) -> Tensor:
    """Keyed dropout of attention probabilities (B, heads, T, S), scaled by 1/(1-p)."""
    if p <= 0.0:
        return weights
    if p >= 1.0:
        keys.calls += 1
        return weights * 0.0
    return _apply(weights, p, keys.attention_hashes(weights.shape, weights.device))


def _enter_block(module: nn.Module, args: tuple) -> None:
    keys = _ACTIVE.get()
    if keys is not None:
        keys.enter_block(id(module))


def track_recomputation(model: nn.Module) -> list[RemovableHandle]:
    """Pre-hooks on every block of ``model``'s ``nn.ModuleList`` s (the layers gradient checkpointing
    recomputes) so keyed masks come out the same when a block is recomputed; remove them when done."""
    return [
        block.register_forward_pre_hook(_enter_block)
        for module in model.modules()
        if isinstance(module, nn.ModuleList)
        for block in module
    ]
