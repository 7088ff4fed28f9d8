"""A Linear layer with a faster CPU inference path.

On CPU, a float32 matrix product through oneDNN with the weight reordered once into its blocked
layout runs 2-2.5x faster than ``F.linear`` at the small batch sizes of inference (measured on the
MiniLM shapes, see BENCHMARKS.md). The reordered copy is made on first use and kept beside the
weight. It is dropped when the weight's storage or version counter changes, when the module switches
between train and eval mode, and whenever a gradient-tracking forward runs (a training step: fused
optimizers update weights in place without bumping the version counter). Training, autograd, other
devices and other dtypes take the ordinary ``F.linear`` path, so results and gradients there are
untouched. Set ``HEADWAY_PACKED_LINEAR=0`` to turn the fast path off.

The two paths differ only in summation order: outputs agree to about 1e-6 relative. Where a result
must be bit-identical to the reference's (quantizing embeddings at bucket edges), run the model
inside ``with exact_matmul():``.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from headway.nn.layers import SkipMetaInit

_ENABLED = os.environ.get("HEADWAY_PACKED_LINEAR", "1") not in ("0", "false", "False")
_AVAILABLE = _ENABLED and torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
_EXACT: contextvars.ContextVar[bool] = contextvars.ContextVar("headway_exact_matmul", default=False)


@contextmanager
def exact_matmul() -> Iterator[None]:
    """Inside this block Linear layers compute with ``F.linear``, as the reference does, bit for bit."""
    token = _EXACT.set(True)
    try:
        yield
    finally:
        _EXACT.reset(token)


class Linear(SkipMetaInit, nn.Linear):
    """``nn.Linear`` (same parameters, same state dict) with the packed CPU inference path.

    Like the other headway layers it is not initialised on the meta device (see ``headway.nn.layers``).
    """

    _packed: tuple[int, int, torch.Tensor] | None = None  # (data_ptr, version, reordered weight)

    def _use_packed(self, x: torch.Tensor) -> bool:
        w = self.weight
        return (
            _AVAILABLE
            and w.dtype is torch.float32
            and x.dtype is torch.float32
            and w.device.type == "cpu"
            and x.device.type == "cpu"
            and not (torch.is_grad_enabled() and (w.requires_grad or x.requires_grad))
            and not _EXACT.get()
        )

    def packed_weight(self) -> torch.Tensor:
        w = self.weight
        key = (w.data_ptr(), w._version)
        if self._packed is None or self._packed[:2] != key:
            with torch.no_grad():
                self._packed = (*key, torch.ops.mkldnn._reorder_linear_weight(w.detach(), None))
        return self._packed[2]

    def drop_packed(self) -> None:
        """Forget the reordered copies of the weight (this layer's and a fused group's)."""
        self.__dict__.pop("_packed", None)
        self.__dict__.pop("_fused_packed", None)

    def _plain(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and self.weight.requires_grad:
            self.drop_packed()  # a training step is coming: the weights will change under the copy
        return F.linear(x, self.weight, self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._use_packed(x):
            return torch.ops.mkldnn._linear_pointwise(x, self.packed_weight(), self.bias, "none", [], "")
        return self._plain(x)

    def forward_gelu(self, x: torch.Tensor) -> torch.Tensor:
        """``gelu(self(x))`` (exact erf GELU), fused into the matrix product on the packed path."""
        if self._use_packed(x):
            return torch.ops.mkldnn._linear_pointwise(x, self.packed_weight(), self.bias, "gelu", [], "none")
        return F.gelu(self._plain(x))

    def train(self, mode: bool = True) -> Linear:
        self.drop_packed()
        return super().train(mode)

    def _apply(self, fn, recurse: bool = True):  # .to(), .cuda(), .half(): drop the stale copy
        self.drop_packed()
        return super()._apply(fn, recurse)

    def __getstate__(self):  # copy.deepcopy / pickling: the reordered copies are rebuilt on demand
        state = super().__getstate__()
        state.pop("_packed", None)
        state.pop("_fused_packed", None)
        return state


def fused_linear(x: torch.Tensor, layers: Sequence[Linear]) -> torch.Tensor | None:
    """``cat([layer(x) for layer in layers], -1)`` as one packed matrix product, or None off that path.

    For layers that read the same input (attention's query, key and value): one wider product beats
    several narrow ones. The concatenated, reordered weight is cached on the first layer, dropped like
    its own copy, and rebuilt when any weight or bias changes.
    """
    first = layers[0]
    if not all(layer._use_packed(x) and layer.bias is not None for layer in layers):
        return None
    key = tuple((t.data_ptr(), t._version) for layer in layers for t in (layer.weight, layer.bias))
    cached = first.__dict__.get("_fused_packed")
    if cached is None or cached[0] != key:
        with torch.no_grad():
            weight = torch.cat([layer.weight.detach() for layer in layers])
            bias = torch.cat([layer.bias.detach() for layer in layers])
            cached = (key, torch.ops.mkldnn._reorder_linear_weight(weight, None), bias)
        first.__dict__["_fused_packed"] = cached
    return torch.ops.mkldnn._linear_pointwise(x, cached[1], cached[2], "none", [], "")
