"""A Linear layer whose CPU float32 inference products run through MKL or oneDNN, whichever rounds better.

By default ``Linear`` is ``nn.Linear``, ``F.linear``, which on CPU calls the BLAS (MKL on x86 builds of
torch) exactly as the reference does, so headway's products round as the reference's do, with one
exception: a product of a single row (a batch-1 decoding step) runs through oneDNN's matrix product
(``torch.ops.mkldnn._linear_pointwise``) on the weight as stored, with no copy. For one row oneDNN is the
better kernel on both counts: its mean error against a float64 product is 0.54-0.77x that of MKL's
matrix-vector product (trained SmolLM2 and MiniLM weights), and it uses every core where MKL's one-row
product runs on one (SmolLM2 batch-1 decoding 1.49x the reference on 2 cores, BENCHMARKS.md).

From two rows on oneDNN rounds worse: 1.3-1.9x MKL's mean error (3.9e-7 vs 2.9e-7 for a 384x384 product
of MiniLM's; 6.9e-7 vs 3.6e-7 for 1536 -> 384), enough that a whole MiniLM or SmolLM2 forward lands
further from the float64 truth than the reference's float32 does, which headway promises not to. Setting
``HEADWAY_ONEDNN_LINEAR=1`` before importing headway takes oneDNN at every size anyway, for its speed
(1.05-1.15x at 4096 rows on the AMD EPYC Zen 4 measured, 1.2x at batch-8 decoding): a trade a user makes
knowingly.

The oneDNN product (either way) is taken only in eval mode, for float32 inputs and weights on CPU, outside
``exact_matmul()``, and not while ``torch.compile`` traces the model (the compilers know ``F.linear``, not
this op) nor inside ``torch.func`` transforms (``grad``, ``vmap``, ``jacrev``...: the op has neither a
batching rule nor a derivative). A module in training mode, other devices and other dtypes take
``F.linear``. A module in eval mode takes the oneDNN product whether or not autograd records: gradients
then flow through an autograd function whose backward is made of ordinary products. No layer ever holds a
reordered copy of its weight. Where a result must be bit-identical to the reference's even for one row
(quantizing embeddings at bucket edges), run the model inside ``with exact_matmul():``.
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

_ENABLED = os.environ.get("HEADWAY_ONEDNN_LINEAR", "0") in ("1", "true", "True")
_SUPPORTED = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
_AVAILABLE = _ENABLED and _SUPPORTED  # read at each call: tests switch the path on
_EXACT: contextvars.ContextVar[bool] = contextvars.ContextVar("headway_exact_matmul", default=False)
_product = torch.ops.mkldnn._linear_pointwise if _SUPPORTED else None
_is_compiling = torch.compiler.is_compiling
_transforms_active = torch._C._are_functorch_transforms_active


@contextmanager
def exact_matmul() -> Iterator[None]:
    """Inside this block Linear layers compute with ``F.linear``, as the reference does, bit for bit."""
    token = _EXACT.set(True)
    try:
        yield
    finally:
        _EXACT.reset(token)


def _fast_input(x: torch.Tensor) -> bool:
    """Whether ``x`` may go through the oneDNN product: float32 on CPU, outside ``exact_matmul()``, not
    under ``torch.compile`` tracing nor ``torch.func`` transforms; and one row (``_one_row``) unless the
    path is on for every size (``HEADWAY_ONEDNN_LINEAR=1``)."""
    return (_SUPPORTED and (_AVAILABLE or _one_row(x)) and not _is_compiling() and x.dtype is torch.float32
            and x.is_cpu and not _EXACT.get() and not _transforms_active())


def _one_row(x: torch.Tensor) -> bool:
    """A single input row (a batch-1 decoding step): there oneDNN's product is both more accurate than
    MKL's matrix-vector product (0.54-0.77x its mean error against float64 with SmolLM2's and MiniLM's
    weights, where from 2 rows on it is 1.3-1.9x) and faster (it uses every core; MKL's one-row product
    runs on one), so it is taken by default."""
    return x.numel() == x.shape[-1]


def _recording(x: torch.Tensor, *params: torch.Tensor | None) -> bool:
    """Whether autograd records a product of ``x`` with ``params``."""
    return torch.is_grad_enabled() and (x.requires_grad or any(p is not None and p.requires_grad for p in params))


class _OneDNNProduct(torch.autograd.Function):
    """``F.linear`` through oneDNN, differentiable: the backward is made of ordinary products."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _product(x, weight, bias, "none", [], "")

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = grad.matmul(weight)
        if ctx.needs_input_grad[1]:
            grad_w = grad.reshape(-1, grad.shape[-1]).T.matmul(x.reshape(-1, x.shape[-1]))
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad.reshape(-1, grad.shape[-1]).sum(0)
        return grad_x, grad_w, grad_b


