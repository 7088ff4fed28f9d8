"""Multi-process training: process-group set-up, model wrapping (DDP / FSDP), collectives, samplers.

A script launched with ``torchrun --nproc_per_node=N`` gets ``RANK`` / ``LOCAL_RANK`` / ``WORLD_SIZE`` in
its environment; the Trainer reads them, joins the process group (gloo on CPU, nccl on GPU) and wraps
the model. Everything here is a no-op in a single process.

Shutting down cleanly: a gloo collective hands its tensors to one of the process group's worker threads,
which drops its references a moment *after* the caller's ``wait()`` returns (measured: about one
collective in five). If the caller has already dropped its own references by then, torch keeps the
tensor's Python object alive for the worker, and the worker must take the GIL to free it. When a loaded
machine preempts that worker until its rank is leaving (rank 1 after FSDP's full state dict, whose
gathered tensors it drops at once), the worker waits for the GIL while the interpreter starts
finalising; Python then ends the thread with ``pthread_exit`` inside a C++ destructor and the process
aborts with "terminate called without an active exception" (reproduced in
tests/training/test_distributed_shutdown.py). ``destroy_process_group`` alone does not prevent it: DDP
and FSDP keep the group and its threads alive. So at exit, before finalisation, :func:`_shutdown_at_exit`
waits until gloo's worker threads are parked, holding nothing, then destroys the group headway joined;
and headway's own collectives wait until gloo has let go of the tensors they handed it (:func:`_settled`).
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import pickle
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Sampler

logger = logging.getLogger(__name__)


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def init_distributed(args: Any) -> None:
    """Join the process group torchrun describes (once per process); nothing when WORLD_SIZE is 1."""
    if args.world_size <= 1 or dist.is_initialized():
        return
    device = args.device
    backend = args.ddp_backend or ("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend, timeout=timedelta(seconds=args.ddp_timeout))
    atexit.register(_shutdown_at_exit)
    logger.info("Joined process group: rank %d of %d (%s)", dist.get_rank(), dist.get_world_size(), backend)


def _shutdown_at_exit() -> None:
    """Park gloo's worker threads, then destroy the process group :func:`init_distributed` joined; both
    before the interpreter finalises (see the module docstring).

    The group is left alone when the script ends on an uncaught exception: the other ranks may still be
    inside a collective, and tearing the group down under them could hang this process.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    _park_gloo_threads()
    if getattr(sys, "last_value", None) is not None:
        return
    try:
        dist.destroy_process_group()
    except Exception:  # exiting anyway: a failed clean-up must not replace the script's own outcome
        logger.warning("Could not destroy the process group at exit", exc_info=True)


_GLOO_WORKER = "pt_gloo_runloop"  # the name torch gives a gloo process group's worker threads


def _park_gloo_threads(timeout: float = 10.0) -> bool:
    """Wait, with the GIL released, until every gloo worker thread of this process is parked: asleep, and
    not woken once while this thread slept without the GIL. False on timeout.

    A worker that finished a collective but was preempted before dropping its references shows as
    running; one waiting for the GIL is woken when this thread releases it; neither passes. A worker
    blocked inside a collective (a peer that never joins) counts as parked: waiting on it could hang.
    Reads ``/proc`` (Linux); where that is missing it only sleeps a moment.
    """
    tasks = "/proc/self/task"
    if not os.path.isdir(tasks):
        time.sleep(0.05)
        return False
    deadline = time.monotonic() + timeout
    before = _thread_activity(tasks, _GLOO_WORKER)
    while time.monotonic() < deadline:
        time.sleep(0.002)
        after = _thread_activity(tasks, _GLOO_WORKER)
        if after == before and all(state == "S" for state, _ in after.values()):
            return True
        before = after
    logger.warning("gloo's worker threads were still busy %.0f s after the script ended", timeout)
    return False


