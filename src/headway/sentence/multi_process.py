"""Encoding over several processes: sentence-transformers' multi-process pool.

    pool = model.start_multi_process_pool(["cpu", "cpu"])   # or ["cuda:0", "cuda:1"]; None: every GPU
    embeddings = model.encode(texts, pool=pool, chunk_size=1000)
    model.stop_multi_process_pool(pool)
    embeddings = model.encode(texts, device=["cuda:0", "cuda:1"])  # a pool for this call only

A pool is the dict sentence-transformers uses: ``{"input": queue, "output": queue, "processes": [...]}``.
The workers are started with the ``spawn`` context (safe with CUDA and threads). Before they start, the
model moves to the CPU (where it stays, as in sentence-transformers) and its weights move into shared
memory: every CPU worker computes with those very tensors, not a copy of its own (a GPU worker copies
them to its device). A CPU worker runs ``torch.get_num_threads() // len(devices)`` threads (at least one),
so the workers share the cores instead of each claiming all of them.

``encode`` cuts the texts into chunks (``chunk_size``; default ``ceil(len / workers / 10)``, at most 5000)
and puts them on the input queue; each worker encodes a chunk exactly as ``encode`` does in one process
(longest texts first, same batches within the chunk) and sends the float results back; the parent puts
them in input order and then applies ``precision`` (int8 / uint8 ranges come from all the embeddings,
not one chunk) and the output type. Results travel by value (serialized bytes), so no file descriptor
or shared-memory segment stays open per result.

An exception in a worker is sent back and raised again in the parent (same type and message, the
worker's traceback as its cause) once every chunk of the call has come back, so the pool stays usable.
A worker that dies (killed, out of memory) is reported as a RuntimeError naming its process id and exit
code. Workers ignore Ctrl-C (the parent handles it) and exit on their own when the parent process dies.
``stop_multi_process_pool`` terminates and joins the workers and closes the queues. One call at a time
may use a pool.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import multiprocessing
import os
import pickle
import queue
import secrets
import signal
import threading
import traceback
from collections.abc import Sequence
from typing import Any

import torch
import torch.multiprocessing as mp  # registers torch's tensor reductions (shared memory) for the spawn pickler
from tqdm.auto import trange
from tqdm.std import tqdm

from headway.nn.linear import exact_matmul

logger = logging.getLogger(__name__)

POOL_KEYS = ("input", "output", "processes")
MAX_DEFAULT_CHUNK = 5000  # the default chunk size never exceeds this many texts
_POLL_SECONDS = 1.0  # how often a waiting parent checks that its workers are alive
_JOIN_SECONDS = 10.0  # how long stop waits for a terminated worker before killing it


class WorkerTraceback(Exception):
    """The traceback of an exception raised in a pool worker (attached as the ``__cause__`` of the
    exception raised again in the parent)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n"""\n{self.text}"""'


