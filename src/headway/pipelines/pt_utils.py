"""Dataset views for pipelines, at the reference's path (``transformers.pipelines.pt_utils``).

    >>> from headway.pipelines import KeyDataset
    >>> for result in pipe(KeyDataset(dataset, "text"), batch_size=32):
    ...     ...

A pipeline given one of these (or any other sized, indexable dataset) returns an iterator: results
come out lazily, in order.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


class KeyDataset:
    """The values of one column of a dataset of dicts (a ``datasets.Dataset``, a list of dicts).

    Args:
        dataset: Anything with ``len()`` whose items are dicts.
        key: The column to read.
    """

    def __init__(self, dataset: Any, key: str) -> None:
        self.dataset = dataset
        self.key = key

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> Any:
        return self.dataset[i][self.key]

    def __iter__(self) -> Iterator[Any]:
        for i in range(len(self)):
            yield self[i]


class KeyPairDataset(KeyDataset):
    """Two columns of a dataset as ``{"text", "text_pair"}`` dicts (for text-pair classification)."""

    def __init__(self, dataset: Any, key1: str, key2: str) -> None:
        super().__init__(dataset, key1)
        self.key2 = key2

    def __getitem__(self, i: int) -> dict[str, Any]:
        row = self.dataset[i]
        return {"text": row[self.key], "text_pair": row[self.key2]}