class Linear(SkipMetaInit, nn.Linear):
    """``nn.Linear`` (same parameters, same state dict, nothing else held) with the oneDNN CPU product.

    Like the other headway layers it is not initialised on the meta device (see ``headway.nn.layers``).
    """

    def _use_fast(self, x: torch.Tensor) -> bool:
        """Whether this product takes the oneDNN path (eval mode, float32 on CPU, see ``_fast_input``)."""
        return self.packable() and _fast_input(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._use_fast(x):
            return F.linear(x, self.weight, self.bias)
        if _recording(x, self.weight, self.bias):
            return _OneDNNProduct.apply(x, self.weight, self.bias)
        return self.packed(x)

    def packed(self, x: torch.Tensor, *, gelu: bool = False) -> torch.Tensor:
        """The product (``gelu=True``: with exact GELU) through oneDNN, without the checks of ``forward``:
        for callers that checked ``_fast_input(x)``, ``self.packable()`` and that autograd does not record. (The name is historical:
        the weight is read as stored, no packed copy is made.)"""
        if gelu:
            return _product(x, self.weight, self.bias, "gelu", [], "none")
        return _product(x, self.weight, self.bias, "none", [], "")

    def packable(self) -> bool:
        """Whether this layer's own state allows the oneDNN path (eval mode, float32 weight on CPU)."""
        w = self._parameters["weight"]
        return not self.training and w.dtype is torch.float32 and w.is_cpu

    def forward_gelu(self, x: torch.Tensor) -> torch.Tensor:
        """``gelu(self(x))`` (exact erf GELU), fused into the matrix product on the oneDNN path."""
        if self._use_fast(x) and not _recording(x, self.weight, self.bias):
            return self.packed(x, gelu=True)
        return F.gelu(self.forward(x))


def _side_by_side(tensors: Sequence[torch.Tensor]) -> torch.Tensor | None:
    """The tensors as one, concatenated along dim 0, when they already lie back to back in one storage
    (views of one fused parameter); None otherwise. Never copies."""
    first = tensors[0]
    storage, offset = first.untyped_storage().data_ptr(), first.storage_offset()
    for t in tensors:
        if (not t.is_contiguous() or t.shape[1:] != first.shape[1:] or t.storage_offset() != offset
                or t.untyped_storage().data_ptr() != storage):
            return None
        offset += t.numel()
    rows = sum(t.shape[0] for t in tensors)
    return first.detach().as_strided((rows, *first.shape[1:]), first.stride())


def fused_linear(x: torch.Tensor, layers: Sequence[Linear]) -> torch.Tensor | None:
    """``cat([layer(x) for layer in layers], -1)`` as one oneDNN product, or None off that path.

    For layers that read the same input (attention's query, key and value): one wider product beats
    several narrow ones, but only where it needs no copy of the weights, i.e. when the layers' weights and
    biases already lie back to back in memory (views of one fused parameter). Otherwise, under autograd,
    or where ``forward`` would not take the oneDNN path, returns None and callers use the layers one by one.
    """
    if not all(layer._use_fast(x) and layer.bias is not None for layer in layers):
        return None
    if torch.is_grad_enabled() and (
        x.requires_grad or any(p.requires_grad for layer in layers for p in layer._parameters.values())
    ):
        return None  # autograd records: callers use the layers one by one
    weight = _side_by_side([layer.weight for layer in layers])
    bias = _side_by_side([layer.bias for layer in layers]) if weight is not None else None
    if bias is None:
        return None
    return _product(x, weight, bias, "none", [], "")