# -- the pool -------------------------------------------------------------------------------------
def _target_devices(target_devices: Sequence[str | torch.device] | None) -> list[str]:
    """The devices to start workers on: each checked by ``torch.device``; None: every GPU, else 4 CPUs.

    Raises:
        TypeError: not a list or tuple of device names.
        ValueError: an empty list, or a name torch does not know.
    """
    if target_devices is None:
        if torch.cuda.is_available():
            return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        logger.info("CUDA is not available: starting 4 CPU workers")
        return ["cpu"] * 4
    if isinstance(target_devices, (str, torch.device)) or not isinstance(target_devices, (list, tuple)):
        raise TypeError(
            f"target_devices must be a list of devices such as ['cpu', 'cpu'] or ['cuda:0', 'cuda:1'], "
            f"got {type(target_devices).__name__} {target_devices!r:.80}"
        )
    if not target_devices:
        raise ValueError("target_devices is empty: name at least one device, e.g. ['cpu', 'cpu']")
    devices = []
    for device in target_devices:
        if not isinstance(device, (str, torch.device)):
            raise TypeError(
                f"a target device must be a str or torch.device, got {type(device).__name__} {device!r}"
            )
        try:
            parsed = torch.device(device)
        except RuntimeError as err:
            raise ValueError(f"unknown target device {device!r}: {err}") from None
        if parsed.type == "cuda" and (parsed.index or 0) >= (
            torch.cuda.device_count() if torch.cuda.is_available() else 0
        ):
            raise ValueError(
                f"target device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
        devices.append(str(parsed))
    return devices


def start_multi_process_pool(
    model: torch.nn.Module, target_devices: Sequence[str | torch.device] | None = None
) -> dict[str, Any]:
    """Start one worker process per device, each holding ``model``; see the module docstring.

    Args:
        model: The SentenceTransformer the workers run. It moves to the CPU, its weights into shared memory.
        target_devices: e.g. ``["cuda:0", "cuda:1"]`` or ``["cpu"] * 4``; None: every GPU, else 4 CPU workers.

    Returns:
        ``{"input": queue, "output": queue, "processes": [process, ...]}``, for ``encode(pool=...)`` and
        ``stop_multi_process_pool``.

    Raises:
        ValueError: an empty or unknown device, or a model spread over several devices (a ``device_map``).
    """
    devices = _target_devices(target_devices)
    placed = {p.device for p in model.parameters()}
    if len(placed) > 1:
        raise ValueError(
            f"The model is spread over {sorted(map(str, placed))} (a device_map): a pool places a whole copy "
            "of it on each target device. Load it without a device_map to encode with a pool."
        )
    logger.info("Starting a multi-process pool on %s", ", ".join(devices))
    model.to("cpu")
    model.share_memory()
    threads = max(1, torch.get_num_threads() // len(devices))
    context = mp.get_context("spawn")
    inputs, outputs = context.Queue(), context.Queue()
    processes = []
    try:
        for device in devices:
            process = context.Process(
                target=_worker,
                args=(device, model, threads, inputs, outputs),
                daemon=True,
                name=f"headway-encode-{device}",
            )
            process.start()
            processes.append(process)
    except BaseException:
        stop_multi_process_pool({"input": inputs, "output": outputs, "processes": processes})
        raise
    return {"input": inputs, "output": outputs, "processes": processes}


def _check_pool(pool: Any) -> None:
    if not isinstance(pool, dict) or any(key not in pool for key in POOL_KEYS):
        raise TypeError(
            "pool must be the dict start_multi_process_pool() returns, with keys 'input', 'output' and "
            f"'processes'; got {type(pool).__name__} {pool!r:.80}"
        )


def stop_multi_process_pool(pool: dict[str, Any]) -> None:
    """Terminate and join the pool's workers (killed if they do not end within 10 s), close its queues.

    Stopping a pool twice is harmless.
    """
    _check_pool(pool)
    processes = pool["processes"]
    for process in processes:
        with contextlib.suppress(ValueError):  # already closed by an earlier stop
            if process.is_alive():
                process.terminate()
    for process in processes:
        with contextlib.suppress(ValueError):
            process.join(_JOIN_SECONDS)
            if process.is_alive():
                logger.warning(
                    "Pool worker %s did not stop within %.0f s: killing it", process.pid, _JOIN_SECONDS
                )
                process.kill()
                process.join()
            process.close()
    pool["input"].cancel_join_thread()  # chunks nobody will read must not hold up this process's exit
    pool["input"].close()
    pool["output"].close()


# -- encoding with a pool -------------------------------------------------------------------------------
def _chunk_size(chunk_size: Any, n_texts: int, n_workers: int) -> int:
    if chunk_size is None:
        return max(1, min(math.ceil(n_texts / n_workers / 10), MAX_DEFAULT_CHUNK))
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int):
        raise TypeError(
            f"chunk_size must be a positive int or None, got {type(chunk_size).__name__} {chunk_size!r}"
        )
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size}.")
    return chunk_size


def encode_with_pool(
    model: torch.nn.Module,
    texts: list[Any],
    *,
    pool: dict[str, Any] | None,
    devices: Sequence[str | torch.device] | None,
    chunk_size: int | None,
    progress: bool,
    exact: bool,
    embed_kwargs: dict[str, Any],
) -> torch.Tensor | list[Any]:
    """``model._embed(texts, **embed_kwargs)`` computed chunk by chunk in ``pool`` (or in a pool on
    ``devices`` started and stopped for this call); results on the CPU, in input order.

    Sentence embeddings come back as one (N, dim) tensor, other outputs as a list; ``[]`` for no texts.
    ``exact`` runs the workers under ``exact_matmul()`` (as ``encode`` does for int8/uint8 precision).

    Raises:
        TypeError / ValueError: a bad ``pool`` or ``chunk_size``.
        RuntimeError: a worker died.
        Any exception a worker raised, raised again here.
    """
    if pool is not None:
        _check_pool(pool)
    n_workers = len(pool["processes"]) if pool is not None else len(_target_devices(devices))
    chunk_size = _chunk_size(chunk_size, len(texts), n_workers)
    if not texts:
        return []
    own_pool = pool is None
    if own_pool:
        pool = start_multi_process_pool(model, devices)
    else:
        _check_alive(pool)  # a worker killed while it held the input queue's lock would stall the others
    try:
        job = secrets.token_hex(8)  # results of an earlier, interrupted call carry another job id
        options = {**embed_kwargs, "progress": False, "to_cpu": True}
        starts = range(0, len(texts), chunk_size)
        for index, start in enumerate(starts):
            pool["input"].put((job, index, texts[start : start + chunk_size], options, exact))
        chunks: list[Any] = [None] * len(starts)
        errors: dict[int, bytes] = {}
        for _ in trange(len(starts), desc="Chunks", disable=not progress):
            index, ok, payload = _next_result(pool, job)
            if ok:
                chunks[index] = _loads(payload)
            else:
                errors[index] = payload
    finally:
        if own_pool:
            stop_multi_process_pool(pool)
    if errors:
        _raise_worker_error(errors[min(errors)])  # the first failing chunk's, whichever worker ended first
    if isinstance(chunks[0], torch.Tensor):
        return torch.cat(chunks)
    return [item for chunk in chunks for item in chunk]


