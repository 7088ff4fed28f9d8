"""Multi-process encoding (start_multi_process_pool / encode(pool=...) / encode(device=[...])): the same
results, in input order and of the same types, as one process; worker errors raised in the parent; no
process or semaphore left behind, and workers that end with their parent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from headway.sentence.multi_process import WorkerTraceback

from .tiny_corpus import TEXTS, tiny_model_path

ATOL = 1e-6


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    return tiny_model_path(tmp_path_factory)


@pytest.fixture(scope="module")
def model(model_path):
    from headway import SentenceTransformer

    return SentenceTransformer(str(model_path), device="cpu", prompts={"query": "query: "})


@pytest.fixture(scope="module")
def pool(model):
    pool = model.start_multi_process_pool(["cpu", "cpu"])
    yield pool
    model.stop_multi_process_pool(pool)


def _assert_same(pooled, single) -> None:
    """Same type, shape, dtype and (within ATOL) values, recursively through lists and dicts."""
    assert type(pooled) is type(single), (type(pooled), type(single))
    if isinstance(single, dict):
        assert pooled.keys() == single.keys()
        for key in single:
            _assert_same(pooled[key], single[key])
    elif isinstance(single, list):
        assert len(pooled) == len(single)
        for a, b in zip(pooled, single):
            _assert_same(a, b)
    elif isinstance(single, torch.Tensor):
        assert pooled.shape == single.shape and pooled.dtype == single.dtype and pooled.device.type == "cpu"
        torch.testing.assert_close(pooled, single.cpu(), atol=ATOL, rtol=0)
    elif isinstance(single, np.ndarray):
        assert pooled.shape == single.shape and pooled.dtype == single.dtype
        np.testing.assert_allclose(pooled, single, atol=ATOL, rtol=0)
    else:
        assert pooled == single


CASES = {
    "numpy": {},
    "tensor": {"convert_to_tensor": True},
    "list": {"convert_to_numpy": False},
    "normalized": {"normalize_embeddings": True},
    "prompt_name": {"prompt_name": "query"},
    "prompt": {"prompt": "passage: ", "normalize_embeddings": True, "convert_to_tensor": True},
    "truncate_dim": {"truncate_dim": 8},
    "binary": {"precision": "binary"},
    "ubinary": {"precision": "ubinary", "convert_to_tensor": True},
    "token_embeddings": {"output_value": "token_embeddings"},
    "query": {"task": "query", "batch_size": 3},
}


@pytest.mark.parametrize("options", CASES.values(), ids=CASES.keys())
def test_pool_equals_one_process(model, pool, options):
    # chunk_size 3: 7 chunks, so both workers take several and the order must be restored
    _assert_same(model.encode(TEXTS, pool=pool, chunk_size=3, **options), model.encode(TEXTS, **options))


def test_all_outputs(model, pool):
    """output_value=None: every feature per text. Batches pad to their longest text, and a chunk's batches
    are not one process's, so per-token features are compared over the text's own tokens."""
    pooled = model.encode(TEXTS, pool=pool, chunk_size=3, output_value=None)
    single = model.encode(TEXTS, output_value=None)
    assert isinstance(pooled, list) and len(pooled) == len(single)
    for a, b in zip(pooled, single):
        assert a.keys() == b.keys() and isinstance(a, dict)
        _assert_same(a["sentence_embedding"], b["sentence_embedding"])
        n = int(b["attention_mask"].sum())
        for key in ("input_ids", "attention_mask", "token_embeddings"):
            _assert_same(a[key][:n], b[key][:n])
        assert not a["attention_mask"][n:].any()


@pytest.mark.parametrize("inputs", ["one text", []], ids=["single", "empty"])
@pytest.mark.parametrize("options", [{}, {"convert_to_tensor": True}, {"output_value": None}], ids=str)
def test_single_and_empty_inputs(model, pool, inputs, options):
    _assert_same(model.encode(inputs, pool=pool, **options), model.encode(inputs, **options))


def test_one_chunk_is_bit_identical(model, pool):
    """A chunk as large as the input is encoded in the very batches of one process."""
    np.testing.assert_array_equal(model.encode(TEXTS, pool=pool, chunk_size=len(TEXTS)), model.encode(TEXTS))


def test_int8_ranges_come_from_all_chunks(model, pool):
    single = model.encode(TEXTS, precision="uint8")
    pooled = model.encode(TEXTS, pool=pool, chunk_size=3, precision="uint8")
    assert pooled.dtype == np.uint8 and pooled.shape == single.shape
    # per-chunk ranges would be off by many buckets; a float difference at a bucket edge flips one
    assert np.abs(single.astype(int) - pooled.astype(int)).max() <= 1
    assert (single == pooled).mean() > 0.99
    tensor = model.encode(TEXTS, pool=pool, chunk_size=3, precision="int8", convert_to_tensor=True)
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.int8


def test_encode_query_and_deprecated_encode_multi_process(model, pool):
    _assert_same(model.encode_query(TEXTS, pool=pool, chunk_size=4), model.encode_query(TEXTS))
    with pytest.warns(DeprecationWarning, match="encode_multi_process"):
        old = model.encode_multi_process(
            TEXTS, pool, prompt_name="query", normalize_embeddings=True, chunk_size=4
        )
    _assert_same(old, model.encode(TEXTS, prompt_name="query", normalize_embeddings=True))


def test_worker_error_is_raised_in_parent(model, pool):
    with pytest.raises(TypeError, match="max_length must be an int or None, got str 'x'") as info:
        model.encode(TEXTS, pool=pool, chunk_size=5, processing_kwargs={"text": {"max_length": "x"}})
    cause = info.value.__cause__
    assert isinstance(cause, WorkerTraceback) and "in pool worker on cpu" in str(cause)
    assert "Traceback" in cause.text and "max_length" in cause.text
    # every chunk came back, so the pool goes on working
    _assert_same(model.encode(TEXTS, pool=pool, chunk_size=5), model.encode(TEXTS))


def test_workers_compute_with_the_shared_weights(model, pool):
    """The weights are in shared memory and the workers use them in place: a change in the parent shows."""
    assert all(p.is_shared() for p in model.parameters())
    weight = model[0].auto_model.embeddings.word_embeddings.weight
    with torch.no_grad():
        weight.mul_(2.0)
    try:
        doubled = model.encode(TEXTS, pool=pool, chunk_size=5)
        _assert_same(doubled, model.encode(TEXTS))
    finally:
        with torch.no_grad():
            weight.div_(2.0)  # exact: a power of two
    assert np.abs(doubled - model.encode(TEXTS)).max() > 1e-3


def test_device_list_starts_and_stops_a_pool(model):
    import multiprocessing

    before = set(multiprocessing.active_children())
    pooled = model.encode(TEXTS, device=["cpu"], chunk_size=6, convert_to_tensor=True)
    _assert_same(pooled, model.encode(TEXTS, convert_to_tensor=True))
    assert set(multiprocessing.active_children()) == before


def test_bad_arguments(model, pool):
    with pytest.raises(ValueError, match="chunk_size must be a positive integer"):
        model.encode(TEXTS, pool=pool, chunk_size=0)
    with pytest.raises(TypeError, match="chunk_size must be a positive int"):
        model.encode(TEXTS, pool=pool, chunk_size=2.5)
    with pytest.raises(TypeError, match="start_multi_process_pool"):
        model.encode(TEXTS, pool={"input": None})
    with pytest.raises(ValueError, match="target_devices is empty"):
        model.start_multi_process_pool([])
    with pytest.raises(ValueError, match="unknown target device 'gpu7'"):
        model.start_multi_process_pool(["gpu7"])
    with pytest.raises(ValueError, match="target device 'cuda:99': this machine has"):
        model.start_multi_process_pool(["cpu", "cuda:99"])
    with pytest.raises(TypeError, match="list of devices"):
        model.start_multi_process_pool("cpu")


# -- process hygiene, in a parent of its own -----------------------------------------------------------
CLEAN = """
import json, multiprocessing, os, signal, sys
from headway import SentenceTransformer

