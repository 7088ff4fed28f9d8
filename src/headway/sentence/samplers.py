"""Batch samplers for training embedding models: which rows of the data set share a batch.

In-batch-negative losses (``MultipleNegativesRankingLoss`` and kin) treat every other text of a batch
as a negative, so a batch holding the same text twice teaches the model that a text is unlike itself:
:class:`NoDuplicatesBatchSampler` builds batches in which no value of any column repeats. The others:
:class:`DefaultBatchSampler` (shuffled batches), :class:`GroupByLabelBatchSampler` (pairs of rows per
label, for the batch-triplet losses), and for a dict of data sets :class:`RoundRobinBatchSampler` (one
batch of each data set in turn) and :class:`ProportionalBatchSampler` (data sets drawn in proportion
to their number of batches).

Every draw comes from one seeded ``torch.Generator`` in the order sentence-transformers 6 draws, so the
same seed gives the same batches in both libraries. A sampler is reseeded with ``seed + epoch`` at the
start of each epoch (the multi-data-set samplers reseed the generator they share with their samplers),
so an epoch's batches never depend on earlier epochs and a resumed run sees the batches an
uninterrupted one would.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from enum import Enum
from itertools import accumulate
from typing import Any

import numpy as np
import torch
from torch.utils.data import BatchSampler, ConcatDataset, RandomSampler, Sampler, SubsetRandomSampler

logger = logging.getLogger(__name__)

__all__ = [
    "BatchSamplers",
    "DefaultBatchSampler",
    "GroupByLabelBatchSampler",
    "MultiDatasetBatchSamplers",
    "MultiDatasetDefaultBatchSampler",
    "NoDuplicatesBatchSampler",
    "ProportionalBatchSampler",
    "RoundRobinBatchSampler",
    "ShardedBatchSampler",
]

# Columns that never take part in duplicate detection (added by the trainer for multi-data-set runs).
_IGNORED_COLUMNS = frozenset({"dataset_name"})
# Extra passes NoDuplicatesBatchSampler makes when one pass gives fewer batches than __len__ promises.
_RESAMPLE_PASSES = 2


class BatchSamplers(str, Enum):
    """How one data set is cut into batches (``SentenceTransformerTrainingArguments.batch_sampler``)."""

    BATCH_SAMPLER = "batch_sampler"
    NO_DUPLICATES = "no_duplicates"
    NO_DUPLICATES_HASHED = "no_duplicates_hashed"
    GROUP_BY_LABEL = "group_by_label"


class MultiDatasetBatchSamplers(str, Enum):
    """How batches of several data sets are interleaved (``multi_dataset_batch_sampler``)."""

    ROUND_ROBIN = "round_robin"
    PROPORTIONAL = "proportional"


class _EpochMixin:
    """``set_epoch`` (called by the trainer before each epoch) and the reseeding it drives."""

    epoch: int = 0
    generator: torch.Generator | None
    seed: int | None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _reseed(self) -> None:
        if self.generator is not None and self.seed is not None:
            self.generator.manual_seed(self.seed + self.epoch)


class DefaultBatchSampler(_EpochMixin, BatchSampler):
    """Shuffled batches of ``batch_size`` rows (the last one smaller unless ``drop_last``).

    Args:
        dataset: The data set (or a ready-made index sampler, used as is).
        batch_size: Rows per batch.
        drop_last: Leave out the last, incomplete batch.
        valid_label_columns: Column names that may hold the label (used by subclasses).
        generator: The random generator every draw comes from.
        seed: Base seed; the generator is reseeded with ``seed + epoch`` at each epoch when
            ``reseed_each_epoch`` is set (as the trainer does for a single data set). Inside a
            multi-data-set sampler it is not: the outer sampler reseeds the generator they share.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int,
        drop_last: bool,
        valid_label_columns: list[str] | None = None,
        generator: torch.Generator | None = None,
        seed: int | None = 0,
    ) -> None:
        sampler = dataset if isinstance(dataset, Sampler) else RandomSampler(dataset, generator=generator)
        super().__init__(sampler, batch_size=batch_size, drop_last=drop_last)
        self.dataset = dataset
        self.valid_label_columns = valid_label_columns
        self.generator = generator
        self.seed = seed
        self.epoch = 0
        self.reseed_each_epoch = False

    def __iter__(self) -> Iterator[list[int]]:
        if self.reseed_each_epoch:
            self._reseed()
        yield from super().__iter__()


