"""Property: the runtime entry points (tokenizer call, model forward in every family, pipelines,
SentenceTransformer.encode), called with drawn arguments of any type, shape and range, return a sane result
(right shape, finite, scores in [0, 1]) or raise a clear error naming the argument."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.conftest import check_target, fuzz_settings

BUDGET = {"tokenizer call": 200, "model forward": 200, "pipelines": 150, "encode": 150}


@pytest.mark.parametrize("target", sorted(BUDGET))
def test_runtime_target(env, target: str) -> None:
    @fuzz_settings(BUDGET[target])
    @given(data=st.data())
    def run(data) -> None:
        check_target(target, env, data)

    run()
