"""Encoding a corpus to disk: streamed in fixed-size chunks, sharded over torchrun ranks, resumable.

    headway encode sentence-transformers/all-MiniLM-L6-v2 --input corpus.txt --output out/
    torchrun --nproc_per_node=4 -m headway encode MODEL --input docs.jsonl --text-field body --output out/

The input is a text file (one text per line: lines end at ``\\n``, a trailing ``\\r`` is dropped, blank
lines are empty texts, so row ``i`` is line ``i + 1``), JSON lines (one object per line, its
``text_field`` a string; blank lines skipped) or a folder written by ``datasets``' ``save_to_disk``. It is
cut into chunks of ``chunk_rows`` texts; chunk ``i`` goes to rank ``i % world_size``. A rank reads one
chunk at a time (never the whole corpus), encodes it with ``SentenceTransformer.encode`` and writes its
float embeddings to ``DIR/chunks/chunk-<i>.npy`` atomically (temporary name, fsync, rename). At the end,
after a barrier, rank 0 copies the chunks in input order into ``DIR/embeddings.npy`` (a memory-mapped
``.npy``, one chunk in memory at a time; ``precision`` applied there, int8 / uint8 ranges taken from all
the embeddings as ``encode`` does), marks ``DIR/manifest.json`` complete and removes the chunks. With
several machines, DIR must be on a filesystem every rank sees.

Resuming: a run writes ``manifest.json`` before any chunk, naming the model, the input (path, size,
modification time), the options and the chunk size. A later run into the same folder checks it: a
difference is a ValueError naming it (never a mix of two runs' embeddings); otherwise the chunks already
written are kept and only the others are encoded (with any number of ranks). A finished folder is left
as it is.

The rows equal ``model.encode(all_texts, ...)`` within float rounding: a chunk's batches are sorted by
length within the chunk, not the whole corpus (bit for bit the same when one chunk holds every text).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from headway.atomic import atomic_path, atomic_write_text, remove_stale_temporaries
from headway.nn.linear import exact_matmul
from headway.sentence import util
from headway.training import distributed

logger = logging.getLogger(__name__)

FORMAT = "headway-corpus-embeddings/1"
MANIFEST = "manifest.json"
OUTPUT = "embeddings.npy"
CHUNKS = "chunks"
INPUT_FORMATS = ("auto", "text", "jsonl", "datasets")
DEFAULT_CHUNK_ROWS = 10_000
# Collectives wait this long: rank 0 indexes the input while the others wait, and merges at the end.
GROUP_TIMEOUT = timedelta(hours=6)
# Test hook: a rank exits abruptly (as if killed) after writing this many chunks in this run.
CRASH_AFTER_ENV = "HEADWAY_ENCODE_CRASH_AFTER_CHUNKS"
_JSONL_SUFFIXES = (".jsonl", ".ndjson", ".jsonlines", ".json")
_KEYS = ("format", "model", "input", "options", "chunk_rows")  # what a resumed run must share
_PLAN_ERRORS = (ValueError, TypeError, OSError, ImportError)  # found by rank 0 before any encoding


@dataclass
class EncodeSummary:
    """What ``encode_corpus`` did: ``output`` (the ``.npy``), its ``shape`` and ``dtype``, the number of
    ``chunks`` and how many of them an earlier run had already written (``reused``)."""

    output: Path
    shape: tuple[int, ...]
    dtype: str
    chunks: int
    reused: int


# -- inputs -----------------------------------------------------------------------------------------
def _input_format(path: Path, requested: str) -> str:
    if requested not in INPUT_FORMATS:
        raise ValueError(f"input format must be one of {list(INPUT_FORMATS)}, got {requested!r}")
    if not path.exists():
        raise FileNotFoundError(f"input {str(path)!r} does not exist")
    if requested != "auto":
        if (requested == "datasets") != path.is_dir():
            raise ValueError(
                f"input {str(path)!r} is {'a folder' if path.is_dir() else 'a file'}: it cannot be "
                f"read as {requested!r} (a datasets folder is a folder, text and JSON lines are files)"
            )
        return requested
    if path.is_dir():
        return "datasets"
    return "jsonl" if path.suffix.lower() in _JSONL_SUFFIXES else "text"


def _fingerprint(path: Path) -> dict[str, Any]:
    """Path, size and modification time of a file, or the total size and latest time of a folder's files."""
    if path.is_file():
        stat = path.stat()
        return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    size = mtime = 0
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        stat = file.stat()
        size, mtime = size + stat.st_size, max(mtime, stat.st_mtime_ns)
    return {"path": str(path), "size": size, "mtime_ns": mtime}