def _value_key(value: Any) -> str:
    """The text by which a cell is compared with others (equal cells, equal keys)."""
    if isinstance(value, (str, int, float, bool, bytes, type(None), np.integer, np.floating, np.bool_)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value_key(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_value_key(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _hash64(text: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little", signed=True
    )


class NoDuplicatesBatchSampler(DefaultBatchSampler):
    """Batches in which no value (of any column but the label) occurs twice.

    Rows are visited in a seeded random order; a row sharing a value with the batch being built waits
    for a later batch, keeping its place in the order. When one pass over the data gives fewer batches
    than ``len(self)`` (too many repeated values), up to two more passes top the epoch up and a warning
    says how many batches repeat rows.

    Args:
        precompute_hashes: Compute each row's values once (as 64-bit hashes) instead of reading the row at
            every visit: faster for large data sets, at 8 bytes per cell.
        Other arguments as :class:`DefaultBatchSampler` (``dataset`` must be a ``datasets.Dataset``).
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int,
        drop_last: bool,
        valid_label_columns: list[str] | None = None,
        generator: torch.Generator | None = None,
        seed: int | None = 0,
        precompute_hashes: bool = False,
    ) -> None:
        super().__init__(dataset, batch_size, drop_last, valid_label_columns, generator, seed)
        if not hasattr(dataset, "column_names"):
            raise TypeError(
                f"NoDuplicatesBatchSampler needs a datasets.Dataset, got {type(dataset).__name__}"
            )
        labels = [c for c in dataset.column_names if c in set(valid_label_columns or [])]
        self.dataset = dataset.remove_columns(labels) if labels else dataset
        self.precompute_hashes = precompute_hashes
        self._hashes: list[frozenset[int]] | None = None
        self.reseed_each_epoch = True

    def _values(self) -> Callable[[int], frozenset]:
        if not self.precompute_hashes:

            def read(index: int) -> frozenset:
                row = self.dataset[index]
                return frozenset(_value_key(v) for k, v in row.items() if k not in _IGNORED_COLUMNS)

            return read
        if self._hashes is None:
            columns = [c for c in self.dataset.column_names if c not in _IGNORED_COLUMNS]
            cells = [self.dataset[c] for c in columns]
            self._hashes = [
                frozenset(_hash64(_value_key(column[i])) for column in cells)
                for i in range(len(self.dataset))
            ]
        return self._hashes.__getitem__

    def _one_pass(self, values: Callable[[int], frozenset]) -> Iterator[list[int]]:
        n = len(self.dataset)
        dtype = torch.int32 if n <= np.iinfo(np.int32).max else torch.int64
        waiting = torch.randperm(n, generator=self.generator, dtype=dtype).tolist()
        while waiting:
            batch: list[int] = []
            seen: set = set()
            left: list[int] = []
            for position, index in enumerate(waiting):
                row = values(index)
                if not row.isdisjoint(seen):
                    left.append(index)  # shares a value with this batch: next batch
                    continue
                batch.append(index)
                if len(batch) == self.batch_size:
                    left.extend(waiting[position + 1 :])
                    break
                seen |= row
            waiting = left
            if len(batch) == self.batch_size or not self.drop_last:
                yield batch

    def __iter__(self) -> Iterator[list[int]]:
        self._reseed()
        if len(self.dataset) == 0:
            return
        values = self._values()
        expected = len(self)
        yielded = 0
        for batch in self._one_pass(values):
            yield batch
            yielded += 1
        if yielded >= expected:
            return
        if yielded:
            logger.warning(
                "NoDuplicatesBatchSampler made %d of %d batches in a pass over the data; the other %d "
                "repeat rows of earlier batches",
                yielded,
                expected,
                expected - yielded,
            )
            for _ in range(_RESAMPLE_PASSES):
                for batch in self._one_pass(values):
                    yield batch
                    yielded += 1
                    if yielded >= expected:
                        return
        logger.warning(
            "NoDuplicatesBatchSampler made only %d of %d batches: the data set has too few distinct "
            "values for batch_size %d",
            yielded,
            expected,
            self.batch_size,
        )

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


class GroupByLabelBatchSampler(DefaultBatchSampler):
    """Batches made of pairs of rows with the same label, at least two labels per batch.

    For the batch-triplet losses, which need an anchor and a positive of each label in a batch. Labels
    with a single row are left out; ``batch_size`` must be even and at least 4.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int,
        drop_last: bool,
        valid_label_columns: list[str] | None = None,
        generator: torch.Generator | None = None,
        seed: int | None = 0,
    ) -> None:
        super().__init__(dataset, batch_size, drop_last, valid_label_columns, generator, seed)
        if batch_size < 4 or batch_size % 2:
            raise ValueError(
                f"GroupByLabelBatchSampler needs an even batch_size of at least 4, got {batch_size}"
            )
        column = next((c for c in valid_label_columns or [] if c in dataset.column_names), None)
        if column is None:
            raise ValueError(
                f"None of the label columns {valid_label_columns} is in the data set (columns: "
                f"{dataset.column_names})"
            )
        groups: dict[Any, list[int]] = defaultdict(list)
        for index, label in enumerate(dataset[column]):
            groups[label].append(index)
        self.groups = {label: rows for label, rows in groups.items() if len(rows) >= 2}
        if len(self.groups) < 2:
            raise ValueError(
                f"GroupByLabelBatchSampler needs at least 2 labels with 2 or more rows each, found "
                f"{len(self.groups)}"
            )
        pairs = sorted((len(rows) // 2 for rows in self.groups.values()), reverse=True)
        # The largest label can only pair up with the others for as long as the second largest lasts.
        self._stream = 2 * sum(min(p, pairs[1]) for p in pairs)
        self.reseed_each_epoch = True

    def __iter__(self) -> Iterator[list[int]]:
        self._reseed()
        queues: dict[Any, deque[int]] = {}
        for label, rows in self.groups.items():
            order = torch.randperm(len(rows), generator=self.generator)[: len(rows) // 2 * 2]
            queues[label] = deque(rows[i] for i in order)
        labels = list(queues)
        batch: list[int] = []
        previous = None
        while len(labels) >= 2:
            labels = [labels[i] for i in torch.randperm(len(labels), generator=self.generator)]
            if batch and labels[0] == previous:  # the same label twice in a row would make a 4-row run
                labels[0], labels[1] = labels[1], labels[0]
            for label in labels:
                batch += [queues[label].popleft(), queues[label].popleft()]
                if len(batch) >= self.batch_size:
                    yield batch[: self.batch_size]
                    batch = batch[self.batch_size :]
            previous = labels[-1]
            labels = [label for label in labels if queues[label]]
        if not self.drop_last and len(batch) >= 4:
            yield batch

    def __len__(self) -> int:
        full, rest = divmod(self._stream, self.batch_size)
        return full + int(not self.drop_last and rest >= 4)


class MultiDatasetDefaultBatchSampler(_EpochMixin, BatchSampler):
    """Batches from several data sets (a ``ConcatDataset``), each cut by its own batch sampler.

    Indices are shifted by each data set's offset in the concatenation, and a batch never mixes data sets.
    """

    def __init__(
        self,
        dataset: ConcatDataset,
        batch_samplers: list[BatchSampler],
        generator: torch.Generator | None = None,
        seed: int | None = 0,
    ) -> None:
        if len(dataset.datasets) != len(batch_samplers):
            raise ValueError(f"{len(batch_samplers)} batch samplers for {len(dataset.datasets)} data sets")
        super().__init__(
            dataset, batch_size=batch_samplers[0].batch_size, drop_last=batch_samplers[0].drop_last
        )
        self.dataset = dataset
        self.batch_samplers = batch_samplers
        self.generator = generator
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        for sampler in self.batch_samplers:
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)

    def _offsets(self) -> list[int]:
        return [0, *accumulate(len(d) for d in self.dataset.datasets)]


class RoundRobinBatchSampler(MultiDatasetDefaultBatchSampler):
    """One batch of each data set in turn, until the first data set runs out."""

    def __iter__(self) -> Iterator[list[int]]:
        self._reseed()
        offsets = self._offsets()
        for batches in zip(*(iter(s) for s in self.batch_samplers)):
            for offset, batch in zip(offsets, batches):
                yield [i + offset for i in batch]

    def __len__(self) -> int:
        return min(len(s) for s in self.batch_samplers) * len(self.batch_samplers)


class ProportionalBatchSampler(MultiDatasetDefaultBatchSampler):
    """Every batch of every data set once, in an order drawn so that larger data sets come up more often."""

    def __iter__(self) -> Iterator[list[int]]:
        self._reseed()
        offsets = self._offsets()
        owners = [d for d, sampler in enumerate(self.batch_samplers) for _ in range(len(sampler))]
        iterators = [iter(s) for s in self.batch_samplers]
        for d in SubsetRandomSampler(owners, generator=self.generator):
            batch = next(iterators[d], None)
            if batch is not None:
                yield [i + offsets[d] for i in batch]

    def __len__(self) -> int:
        return sum(len(s) for s in self.batch_samplers)


class ShardedBatchSampler(Sampler[list[int]]):
    """This process's share of another batch sampler's batches under ``torchrun``: batch ``i`` goes to
    process ``i % num_replicas``, and every process gets as many batches (a remainder of fewer than
    ``num_replicas`` batches is left out), so no process waits in a collective the others never reach.
    """

    def __init__(self, batch_sampler: Any, num_replicas: int, rank: int) -> None:
        self.batch_sampler = batch_sampler
        self.num_replicas = num_replicas
        self.rank = rank

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.batch_sampler, "set_epoch"):
            self.batch_sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[list[int]]:
        limit = len(self) * self.num_replicas
        for i, batch in enumerate(self.batch_sampler):
            if i >= limit:
                return
            if i % self.num_replicas == self.rank:
                yield batch

    def __len__(self) -> int:
        return len(self.batch_sampler) // self.num_replicas