def _thread_activity(tasks: str, name: str) -> dict[str, tuple[str, int]]:
    """``{thread id: (scheduler state, context switches so far)}`` of this process's threads named ``name``."""
    activity = {}
    for tid in os.listdir(tasks):
        try:
            with open(f"{tasks}/{tid}/comm") as f:
                if f.read().strip() != name:
                    continue
            with open(f"{tasks}/{tid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            with open(f"{tasks}/{tid}/status") as f:
                switches = sum(int(line.split()[1]) for line in f if "ctxt_switches" in line)
            activity[tid] = (state, switches)
        except (OSError, ValueError, IndexError):  # the thread ended meanwhile
            continue
    return activity


def wrap_model(model: nn.Module, args: Any, ddp_kwargs: dict[str, Any] | None = None) -> nn.Module:
    """DistributedDataParallel with ``ddp_kwargs`` (default: the process's GPU and
    ``args.ddp_find_unused_parameters``), or FSDP when ``args.fsdp`` asks for it; the model itself in one
    process.

    FSDP is PyTorch's ``fully_shard`` (FSDP2, which also runs on CPU with gloo): each block of every
    ``nn.ModuleList`` (the transformer layers) is sharded, then the whole model. It changes the model in
    place, so the returned module is ``model`` itself.
    """
    if world_size() <= 1:
        return model
    if args.fsdp:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import CPUOffloadPolicy, fully_shard

        mesh = init_device_mesh(args.device.type, (world_size(),))
        options: dict[str, Any] = {"mesh": mesh, "reshard_after_forward": "shard_grad_op" not in args.fsdp}
        if "offload" in args.fsdp:
            options["offload_policy"] = CPUOffloadPolicy()
        for module in list(model.modules()):
            if isinstance(module, nn.ModuleList):
                for block in module:
                    fully_shard(block, **options)
        fully_shard(model, **options)
        return model
    return nn.parallel.DistributedDataParallel(model, **(ddp_options(args) if ddp_kwargs is None else ddp_kwargs))


def ddp_options(args: Any) -> dict[str, Any]:
    """``DistributedDataParallel``'s options from training arguments: the process's GPU (none on CPU), and
    ``ddp_find_unused_parameters``."""
    return {
        "device_ids": [args.device.index] if args.device.type == "cuda" else None,
        "find_unused_parameters": bool(args.ddp_find_unused_parameters),
    }


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside DDP / FSDP / torch.compile wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def is_fsdp(model: nn.Module) -> bool:
    """Whether ``model`` was sharded by :func:`wrap_model` (``fully_shard``)."""
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def full_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The unsharded weights of an FSDP model on rank 0 (empty elsewhere); collective."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def full_optimizer_state_dict(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    return get_optimizer_state_dict(
        model, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
    )


def load_full_state_dicts(
    model: nn.Module,
    weights: dict[str, torch.Tensor] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    optimizer_state: dict[str, Any] | None = None,
) -> None:
    """Load full (unsharded) weights and/or optimizer state into an FSDP model, every rank its shard."""
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    options = StateDictOptions(full_state_dict=True, strict=False)
    if weights is not None:
        set_model_state_dict(model, weights, options=options)
    if optimizer is not None and optimizer_state is not None:
        set_optimizer_state_dict(model, optimizer, optimizer_state, options=options)


def _settled(launch: Callable[[], Any], tensors: Sequence[torch.Tensor], timeout: float = 60.0) -> None:
    """Run the collective ``launch()`` returns (``async_op=True``), wait for it, and on gloo also wait
    until its worker thread has dropped its references to ``tensors`` (see the module docstring).

    Afterwards only the caller holds these tensors, so freeing them never needs a gloo thread to take
    the GIL. The wait ends once each tensor's use count is back where it was before the call.
    """
    counts = [t._use_count() for t in tensors]
    work = launch()
    work.wait()
    del work
    if "gloo" not in str(dist.get_backend()) or any(t.device.type != "cpu" for t in tensors):
        return  # only gloo runs CPU collectives on its own worker threads
    deadline = time.monotonic() + timeout
    while any(t._use_count() > n for t, n in zip(tensors, counts)):
        if time.monotonic() > deadline:  # something else holds a tensor: do not wait forever
            logger.warning("gloo still holds a collective's tensors after %.0f s", timeout)
            return
        time.sleep(0)  # yield (and the GIL) to the worker thread


