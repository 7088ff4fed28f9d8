"""Checkpoint-folder helpers: atomic writes, ordering, pruning, safe loading."""

from __future__ import annotations

import pickle

import pytest
import torch

from headway.training import checkpointing as ckpt
from headway.training.utils import get_rng_state, set_rng_state


def test_failed_write_leaves_the_old_folder(tmp_path):
    final = tmp_path / "checkpoint-5"
    ckpt.write_folder_atomically(final, lambda d: (d / "a.txt").write_text("old"))

    def broken(folder):
        (folder / "a.txt").write_text("new")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        ckpt.write_folder_atomically(final, broken)
    assert (final / "a.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-5"]
    ckpt.write_folder_atomically(final, lambda d: (d / "b.txt").write_text("replaced"))
    assert sorted(p.name for p in final.iterdir()) == ["b.txt"]


def test_sorting_and_rotation(tmp_path):
    for step in (10, 2, 30, 4):
        (tmp_path / f"checkpoint-{step}").mkdir()
    (tmp_path / "checkpoint-x").mkdir()
    assert ckpt.get_last_checkpoint(tmp_path).endswith("checkpoint-30")
    deleted = ckpt.rotate_checkpoints(tmp_path, 2, best_model_checkpoint=str(tmp_path / "checkpoint-2"))
    assert sorted(p.rsplit("-", 1)[1] for p in deleted) == ["10", "4"]
    assert ckpt.get_last_checkpoint(tmp_path / "missing") is None


def test_pickled_objects_are_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("unpickled!",))

    path = tmp_path / "optimizer.pt"
    path.write_bytes(pickle.dumps({"state": Evil()}, protocol=2))
    with pytest.raises(pickle.UnpicklingError):
        ckpt.load_torch(path)


def test_rng_round_trip_through_weights_only(tmp_path):
    import random

    import numpy as np

    state = get_rng_state()
    torch.save(state, tmp_path / "rng.pth")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(torch.load(tmp_path / "rng.pth", weights_only=True))
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
