"""Property: every file headway reads (config.json, tokenizer files, safetensors headers, shard indexes,
sentence-transformers files), however broken, loads and works or raises a clear error naming the file or
field: never another exception, a crash, a hang, or a silently wrong model (NaN, wrong size)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.conftest import check_target, fuzz_settings

# target -> examples per run (sized by each target's cost; about 40 s together on two cores)
BUDGET = {
    "config.json": 60,
    "config.json (build)": 40,
    "tokenizer.json": 50,
    "tokenizer_config.json": 50,
    "special_tokens_map.json": 50,
    "vocab.txt": 50,
    "safetensors header": 60,
    "shard index": 50,
    "sentence-transformers files": 60,
}


@pytest.mark.parametrize("target", sorted(BUDGET))
def test_file_target(env, target: str) -> None:
    @fuzz_settings(BUDGET[target])
    @given(data=st.data())
    def run(data) -> None:
        check_target(target, env, data)

    run()