def _object_device() -> torch.device:
    """Where object collectives put their byte tensors: the current GPU with nccl, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce(tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """Sum (or mean) of ``tensor`` over the processes; the tensor itself in one process."""
    if world_size() <= 1:
        return tensor
    out = tensor.clone()
    _settled(lambda: dist.all_reduce(out, op=dist.ReduceOp.SUM, async_op=True), [out])
    return out / world_size() if op == "mean" else out


def all_gather_objects(obj: Any) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` (picklable objects, exchanged between this job's processes)."""
    if world_size() <= 1:
        return [obj]
    device = _object_device()
    payload = torch.frombuffer(bytearray(pickle.dumps(obj)), dtype=torch.uint8).to(device)
    size = torch.tensor([payload.numel()], dtype=torch.int64, device=device)
    sizes = [torch.zeros_like(size) for _ in range(world_size())]
    _settled(lambda: dist.all_gather(sizes, size, async_op=True), [size, *sizes])
    lengths = [int(n.item()) for n in sizes]
    padded = torch.zeros(max(lengths), dtype=torch.uint8, device=device)
    padded[: payload.numel()] = payload
    parts = [torch.empty_like(padded) for _ in lengths]
    _settled(lambda: dist.all_gather(parts, padded, async_op=True), [padded, *parts])
    return [pickle.loads(part[:n].cpu().numpy().tobytes()) for part, n in zip(parts, lengths)]


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every process (picklable)."""
    if world_size() <= 1:
        return obj
    device = _object_device()
    payload = pickle.dumps(obj) if rank() == src else b""
    size = torch.tensor([len(payload)], dtype=torch.int64, device=device)
    _settled(lambda: dist.broadcast(size, src=src, async_op=True), [size])
    data = torch.zeros(int(size.item()), dtype=torch.uint8, device=device)
    if rank() == src:
        data.copy_(torch.frombuffer(bytearray(payload), dtype=torch.uint8))
    _settled(lambda: dist.broadcast(data, src=src, async_op=True), [data])
    return pickle.loads(data.cpu().numpy().tobytes())


def barrier() -> None:
    """Wait for every process (the barrier's tensor is made and freed inside torch, not handed by us)."""
    if world_size() > 1:
        dist.barrier()


# -- samplers -------------------------------------------------------------------------------------------
class EpochSampler(Sampler[int]):
    """Indices for one process: a permutation drawn from ``seed + epoch`` (or the natural order), padded
    to a multiple of ``num_replicas`` and strided by rank, as ``DistributedSampler`` does.

    ``set_epoch`` picks the epoch; ``skip`` drops that many leading indices of this epoch (to resume
    mid-epoch without loading the batches already consumed). ``lengths`` + ``group_size`` group
    examples of similar length (shuffled megabatches of 50 batches, each sorted longest first).
    """

    def __init__(
        self,
        num_samples: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        drop_last: bool = False,
        lengths: Sequence[int] | None = None,
        group_size: int | None = None,
    ) -> None:
        self.n = num_samples
        self.shuffle = shuffle
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.drop_last = drop_last
        self.lengths = lengths
        self.group_size = group_size
        self.epoch = 0
        self.skip = 0
        if drop_last and num_samples % num_replicas:
            self.per_replica = num_samples // num_replicas
        else:
            self.per_replica = math.ceil(num_samples / num_replicas)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _order(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.n))
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        if self.lengths is None:
            return torch.randperm(self.n, generator=g).tolist()
        return length_grouped_indices(self.lengths, self.group_size or 1, g)

    def __iter__(self) -> Iterator[int]:
        order = self._order()
        total = self.per_replica * self.num_replicas
        if total > len(order):
            order += (order * math.ceil(total / len(order)))[: total - len(order)]
        order = order[:total][self.rank : total : self.num_replicas]
        return iter(order[self.skip :])

    def __len__(self) -> int:
        return max(0, self.per_replica - self.skip)


def length_grouped_indices(
    lengths: Sequence[int], batch_size: int, generator: torch.Generator, mega_batch_mult: int = 50
) -> list[int]:
    """A random permutation where each run of ``50 * batch_size`` indices is sorted by length (longest
    first), and the longest example of all leads (so an out-of-memory shows at the first step)."""
    order = torch.randperm(len(lengths), generator=generator).tolist()
    size = mega_batch_mult * batch_size
    megabatches = [
        sorted(order[i : i + size], key=lambda j: lengths[j], reverse=True)
        for i in range(0, len(order), size)
    ]
    if megabatches:
        heads = [lengths[m[0]] for m in megabatches]
        longest = max(range(len(heads)), key=heads.__getitem__)
        megabatches[0][0], megabatches[longest][0] = megabatches[longest][0], megabatches[0][0]
    return [i for m in megabatches for i in m]
