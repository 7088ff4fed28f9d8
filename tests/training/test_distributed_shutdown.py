"""Clean shutdown of a gloo process group: collectives leave no tensor to gloo's threads, and the group
headway joined is destroyed at exit (see headway.training.distributed's module docstring)."""

from __future__ import annotations

import sys

import pytest
import torch
import torch.distributed as dist

from headway.training import distributed as D


@pytest.fixture
def gloo_group(tmp_path):
    """A one-process gloo group (its collectives still run on gloo's worker threads)."""
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        yield
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_settled_collectives_leave_the_tensors_to_the_caller(gloo_group):
    # Without the wait, gloo's worker still holds the tensors after about one wait() in five.
    for i in range(200):
        t = torch.full((4,), float(i))
        outs = [torch.empty(4)]
        D._settled(lambda outs=outs, t=t: dist.all_gather(outs, t, async_op=True), [t, *outs])
        assert t._use_count() == 1 and outs[0]._use_count() == 1
        assert torch.equal(outs[0], t)


def test_destroyed_at_exit_unless_an_exception_is_escaping(gloo_group, monkeypatch):
    monkeypatch.setattr(sys, "last_value", RuntimeError("a failing rank"), raising=False)
    D._destroy_at_exit()
    assert dist.is_initialized()  # other ranks may be inside a collective: leave the group alone
    monkeypatch.delattr(sys, "last_value")
    D._destroy_at_exit()
    assert not dist.is_initialized()
    D._destroy_at_exit()  # nothing left to destroy: no error