def _next_result(pool: dict[str, Any], job: str) -> tuple[int, bool, bytes]:
    """The next ``(chunk index, ok, payload)`` of ``job``; a RuntimeError when a worker has died."""
    while True:
        try:
            result_job, index, ok, payload = pool["output"].get(timeout=_POLL_SECONDS)
        except queue.Empty:
            _check_alive(pool)
            continue
        if result_job == job:
            return index, ok, payload
        logger.debug("Dropping a result of an earlier, interrupted pool call")


def _check_alive(pool: dict[str, Any]) -> None:
    """A RuntimeError naming the pool's dead workers, if any."""
    try:
        dead = [p for p in pool["processes"] if not p.is_alive()]
    except ValueError:  # a closed process
        raise RuntimeError("This pool was stopped: start a new one with start_multi_process_pool") from None
    if dead:
        details = ", ".join(f"pid {p.pid} (exit code {p.exitcode})" for p in dead)
        raise RuntimeError(
            f"{len(dead)} multi-process pool worker(s) died: {details}. Stop the pool "
            "(stop_multi_process_pool) and start a new one."
        )


def _raise_worker_error(payload: bytes) -> None:
    device, pid, text, pickled = pickle.loads(payload)
    error = None
    if pickled is not None:
        with contextlib.suppress(Exception):  # an exception that cannot be rebuilt: a RuntimeError below
            error = pickle.loads(pickled)
    if not isinstance(error, BaseException):
        last = text.strip().splitlines()[-1] if text.strip() else "unknown error"
        error = RuntimeError(f"pool worker on {device} (pid {pid}) failed: {last}")
    raise error from WorkerTraceback(f"in pool worker on {device} (pid {pid}):\n{text}")


def _dumps(value: Any) -> bytes:
    """``value`` as bytes; tensors by value, a storage shared by several tensors (token embeddings of one
    batch) written once."""
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def _loads(payload: bytes) -> Any:
    # weights_only=False: the bytes come from this pool's own worker process over a private pipe, and a
    # module's output dict may hold values other than tensors.
    return torch.load(io.BytesIO(payload), weights_only=False)


# -- the worker ---------------------------------------------------------------------------------------
def _exit_with_parent() -> None:
    """Exit this process as soon as the parent process is gone (its sentinel pipe closes)."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        parent.join()
        os._exit(1)


def _worker(device: str, model: torch.nn.Module, threads: int, inputs: Any, outputs: Any) -> None:
    """Encode the chunks of ``inputs`` on ``device`` until terminated; one result per chunk on ``outputs``."""
    # Ctrl-C reaches the whole process group: the parent handles it. stop_multi_process_pool ends a worker
    # with SIGTERM's default action (no Python handler: one only runs when the main thread wakes up, and
    # a signal taken by another thread does not wake a main thread blocked reading the queue). So a worker
    # must own nothing that outlives it: its progress bars (always off) get a thread lock, where tqdm
    # would make a multiprocessing one, a named semaphore a killed worker would leave behind.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tqdm.set_lock(threading.RLock())
    threading.Thread(target=_exit_with_parent, daemon=True, name="headway-parent-watch").start()
    if torch.device(device).type == "cpu":
        torch.set_num_threads(threads)
    failure: bytes | None = None
    try:
        model.to(device)
    except Exception as err:  # noqa: BLE001 - sent back with every chunk this worker takes: the parent learns why
        failure = _error_payload(device, err)
    while True:
        job, index, texts, options, exact = inputs.get()
        if failure is not None:
            outputs.put((job, index, False, failure))
            continue
        try:
            with torch.inference_mode(), exact_matmul() if exact else contextlib.nullcontext():
                result = model._embed(texts, **options)
            outputs.put((job, index, True, _dumps(result)))
        except Exception as err:  # noqa: BLE001 - any failure goes back to the parent, which raises it again
            outputs.put((job, index, False, _error_payload(device, err)))


def _error_payload(device: str, err: BaseException) -> bytes:
    """What the parent needs to raise ``err`` again: the device, this pid, the traceback text and ``err``
    pickled (None when it cannot be rebuilt from the bytes)."""
    return pickle.dumps((device, os.getpid(), _format(err), _pickled(err)))


def _format(err: BaseException) -> str:
    return "".join(traceback.format_exception(type(err), err, err.__traceback__))


def _pickled(err: BaseException) -> bytes | None:
    """``err`` pickled, if it can be rebuilt from the bytes; None otherwise."""
    try:
        data = pickle.dumps(err)
        pickle.loads(data)
    except Exception:  # noqa: BLE001 - any failure to round-trip means: send the traceback text only
        return None
    return data


__all__ = ["WorkerTraceback", "encode_with_pool", "start_multi_process_pool", "stop_multi_process_pool"]