def _line_text(line: bytes, where: str, kind: str, field: str) -> str:
    """The text of one line of a text or JSON lines file (``where``: "line 3 of 'a.jsonl'"); a ValueError
    naming what is wrong."""
    try:
        decoded = line.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{where} is not UTF-8 text: {err}") from None
    if kind == "text":
        return decoded.removesuffix("\n").removesuffix("\r")
    try:
        record = json.loads(decoded)
    except json.JSONDecodeError as err:
        raise ValueError(f"{where} is not valid JSON ({err}); JSON lines hold one object per line") from None
    if not isinstance(record, dict):
        raise ValueError(  # noqa: TRY004 - bad file content, not a bad argument
            f"{where} holds a JSON {type(record).__name__}, expected an object with a {field!r} field"
        )
    if field not in record:
        raise ValueError(
            f"{where} has no {field!r} field (it has {sorted(record)[:10]}); choose one with --text-field"
        )
    if not isinstance(record[field], str):
        raise ValueError(f"{where}: {field!r} must be a string, got {type(record[field]).__name__}")  # noqa: TRY004
    return record[field]


def _index_lines(path: Path, kind: str, field: str, chunk_rows: int) -> tuple[int, list[int]]:
    """One streaming pass: the number of rows and the byte offset where each chunk starts; every row is
    decoded once here so that a bad line is reported before any encoding starts."""
    if kind == "jsonl":
        with open(path, "rb") as f:
            head = f.read(4096).lstrip()
        if head.startswith(b"["):
            raise ValueError(
                f"{str(path)!r} holds a JSON array, which cannot be streamed: write JSON lines "
                "(one object per line) instead"
            )
    rows, offsets, offset = 0, [], 0
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            if kind == "jsonl" and not line.strip():
                offset += len(line)
                continue
            if rows % chunk_rows == 0:
                offsets.append(offset)
            _line_text(line, f"line {number} of {str(path)!r}", kind, field)
            rows += 1
            offset += len(line)
    return rows, offsets


class _Source:
    """Reads chunk ``i`` (rows ``i * chunk_rows`` on) of the input, one chunk in memory at a time."""

    def __init__(self, path: Path, kind: str, field: str, chunk_rows: int, offsets: list[int] | None) -> None:
        self.path, self.kind, self.field, self.chunk_rows, self.offsets = (
            path,
            kind,
            field,
            chunk_rows,
            offsets,
        )
        self.dataset = _load_dataset(path, field) if kind == "datasets" else None

    def chunk(self, index: int) -> list[str]:
        start = index * self.chunk_rows
        if self.dataset is not None:
            texts = self.dataset[start : start + self.chunk_rows][self.field]
            for row, text in enumerate(texts, start):
                if not isinstance(text, str):
                    raise ValueError(  # noqa: TRY004 - bad data, not a bad argument
                        f"row {row} of {str(self.path)!r}: {self.field!r} must be a string, got {type(text).__name__}"
                    )
            return texts
        texts = []
        with open(self.path, "rb") as f:
            f.seek(self.offsets[index])
            for line in f:
                if self.kind == "jsonl" and not line.strip():
                    continue
                where = f"row {start + len(texts)} of {str(self.path)!r}"
                texts.append(_line_text(line, where, self.kind, self.field))
                if len(texts) == self.chunk_rows:
                    break
        return texts


def _load_dataset(path: Path, field: str) -> Any:
    """The ``datasets`` folder at ``path`` (one split), keeping only the ``field`` column."""
    try:
        import datasets
    except ImportError:
        raise ModuleNotFoundError(
            f"{str(path)!r} is a folder, read as a `datasets` folder (save_to_disk), which needs the datasets "
            "package: pip install datasets"
        ) from None
    if (path / "dataset_dict.json").is_file():
        splits = sorted(p.name for p in path.iterdir() if p.is_dir())
        raise ValueError(
            f"{str(path)!r} is a DatasetDict with splits {splits}: give one split's folder, "
            f"e.g. {str(path / splits[0]) if splits else str(path) + '/train'!r}"
        )
    if not (path / "state.json").is_file():
        raise ValueError(
            f"{str(path)!r} is a folder but not a dataset saved with save_to_disk (no state.json)"
        )
    dataset = datasets.load_from_disk(str(path))
    if field not in dataset.column_names:
        raise ValueError(
            f"the dataset at {str(path)!r} has no column {field!r} (its columns: "
            f"{dataset.column_names}); choose one with --text-field"
        )
    return dataset.select_columns([field])


