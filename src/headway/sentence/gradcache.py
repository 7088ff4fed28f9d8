"""Gradient caching (GradCache, Gao et al. 2021) and the loss built on it,
:class:`CachedMultipleNegativesRankingLoss`: in-batch-negative training with batches far larger than what
fits in memory at once, for the same loss and gradients as :class:`~headway.sentence.losses.
MultipleNegativesRankingLoss`. Import it from :mod:`headway.sentence.losses`, with the other losses.
"""

from __future__ import annotations

import bisect
import contextlib
import copy
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from headway.nn.dropout import active_keys, keyed_dropout
from headway.sentence import util
from headway.sentence.losses import Features, _batch_size, _RankingSettings, shrink

__all__ = ["CachedMultipleNegativesRankingLoss", "minibatch", "minibatch_ranges"]


class _RandomState:
    """The random state before a mini-batch's first forward, to replay its dropout in the second: torch's
    generators, and under the Trainer's keyed dropout the call counter the masks are keyed by."""

    def __init__(self, features: Features) -> None:
        self.cpu = torch.get_rng_state()
        self.devices = sorted(
            {
                v.device.index or 0
                for v in features.values()
                if isinstance(v, Tensor) and v.device.type == "cuda"
            }
        )
        self.cuda = [torch.cuda.get_rng_state(d) for d in self.devices]
        self.keys = active_keys()
        self.calls = self.keys.calls if self.keys is not None else 0

    @contextlib.contextmanager
    def restored(self) -> Iterator[None]:
        with torch.random.fork_rng(devices=self.devices):  # the state outside is put back afterwards
            torch.set_rng_state(self.cpu)
            for device, state in zip(self.devices, self.cuda):
                torch.cuda.set_rng_state(state, device)
            if self.keys is None:
                yield
                return
            # The same keys from the same call on: the first forward's masks. The replay runs inside the
            # backward pass, where keyed dropout expects only checkpointed blocks being recomputed; this
            # copy marks itself as tracked so that the replay is let through.
            replay = copy.copy(self.keys)
            replay.calls = self.calls
            replay._starts = self.keys._starts or {-1: [self.calls]}
            with keyed_dropout(replay):
                yield


def minibatch(features: Features, begin: int, end: int) -> Features:
    """Rows ``begin:end`` of a padded batch, its token axis cut after the last column these rows attend."""
    mask = features.get("attention_mask")
    width = keep = None
    if isinstance(mask, Tensor) and mask.dim() == 2:
        width = mask.shape[1]
        active = mask[begin:end].bool().any(dim=0)
        if active.any():
            keep = int(active.nonzero().max()) + 1
    out: Features = {}
    for key, value in features.items():
        if not isinstance(value, Tensor):
            out[key] = value
        elif keep is not None and keep < width and value.dim() >= 2 and value.shape[1] == width:
            out[key] = value[begin:end, :keep]
        else:
            out[key] = value[begin:end]
    return out


def minibatch_ranges(features: Features, size: int, num_tokens: int | None = None) -> list[tuple[int, int]]:
    """``(begin, end)`` row ranges of ``size`` rows, or of at most ``num_tokens`` attended tokens each
    (at least one row)."""
    rows = _batch_size(features)
    if num_tokens is None:
        return [(b, min(b + size, rows)) for b in range(0, rows, size)]
    mask = features.get("attention_mask")
    if not isinstance(mask, Tensor):
        raise ValueError(  # noqa: TRY004 - what the tokenizer gave, not an argument
            "mini_batch_num_tokens needs an attention_mask to count tokens; use mini_batch_size"
        )
    cumulative = mask.sum(dim=1).cumsum(dim=0).tolist()
    ranges, begin = [], 0
    while begin < rows:
        before = cumulative[begin - 1] if begin else 0
        end = max(bisect.bisect_right(cumulative, before + num_tokens), begin + 1)
        ranges.append((begin, end))
        begin = end
    return ranges


