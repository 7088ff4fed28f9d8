"""``headway encode``: a corpus (text lines, JSON lines, a datasets folder) to DIR/embeddings.npy equal to
``model.encode(all_texts)``, in one process or under torchrun, resumable after a crash, and refusing to
mix the chunks of runs with other settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from headway.cli import main
from headway.sentence.corpus import CRASH_AFTER_ENV

from .tiny_corpus import TEXTS, tiny_model_path

ATOL = 1e-6


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    return tiny_model_path(tmp_path_factory)


@pytest.fixture(scope="module")
def model(model_path):
    from headway import SentenceTransformer

    return SentenceTransformer(str(model_path), device="cpu")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """The texts as a text file (CRLF line ends, blank line = empty text), JSON lines (with a blank line
    and other fields) and a datasets folder."""
    from datasets import Dataset

    root = tmp_path_factory.mktemp("corpus")
    text = root / "corpus.txt"
    text.write_bytes("".join(t + "\r\n" for t in TEXTS).encode("utf-8"))
    jsonl = root / "corpus.jsonl"
    lines = [json.dumps({"id": i, "body": t}) for i, t in enumerate(TEXTS)]
    jsonl.write_text("\n".join(lines[:7] + [""] + lines[7:]) + "\n")
    folder = root / "corpus_ds"
    Dataset.from_dict({"id": list(range(len(TEXTS))), "body": TEXTS}).save_to_disk(str(folder))
    return {"text": text, "jsonl": jsonl, "datasets": folder}


def _encode(model_path: Path, source: Path, out: Path, *extra: str) -> int:
    return main(
        ["encode", str(model_path), "--input", str(source), "--output", str(out), "--no-progress", *extra]
    )


@pytest.mark.parametrize("kind", ["text", "jsonl", "datasets"])
def test_each_input_format_equals_encode(model_path, model, inputs, tmp_path, kind, capsys):
    assert (
        _encode(model_path, inputs[kind], tmp_path, "--text-field", "body", "--chunk-rows", "6", "-b", "4")
        == 0
    )
    assert "20 x 32 float32 (4 chunks)" in capsys.readouterr().out
    written = np.load(tmp_path / "embeddings.npy")
    expected = model.encode(TEXTS, batch_size=4)
    assert written.shape == expected.shape and written.dtype == expected.dtype
    np.testing.assert_allclose(written, expected, atol=ATOL, rtol=0)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["complete"] and manifest["rows"] == 20 and manifest["input"]["format"] == kind
    assert not (tmp_path / "chunks").exists()


def test_one_chunk_is_bit_identical(model_path, model, inputs, tmp_path):
    assert _encode(model_path, inputs["text"], tmp_path, "--chunk-rows", "100") == 0
    np.testing.assert_array_equal(np.load(tmp_path / "embeddings.npy"), model.encode(TEXTS))


def test_empty_input(model_path, tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    assert _encode(model_path, tmp_path / "empty.txt", tmp_path / "out") == 0
    assert np.load(tmp_path / "out" / "embeddings.npy").shape == (0, 32)


def test_options(model_path, model, inputs, tmp_path):
    options = ["--normalize", "--prompt", "query: ", "--chunk-rows", "7"]
    assert _encode(model_path, inputs["text"], tmp_path / "f", *options) == 0
    expected = model.encode(TEXTS, normalize_embeddings=True, prompt="query: ")
    np.testing.assert_allclose(np.load(tmp_path / "f" / "embeddings.npy"), expected, atol=ATOL, rtol=0)
    # uint8: ranges from all 20 embeddings, not one chunk (per-chunk ranges would be off by many buckets)
    assert _encode(model_path, inputs["text"], tmp_path / "u", *options, "--precision", "uint8") == 0
    written = np.load(tmp_path / "u" / "embeddings.npy")
    expected = model.encode(TEXTS, normalize_embeddings=True, prompt="query: ", precision="uint8")
    assert written.dtype == np.uint8 and written.shape == expected.shape
    assert (
        np.abs(written.astype(int) - expected.astype(int)).max() <= 1 and (written == expected).mean() > 0.99
    )
    assert _encode(model_path, inputs["text"], tmp_path / "b", *options, "--precision", "binary") == 0
    expected = model.encode(TEXTS, normalize_embeddings=True, prompt="query: ", precision="binary")
    np.testing.assert_array_equal(np.load(tmp_path / "b" / "embeddings.npy"), expected)


def test_settings_mismatch_is_an_error(model_path, inputs, tmp_path, capsys):
    assert _encode(model_path, inputs["text"], tmp_path, "--chunk-rows", "6") == 0
    before = (tmp_path / "embeddings.npy").stat().st_mtime_ns
    assert _encode(model_path, inputs["text"], tmp_path, "--chunk-rows", "6") == 0  # finished: left alone
    assert "(4 chunks, 4 reused from an earlier run)" in capsys.readouterr().out
    assert (tmp_path / "embeddings.npy").stat().st_mtime_ns == before
    assert _encode(model_path, inputs["text"], tmp_path, "--chunk-rows", "6", "--normalize") == 2
    error = capsys.readouterr().err
    assert "was written by a run with other settings" in error and "options.normalize: False -> True" in error
    assert _encode(model_path, inputs["text"], tmp_path, "--chunk-rows", "5") == 2
    assert "chunk_rows: 6 -> 5" in capsys.readouterr().err
    changed = tmp_path / "changed.txt"
    changed.write_bytes(inputs["text"].read_bytes() + b"one more line\n")
    os.replace(changed, tmp_path / "corpus.txt")
    assert _encode(model_path, tmp_path / "corpus.txt", tmp_path / "again", "--chunk-rows", "6") == 0
    with (tmp_path / "corpus.txt").open("ab") as f:
        f.write(b"and another\n")
    assert _encode(model_path, tmp_path / "corpus.txt", tmp_path / "again", "--chunk-rows", "6") == 2
    assert "input.size:" in capsys.readouterr().err


def test_bad_inputs(model_path, inputs, tmp_path, capsys, monkeypatch):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"body": "fine"}\n\n{"text": "no body"}\n')
    assert _encode(model_path, bad, tmp_path / "o1", "--text-field", "body") == 2
    assert "line 3 of" in (error := capsys.readouterr().err) and "has no 'body' field" in error
    array = tmp_path / "array.json"
    array.write_text('[{"text": "a"}]')
    assert _encode(model_path, array, tmp_path / "o2") == 2
    assert "JSON array, which cannot be streamed" in capsys.readouterr().err
    assert _encode(model_path, tmp_path / "missing.txt", tmp_path / "o3") == 2
    assert "does not exist" in capsys.readouterr().err
    assert _encode(model_path, inputs["datasets"], tmp_path / "o4", "--text-field", "nope") == 2
    assert "has no column 'nope'" in capsys.readouterr().err
    (tmp_path / "o5").mkdir()
    (tmp_path / "o5" / "embeddings.npy").write_bytes(b"someone else's")
    assert _encode(model_path, inputs["text"], tmp_path / "o5") == 2
    assert "not written by `headway encode`" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "datasets", None)  # as if not installed
    assert _encode(model_path, inputs["datasets"], tmp_path / "o6", "--text-field", "body") == 2
    assert "needs the datasets package: pip install datasets" in capsys.readouterr().err


def _run(cmd: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **env}
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        environment.pop(key, None)
    return subprocess.run(
        cmd, check=False, cwd=cwd, env=environment, capture_output=True, text=True, timeout=170
    )


def test_killed_run_resumes_under_torchrun(model_path, model, inputs, tmp_path):
    """A run killed after its first chunk, resumed by two torchrun ranks: the same file, byte for byte, as
    an uninterrupted run in one process (same chunks, hence the same batches)."""
    args = [
        "encode",
        str(model_path),
        "--input",
        str(inputs["jsonl"]),
        "--text-field",
        "body",
        "--chunk-rows",
        "4",
    ]
    out = tmp_path / "out"
    killed = _run(
        [sys.executable, "-m", "headway", *args, "--output", str(out)], tmp_path, **{CRASH_AFTER_ENV: "1"}
    )
    assert killed.returncode == 17, killed.stderr[-3000:]
    assert [p.name for p in (out / "chunks").iterdir()] == ["chunk-00000000.npy"]
    assert not json.loads((out / "manifest.json").read_text())["complete"]
    assert not (out / "embeddings.npy").exists()

    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    resumed = _run([*torchrun, "-m", "headway", *args, "--output", str(out)], tmp_path)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-5000:]
    assert "20 x 32 float32 (5 chunks, 1 reused from an earlier run)" in resumed.stdout
    assert resumed.stdout.count("embeddings.npy") == 1  # rank 0 reports

    assert main([*args, "--output", str(tmp_path / "one"), "--no-progress"]) == 0
    written = np.load(out / "embeddings.npy")
    np.testing.assert_array_equal(written, np.load(tmp_path / "one" / "embeddings.npy"))
    np.testing.assert_allclose(written, model.encode(TEXTS), atol=ATOL, rtol=0)