# -- the output folder ------------------------------------------------------------------------------
def _chunk_path(folder: Path, index: int) -> Path:
    return folder / CHUNKS / f"chunk-{index:08d}.npy"


def _chunk_done(path: Path, rows: int) -> bool:
    """Whether ``path`` holds a finished chunk of ``rows`` embeddings (its header is read, not its data)."""
    try:
        array = np.load(path, mmap_mode="r")
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        logger.warning("%s is not a readable .npy file: encoding that chunk again", path)
        return False
    return array.ndim == 2 and array.shape[0] == rows


def _chunk_rows(index: int, rows: int, chunk_rows: int) -> int:
    return min(chunk_rows, rows - index * chunk_rows)


def _read_manifest(folder: Path) -> dict[str, Any] | None:
    path = folder / MANIFEST
    if not path.is_file():
        if (folder / CHUNKS).exists() or (folder / OUTPUT).exists():
            raise ValueError(
                f"{str(folder)!r} holds {CHUNKS}/ or {OUTPUT} but no {MANIFEST}: they were not written "
                "by `headway encode`; choose another --output folder"
            )
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(
            f"{str(path)!r} is not a readable manifest ({err}); delete the folder to start over"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(
            f"{str(path)!r} is not a `headway encode` manifest ({FORMAT}); choose another --output folder"
        )
    return manifest


def _differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """``key: old -> new`` for each value of ``new`` (nested) that ``old`` does not share."""
    found = []
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            found += _differences(before, value, f"{prefix}{key}.")
        elif before != value:
            found.append(f"{prefix}{key}: {before!r} -> {value!r}")
    return found


def _plan(
    folder: Path, expected: dict[str, Any], source_path: Path, kind: str, field: str, chunk_rows: int
) -> dict[str, Any]:
    """Rank 0: check or write the manifest, index a line file; what every rank needs to start."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = _read_manifest(folder)
    if manifest is not None:
        if changed := _differences({k: manifest.get(k) for k in _KEYS}, expected):
            raise ValueError(
                f"{str(folder / MANIFEST)!r} was written by a run with other settings, so its chunks cannot be "
                f"reused: {'; '.join(changed)}. Use another --output folder, or delete this one to start over."
            )
        output = folder / OUTPUT
        if manifest.get("complete") and output.is_file() and _chunk_done(output, manifest.get("rows", -1)):
            return {"complete": manifest}
    if kind == "datasets":
        rows, offsets = len(_load_dataset(source_path, field)), None
    else:
        rows, offsets = _index_lines(source_path, kind, field, chunk_rows)
    precision = expected["options"]["precision"]
    if rows == 1 and precision in ("int8", "uint8"):
        raise ValueError(
            f"{str(source_path)!r} holds a single text: {precision} quantization ranges cannot come "
            "from one embedding (use precision float32, binary or ubinary)"
        )
    chunks = math.ceil(rows / chunk_rows)
    if manifest is None or manifest.get("complete") or manifest.get("rows") != rows:
        manifest = {**expected, "rows": rows, "chunks": chunks, "complete": False}
        atomic_write_text(folder / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    (folder / CHUNKS).mkdir(exist_ok=True)
    for where in (folder, folder / CHUNKS):  # what killed runs of this machine left half written
        remove_stale_temporaries(where)
    reused = sum(_chunk_done(_chunk_path(folder, i), _chunk_rows(i, rows, chunk_rows)) for i in range(chunks))
    return {"rows": rows, "chunks": chunks, "offsets": offsets, "reused": reused}


def _progress_rows(folder: Path, rows: int, chunk_rows: int) -> int:
    """Rows whose chunk file exists (written by any rank), for rank 0's progress bar."""
    names = {n for n in os.listdir(folder / CHUNKS) if n.startswith("chunk-") and n.endswith(".npy")}
    last = math.ceil(rows / chunk_rows) - 1  # the one chunk that may be short
    short = chunk_rows - _chunk_rows(last, rows, chunk_rows) if _chunk_path(folder, last).name in names else 0
    return len(names) * chunk_rows - short


def _merge(
    folder: Path, rows: int, chunks: int, chunk_rows: int, precision: str, dimension: int | None
) -> tuple[tuple[int, ...], str]:
    """Rank 0: the chunks, in input order, into ``DIR/embeddings.npy`` with ``precision``; shape and dtype."""
    paths = [_chunk_path(folder, i) for i in range(chunks)]
    if missing := [
        p.name for i, p in enumerate(paths) if not _chunk_done(p, _chunk_rows(i, rows, chunk_rows))
    ]:
        raise RuntimeError(f"chunks missing after every rank finished: {missing[:5]}; run the command again")
    dtype = np.load(paths[0], mmap_mode="r").dtype if paths else np.dtype(np.float32)
    dimension = np.load(paths[0], mmap_mode="r").shape[1] if paths else (dimension or 0)
    ranges = None
    if precision in ("int8", "uint8") and rows:
        lows, highs = zip(*((a.min(0), a.max(0)) for a in (np.load(p, mmap_mode="r") for p in paths)))
        ranges = np.vstack((np.minimum.reduce(lows), np.maximum.reduce(highs)))
    out_dtype, width = dtype, dimension
    if precision != "float32":
        out_dtype = np.uint8 if precision.startswith("u") else np.int8
        width = math.ceil(dimension / 8) if precision.endswith("binary") else dimension
    with atomic_path(folder / OUTPUT) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=out_dtype, shape=(rows, width))
        start = 0
        for path in paths:
            part = np.load(path, mmap_mode="r")
            if precision != "float32":
                part = util.quantize_embeddings(np.asarray(part), precision, ranges=ranges)
            out[start : start + len(part)] = part
            start += len(part)
        out.flush()
        del out
    return (rows, width), np.dtype(out_dtype).name


