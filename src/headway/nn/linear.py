"""A Linear layer with a faster CPU inference path.

On CPU, a float32 matrix product through oneDNN with the weight reordered once into its blocked
layout runs 2-2.5x faster than ``F.linear`` at the small batch sizes of inference (measured on the
MiniLM shapes, see BENCHMARKS.md). The reordered copy is made on first use and kept beside the
weight. It is dropped when the weight's storage or version counter changes and when the module
switches between train and eval mode.

A module in eval mode takes the packed path whether or not gradients are being recorded, so that the
common ``outputs = model(**inputs)`` without ``torch.no_grad()`` is fast too; gradients then flow
through an autograd function whose backward uses the ordinary weight. A backward that computes a
weight gradient drops the copy, since an optimizer step may follow (fused optimizers update weights
in place without bumping the version counter). A module in training mode, other devices and other
dtypes take the ordinary ``F.linear`` path, so training results and gradients are untouched. Editing a
weight through ``weight.data`` in place bypasses the version counter: call ``drop_packed()`` after
such surgery (``load_state_dict`` and ``torch.no_grad()`` edits need nothing). Set
``HEADWAY_PACKED_LINEAR=0`` to turn the fast path off.

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
_packed_linear = torch.ops.mkldnn._linear_pointwise if _AVAILABLE else None


@contextmanager
def exact_matmul() -> Iterator[None]:
    """Inside this block Linear layers compute with ``F.linear``, as the reference does, bit for bit."""
    token = _EXACT.set(True)
    try:
        yield
    finally:
        _EXACT.reset(token)


def _state(t: torch.Tensor) -> tuple[int, int]:
    """What says a tensor changed: its storage and version counter. Tensors made under
    ``torch.inference_mode()`` (a model loaded there) have no version counter; only their storage counts."""
    return t.data_ptr(), (-1 if t.is_inference() else t._version)


def _packable_input(x: torch.Tensor) -> bool:
    """Whether ``x`` may go through the packed path: float32 on CPU, outside ``exact_matmul()``."""
    return _AVAILABLE and x.dtype is torch.float32 and x.is_cpu and not _EXACT.get()


def packed_inference(x: torch.Tensor) -> bool:
    """Whether products on ``x`` may take the packed path with nothing to differentiate: float32 on CPU,
    autograd off (``torch.no_grad()`` or ``torch.inference_mode()``), outside ``exact_matmul()``."""
    return not torch.is_grad_enabled() and _packable_input(x)


def _recording(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether autograd records this product."""
    return torch.is_grad_enabled() and (weight.requires_grad or x.requires_grad)


class _PackedProduct(torch.autograd.Function):
    """``F.linear`` on the packed path, differentiable: the backward uses the ordinary weight."""

    @staticmethod
    def forward(ctx, x, weight, bias, layer):
        ctx.save_for_backward(x, weight)
        ctx.layer, ctx.has_bias = layer, bias is not None
        return layer.packed(x)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = grad.matmul(weight)
        if ctx.needs_input_grad[1]:
            ctx.layer.drop_packed()  # an optimizer step may change the weight under the copy
            grad_w = grad.reshape(-1, grad.shape[-1]).T.matmul(x.reshape(-1, x.shape[-1]))
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad.reshape(-1, grad.shape[-1]).sum(0)
        return grad_x, grad_w, grad_b, None


