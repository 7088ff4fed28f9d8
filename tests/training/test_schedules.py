"""Learning-rate schedules follow the reference's multipliers step by step."""

from __future__ import annotations

import pytest
import torch
import transformers

from headway import get_scheduler


def _lrs(factory, name, **kwargs):
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.1)
    sched = factory(name, opt, **kwargs)
    out = []
    for _ in range(25):
        out.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    return out, sched


@pytest.mark.parametrize("name", ["linear", "cosine", "cosine_with_restarts", "polynomial", "constant",
                                  "constant_with_warmup", "inverse_sqrt"])
def test_same_learning_rates(name):
    kwargs = {"num_warmup_steps": 4, "num_training_steps": 20}
    ours, sched = _lrs(get_scheduler, name, **kwargs)
    ref, _ = _lrs(transformers.get_scheduler, name, **kwargs)
    assert ours == pytest.approx(ref, rel=1e-12, abs=1e-15)
    # The state holds plain data only, so weights_only loading works.
    import io

    buffer = io.BytesIO()
    torch.save(sched.state_dict(), buffer)
    buffer.seek(0)
    assert torch.load(buffer, weights_only=True)["last_epoch"] == 25


def test_errors():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match="Unknown lr_scheduler_type 'nope'"):
        get_scheduler("nope", opt)
    with pytest.raises(ValueError, match="requires num_training_steps"):
        get_scheduler("linear", opt, num_warmup_steps=0)