if __name__ == "__main__":
    model = SentenceTransformer(sys.argv[1], device="cpu")
    pool = model.start_multi_process_pool(["cpu", "cpu"])
    model.encode(["a man eats food", "a dog"] * 4, pool=pool, chunk_size=1)
    pids = [p.pid for p in pool["processes"]]
    os.kill(pids[0], signal.SIGKILL)  # what it held must not leak either
    pool["processes"][0].join()
    try:
        model.encode(["a man eats food"] * 20, pool=pool, chunk_size=1)
    except RuntimeError as err:
        died = str(err)
    model.stop_multi_process_pool(pool)
    model.stop_multi_process_pool(pool)  # a second stop is harmless
    try:
        model.encode(["a dog"], pool=pool)
    except RuntimeError as err:
        stopped = str(err)
    print(json.dumps({"pids": pids, "children": len(multiprocessing.active_children()), "died": died, "stopped": stopped}))
"""

# The watchdog runs before the worker looks at its model: a bare Linear keeps this parent light (it
# cannot encode, so the first call comes back as an error: the worker is up).
ORPHANED = """
import sys, time
import torch
from headway.sentence.multi_process import encode_with_pool, start_multi_process_pool

if __name__ == "__main__":
    model = torch.nn.Linear(2, 2)
    pool = start_multi_process_pool(model, ["cpu"])
    try:
        encode_with_pool(model, ["x"], pool=pool, devices=None, chunk_size=None, progress=False, exact=False,
                         embed_kwargs={})
    except AttributeError:
        pass
    print(pool["processes"][0].pid, flush=True)
    time.sleep(300)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _script(tmp_path: Path, name: str, text: str) -> list[str]:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return [sys.executable, str(path)]


def test_stop_leaves_no_process_or_semaphore(model_path, tmp_path):
    result = subprocess.run(
        [*_script(tmp_path, "clean.py", CLEAN), str(model_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["children"] == 0
    assert "worker(s) died" in report["died"] and f"pid {report['pids'][0]} (exit code -9)" in report["died"]
    assert not any(_alive(pid) for pid in report["pids"])
    assert "pool was stopped" in report["stopped"]
    assert "leaked" not in result.stderr and "resource_tracker" not in result.stderr, result.stderr[-3000:]


def test_workers_end_when_the_parent_is_killed(tmp_path):
    parent = subprocess.Popen(
        _script(tmp_path, "orphan.py", ORPHANED),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        worker = int(parent.stdout.readline())
        assert _alive(worker)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(30)
        deadline = time.monotonic() + 30
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(worker), f"pool worker {worker} outlived its parent"
    finally:
        parent.kill()
        parent.wait()