# -- the run -------------------------------------------------------------------------------------------
def _encode_share(
    encoder: Any, source: _Source, folder: Path, rows: int, *, exact: bool, options: dict[str, Any], bar: tqdm
) -> None:
    """Encode and write this rank's chunks (``i % world_size == rank``) that are not on disk yet."""
    rank, world, chunk_rows = distributed.rank(), distributed.world_size(), source.chunk_rows
    crash_after = int(os.environ.get(CRASH_AFTER_ENV, "0"))
    if rank == 0:
        bar.update(_progress_rows(folder, rows, chunk_rows))
    shown, written = time.monotonic(), 0
    for index in range(rank, math.ceil(rows / chunk_rows), world):
        path = _chunk_path(folder, index)
        if _chunk_done(path, _chunk_rows(index, rows, chunk_rows)):
            continue
        # int8/uint8: encode() computes the embeddings its ranges come from exactly; the same here
        with exact_matmul() if exact else contextlib.nullcontext():
            embeddings = encoder.encode(source.chunk(index), show_progress_bar=False, **options)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.save(f, embeddings)
        written += 1
        if written == crash_after:
            os._exit(17)  # the test hook: end as a killed process would, nothing cleaned up
        if rank == 0 and time.monotonic() - shown > 1.0:
            bar.update(_progress_rows(folder, rows, chunk_rows) - bar.n)
            shown = time.monotonic()