class Linear(SkipMetaInit, nn.Linear):
    """``nn.Linear`` (same parameters, same state dict) with the packed CPU inference path.

    Like the other headway layers it is not initialised on the meta device (see ``headway.nn.layers``).
    """

    _packed: tuple[int, int, torch.Tensor] | None = None  # (data_ptr, version, reordered weight)

    def _use_packed(self, x: torch.Tensor) -> bool:
        """Whether this product takes the packed path (eval mode, float32 on CPU, not ``exact_matmul``)."""
        return self.packable() and _packable_input(x)

    def packed_weight(self) -> torch.Tensor:
        w = self._parameters["weight"]
        key = _state(w)
        packed = self._packed
        if packed is None or packed[:2] != key:
            with torch.no_grad():
                packed = self._packed = (*key, torch.ops.mkldnn._reorder_linear_weight(w.detach(), None))
        return packed[2]

    def drop_packed(self) -> None:
        """Forget the reordered copies of the weight: this layer's and its fused group's."""
        self.__dict__.pop("_packed", None)
        self.__dict__.pop("_fused_packed", None)
        owner = self.__dict__.pop("_fused_owner", None)  # the group's first layer holds the group's copy
        if owner is not None:
            owner.__dict__.pop("_fused_packed", None)

    def _plain(self, x: torch.Tensor) -> torch.Tensor:
        if _recording(x, self.weight):
            self.drop_packed()  # a training step is coming: the weights will change under the copy
        return F.linear(x, self.weight, self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._use_packed(x):
            return self._plain(x)
        if _recording(x, self.weight):
            return _PackedProduct.apply(x, self.weight, self.bias, self)
        return self.packed(x)

    def packed(self, x: torch.Tensor, *, gelu: bool = False) -> torch.Tensor:
        """The product (``gelu=True``: with exact GELU) on the packed path, without the checks of
        ``forward``: for callers that checked ``packed_inference(x)`` and ``self.packable()``."""
        if gelu:
            return _packed_linear(x, self.packed_weight(), self.bias, "gelu", [], "none")
        return _packed_linear(x, self.packed_weight(), self.bias, "none", [], "")

    def packable(self) -> bool:
        """Whether this layer's own state allows the packed path (eval mode, float32 weight on CPU)."""
        w = self._parameters["weight"]
        return not self.training and w.dtype is torch.float32 and w.is_cpu

    def forward_gelu(self, x: torch.Tensor) -> torch.Tensor:
        """``gelu(self(x))`` (exact erf GELU), fused into the matrix product on the packed path."""
        if self._use_packed(x) and not _recording(x, self.weight):
            return self.packed(x, gelu=True)
        return F.gelu(self.forward(x))

    def train(self, mode: bool = True) -> Linear:
        self.drop_packed()
        return super().train(mode)

    def _apply(self, fn, recurse: bool = True):  # .to(), .cuda(), .half(): drop the stale copy
        self.drop_packed()
        return super()._apply(fn, recurse)

    def __getstate__(self):  # copy.deepcopy / pickling: the reordered copies are rebuilt on demand
        state = super().__getstate__()
        for key in ("_packed", "_fused_packed", "_fused_owner"):
            state.pop(key, None)
        return state


def fused_linear(x: torch.Tensor, layers: Sequence[Linear]) -> torch.Tensor | None:
    """``cat([layer(x) for layer in layers], -1)`` as one packed matrix product, or None off that path.

    For layers that read the same input (attention's query, key and value): one wider product beats
    several narrow ones. The concatenated, reordered weight is cached on the first layer, dropped like
    its own copy, and rebuilt when any weight or bias changes.
    """
    if not all(layer._use_packed(x) and layer.bias is not None for layer in layers):
        return None
    if torch.is_grad_enabled() and (
        x.requires_grad or any(p.requires_grad for layer in layers for p in layer._parameters.values())
    ):
        return None  # autograd records: callers use the layers one by one
    return fused_packed(x, layers)


def fused_packed(x: torch.Tensor, layers: Sequence[Linear]) -> torch.Tensor:
    """``fused_linear`` without its checks: for callers that made them (every layer packable, with a bias,
    and ``packed_inference(x)``)."""
    first = layers[0]
    key = tuple(_state(t) for layer in layers for t in layer._parameters.values())
    cached = first.__dict__.get("_fused_packed")
    if cached is None or cached[0] != key:
        with torch.no_grad():
            weight = torch.cat([layer.weight.detach() for layer in layers])
            bias = torch.cat([layer.bias.detach() for layer in layers])
            cached = (key, torch.ops.mkldnn._reorder_linear_weight(weight, None), bias)
        first.__dict__["_fused_packed"] = cached
        for layer in layers[1:]:  # so that dropping any member's copy drops the group's
            layer.__dict__["_fused_owner"] = first
    return _packed_linear(x, cached[1], cached[2], "none", [], "")