class CachedMultipleNegativesRankingLoss(_RankingSettings):
    """:class:`MultipleNegativesRankingLoss` for batches larger than memory allows (GradCache).

    Three stages: embed every column in mini-batches without keeping activations; compute the loss and
    its gradient with respect to the embeddings (mini-batch by mini-batch of queries); then, during
    ``backward``, embed each mini-batch again with its dropout replayed and push the cached embedding
    gradient through it. The result equals the plain loss on the whole batch, at the memory of a
    mini-batch and about 20% more time.

    Args:
        mini_batch_size: Rows per mini-batch (a memory knob: the loss does not depend on it).
        mini_batch_num_tokens: Instead, mini-batches of at most this many attended tokens.
        show_progress_bar: Accepted for compatibility (no bar is shown).
        Other arguments as :class:`MultipleNegativesRankingLoss`.
    """

    uses_gradient_cache = True

    def __init__(
        self,
        model: nn.Module,
        scale: float = 20.0,
        similarity_fct: Callable[[Tensor, Tensor], Tensor] = util.cos_sim,
        mini_batch_size: int = 32,
        mini_batch_num_tokens: int | None = None,
        gather_across_devices: bool = False,
        directions: Sequence[str] = ("query_to_doc",),
        partition_mode: str = "joint",
        show_progress_bar: bool = False,
        hardness_mode: str | None = None,
        hardness_strength: float = 0.0,
    ) -> None:
        super().__init__()
        if type(model[0]).__name__ == "StaticEmbedding":
            raise ValueError(
                "CachedMultipleNegativesRankingLoss cannot split a StaticEmbedding model's inputs into "
                "mini-batches; use MultipleNegativesRankingLoss"
            )
        if mini_batch_size < 1:
            raise ValueError(f"mini_batch_size must be a positive int, got {mini_batch_size}")
        if mini_batch_num_tokens is not None and mini_batch_num_tokens <= 0:
            raise ValueError(
                f"mini_batch_num_tokens must be a positive int or None, got {mini_batch_num_tokens}"
            )
        self.model = model
        self.mini_batch_size = mini_batch_size
        self.mini_batch_num_tokens = mini_batch_num_tokens
        self.show_progress_bar = show_progress_bar
        self._set_ranking_options(
            scale,
            similarity_fct,
            gather_across_devices,
            directions,
            partition_mode,
            hardness_mode,
            hardness_strength,
        )
        # Set by MatryoshkaLoss: (dims, weights, dims per step) to score each slice of the cached embeddings.
        self.matryoshka: tuple[tuple[int, ...], tuple[float, ...], int] | None = None

    def _embed(
        self, features: Features, ranges: list[tuple[int, int]], record: bool
    ) -> tuple[list[Tensor], list[_RandomState | None]]:
        reps, states = [], []
        for begin, end in ranges:
            part = minibatch(features, begin, end)
            states.append(_RandomState(part) if record else None)
            with torch.no_grad():
                reps.append(self.model(part)["sentence_embedding"].detach().requires_grad_())
        return reps, states

    def calculate_loss(
        self, reps: list[list[Tensor]], labels: Tensor | None = None, *, with_backward: bool = False
    ) -> Tensor:
        """The loss over cached embeddings (columns x mini-batches); with ``with_backward``, each query
        mini-batch's share is back-propagated into the embeddings at once (freeing its graph)."""
        batch = sum(len(r) for r in reps[0])
        queries, docs, offset = self._gather(torch.cat(reps[0]), [torch.cat(r) for r in reps[1:]])
        docs_all = torch.cat(docs, dim=0)
        rows_all = torch.arange(offset, offset + batch, device=queries.device)
        total: Tensor | float = 0
        for begin in range(0, batch, self.mini_batch_size):
            rows = rows_all[begin : begin + self.mini_batch_size]
            part = self._row_losses(queries, docs, docs_all, rows).mean() * len(rows) / batch
            if with_backward:
                part.backward()
                part = part.detach()
            total = total + part
        return total

    def _loss_of_reps(self, reps: list[list[Tensor]], labels: Tensor | None, with_backward: bool) -> Tensor:
        if self.matryoshka is None:
            return self.calculate_loss(reps, labels, with_backward=with_backward)
        dims, weights, per_step = self.matryoshka
        chosen: Sequence[int] = range(len(dims))
        if 0 < per_step < len(dims):
            chosen = random.sample(chosen, per_step)
        total: Tensor | float = 0.0
        for i in chosen:
            cut = [[shrink(r, dims[i]) for r in column] for column in reps]
            grads = torch.is_grad_enabled()
            leaves = [[r.detach().requires_grad_() for r in column] for column in cut] if grads else cut
            total = total + weights[i] * self.calculate_loss(leaves, labels, with_backward=with_backward)
            if grads:  # carry each slice's embedding gradient back to the full embeddings
                for cut_column, leaf_column in zip(cut, leaves):
                    for r, leaf in zip(cut_column, leaf_column):
                        r.backward(weights[i] * leaf.grad)
        return total

    def forward(self, sentence_features: Iterable[Features], labels: Tensor | None) -> Tensor:
        columns = list(sentence_features)
        if len(columns) < 2:
            raise ValueError(f"{type(self).__name__} needs at least 2 text columns, got {len(columns)}")
        record = torch.is_grad_enabled()
        ranges = [minibatch_ranges(c, self.mini_batch_size, self.mini_batch_num_tokens) for c in columns]
        embedded = [self._embed(c, r, record) for c, r in zip(columns, ranges)]
        reps = [r for r, _ in embedded]
        if not record:
            return self._loss_of_reps(reps, labels, with_backward=False)
        loss = self._loss_of_reps(reps, labels, with_backward=True).detach().requires_grad_()
        cache = [[r.grad for r in column] for column in reps]
        unused = [str(i) for i, grads in enumerate(cache) if any(g is None for g in grads)]
        if unused:
            raise ValueError(
                f"{type(self).__name__} gave no gradient to input column(s) {', '.join(unused)}; "
                "remove the unused columns from the data set"
            )
        states = [s for _, s in embedded]
        loss.register_hook(partial(self._replay, columns, ranges, cache, states))
        return loss

    def _replay(
        self,
        columns: list[Features],
        ranges: list[list[tuple[int, int]]],
        cache: list[list[Tensor]],
        states: list[list[_RandomState]],
        grad_output: Tensor,
    ) -> None:
        """Second forward of each mini-batch, with its first forward's dropout, and backward of the
        cached gradient through it (under DDP, gradients are synchronised at the last one only)."""
        model = self.model
        remaining = sum(len(r) for r in ranges)
        with torch.enable_grad():
            for features, column_ranges, grads, column_states in zip(columns, ranges, cache, states):
                for (begin, end), grad, state in zip(column_ranges, grads, column_states):
                    remaining -= 1
                    no_sync = (
                        model.no_sync()
                        if remaining and hasattr(model, "no_sync")
                        else contextlib.nullcontext()
                    )
                    with no_sync, state.restored():
                        reps = model(minibatch(features, begin, end))["sentence_embedding"]
                        if not reps.requires_grad:
                            continue
                        dtype = torch.promote_types(reps.dtype, grad.dtype)
                        if dtype in (torch.float16, torch.bfloat16):
                            dtype = torch.float32
                        surrogate = (
                            torch.dot(reps.flatten().to(dtype), grad.flatten().to(dtype)) * grad_output
                        )
                        surrogate.backward()

    def get_config_dict(self) -> dict[str, Any]:
        return {
            **super().get_config_dict(),
            "mini_batch_size": self.mini_batch_size,
            "mini_batch_num_tokens": self.mini_batch_num_tokens,
        }