def _join_group(device: str) -> int:
    """Join torchrun's process group (gloo) when WORLD_SIZE > 1; this process's rank."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        args = SimpleNamespace(
            world_size=world,
            device=torch.device(device),
            ddp_backend="gloo",
            ddp_timeout=GROUP_TIMEOUT.total_seconds(),
        )
        distributed.init_distributed(args)
    return distributed.rank()


def _default_device() -> str:
    from headway.sentence.loading import default_device

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return default_device()


def encode_corpus(
    model: str | os.PathLike,
    input_path: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    batch_size: int = 32,
    text_field: str = "text",
    normalize: bool = False,
    precision: str = "float32",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    prompt_name: str | None = None,
    prompt: str | None = None,
    input_format: str = "auto",
    device: str | None = None,
    show_progress_bar: bool = True,
) -> EncodeSummary:
    """Encode every text of ``input_path`` with the SentenceTransformer ``model`` into
    ``output_dir/embeddings.npy``; see the module docstring. Under torchrun, every rank calls this.

    Args:
        model: Folder or Hub id of a SentenceTransformer.
        input_path: A text file, a JSON lines file or a ``save_to_disk`` folder.
        output_dir: Where the chunks, the manifest and ``embeddings.npy`` go (created).
        batch_size: Texts per forward pass.
        text_field: The field (JSON lines) or column (datasets) holding the texts.
        normalize: L2-normalize the embeddings.
        precision: "float32", "int8", "uint8", "binary" or "ubinary" (as ``encode``'s).
        chunk_rows: Texts per chunk: the unit of work, of writing and of resuming.
        prompt_name, prompt: As ``encode``'s.
        input_format: "auto" (a folder is a datasets folder, .jsonl / .ndjson / .json files JSON lines,
            anything else text), or "text", "jsonl", "datasets".
        device: Default: this rank's GPU (LOCAL_RANK) under torchrun, else the first available device.
        show_progress_bar: Rank 0 shows the rows done by every rank.

    Raises:
        ValueError: a bad option or input line, or an output folder written with other settings.
        FileNotFoundError: no such input.
        ModuleNotFoundError: a datasets folder without the datasets package.
    """
    from headway.sentence.encoder import SentenceTransformer

    for name, value in (("batch_size", batch_size), ("chunk_rows", chunk_rows)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if precision not in util.PRECISIONS:
        raise ValueError(f"precision must be one of {list(util.PRECISIONS)}, got {precision!r}")
    source_path = Path(input_path).absolute()
    kind = _input_format(source_path, input_format)
    folder = Path(output_dir).absolute()
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"output {str(folder)!r} is a file, expected a folder")
    device = device or _default_device()
    rank = _join_group(device)
    encoder = SentenceTransformer(model, device=device)
    resolved_prompt = encoder._resolve_prompt(prompt, prompt_name)  # an unknown prompt name fails here
    model_id = str(Path(model).absolute()) if Path(model).is_dir() else os.fspath(model)
    expected = {
        "format": FORMAT,
        "model": model_id,
        "input": {"format": kind, **_fingerprint(source_path)},
        "options": {
            "batch_size": batch_size,
            "text_field": None if kind == "text" else text_field,
            "normalize": normalize,
            "precision": precision,
            "prompt_name": prompt_name,
            "prompt": resolved_prompt,
        },
        "chunk_rows": chunk_rows,
    }
    plan: dict[str, Any] | BaseException
    if rank == 0:
        try:
            plan = _plan(folder, expected, source_path, kind, text_field, chunk_rows)
        except _PLAN_ERRORS as err:  # sent to every rank, which all raise it
            plan = err
    plan = distributed.broadcast_object(plan if rank == 0 else None)
    if isinstance(plan, BaseException):
        raise plan
    if "complete" in plan:
        done = plan["complete"]
        logger.info("%s is already complete: nothing to encode", folder / OUTPUT)
        return EncodeSummary(
            folder / OUTPUT, tuple(done["shape"]), done["dtype"], done["chunks"], done["chunks"]
        )
    rows, chunks = plan["rows"], plan["chunks"]
    if rank == 0 and plan["reused"]:
        logger.info("Resuming: %d of %d chunks were written by an earlier run", plan["reused"], chunks)
    source = _Source(source_path, kind, text_field, chunk_rows, plan["offsets"])
    options = {"batch_size": batch_size, "normalize_embeddings": normalize, "prompt": resolved_prompt}
    with tqdm(total=rows, unit="texts", desc="Encoding", disable=rank != 0 or not show_progress_bar) as bar:
        _encode_share(
            encoder, source, folder, rows, exact=precision in ("int8", "uint8"), options=options, bar=bar
        )
        distributed.barrier()
        bar.update(rows - bar.n)
    shape: tuple[int, ...] = ()
    dtype = ""
    if rank == 0:  # the others wait for it in broadcast_object below
        shape, dtype = _merge(
            folder, rows, chunks, chunk_rows, precision, encoder.get_sentence_embedding_dimension()
        )
        manifest = {
            **expected,
            "rows": rows,
            "chunks": chunks,
            "complete": True,
            "output": OUTPUT,
            "shape": list(shape),
            "dtype": dtype,
        }
        atomic_write_text(folder / MANIFEST, json.dumps(manifest, indent=2) + "\n")
        shutil.rmtree(folder / CHUNKS, ignore_errors=True)
        logger.info("Wrote %s: %s %s", folder / OUTPUT, shape, dtype)
    shape, dtype = distributed.broadcast_object((shape, dtype))
    return EncodeSummary(folder / OUTPUT, tuple(shape), dtype, chunks, plan["reused"])


__all__ = ["EncodeSummary", "encode_corpus"]
