"""Reading and writing weight files.

safetensors first (one file or shards listed in ``*.index.json``), opened lazily so that a tensor is
only read when the model asks for it. PyTorch ``.bin`` files are read only through
``torch.load(weights_only=True)``, which refuses pickled code. Writes go through ``headway.atomic``:
a save stages its files in a hidden folder and swaps the whole folder into place.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .atomic import atomic_path, atomic_write_text, save_folder, staged_folder
from .jsonfile import parse_json, read_json, type_name

if TYPE_CHECKING:
    import torch

    from headway.hub import Checkpoint

logger = logging.getLogger(__name__)

SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
WEIGHTS_NAME = "pytorch_model.bin"
WEIGHTS_INDEX_NAME = "pytorch_model.bin.index.json"


# -- reading ----------------------------------------------------------------------------------------
class CheckpointError(ValueError):
    """A weight file that cannot be read: truncated, corrupt, or not a weight file at all."""


class LazyStateDict(Mapping):
    """A read-only mapping name -> tensor over one or more weight files, read on access."""

    def __init__(self, files: dict[str, Path]) -> None:
        self._files = files  # tensor name -> file holding it
        self._handles: dict[Path, Any] = {}

    def __getitem__(self, key: str) -> torch.Tensor:
        path = self._files[key]
        handle = self._handles.get(path)
        if handle is None:
            handle = self._handles[path] = _open_file(path)
        try:
            return handle.get_tensor(key) if hasattr(handle, "get_tensor") else handle[key]
        except Exception as err:  # noqa: BLE001 - safetensors reports a short read as a generic error
            raise CheckpointError(f"Could not read tensor {key!r} from {path}: it looks truncated or corrupt ({err})")

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)

    @property
    def files(self) -> dict[str, Path]:
        """Tensor name -> the file holding it."""
        return dict(self._files)

    def close(self) -> None:
        self._handles.clear()


def _open_file(path: Path) -> Any:
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            return safe_open(str(path), framework="pt")
        except Exception as err:  # noqa: BLE001 - any failure here means an unreadable file
            raise CheckpointError(f"{path} is not a readable safetensors file (truncated or corrupt?): {err}")
    return _torch_load(path)


def _torch_load(path: Path) -> dict[str, torch.Tensor]:
    import pickle
    import zipfile

    import torch

    try:
        # mmap needs the zip format of torch.save; older (legacy) files are read whole.
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path} holds more than tensors (pickled code or objects) and was refused: headway reads .bin "
            f"files only with torch.load(weights_only=True). Convert it to safetensors. ({err})"
        ) from None
    except Exception as err:  # noqa: BLE001 - any failure here means an unreadable file
        raise CheckpointError(f"{path} is not a readable PyTorch weight file (truncated or corrupt?): {err}")
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} does not hold a state dict (got {type(state).__name__})")
    return state


def _safetensors_keys(path: Path) -> list[str]:
    """Tensor names in a safetensors file, read from its header alone; checks the file is whole."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if n <= 0 or 8 + n > size:
                raise ValueError(f"header length {n} does not fit in a {size}-byte file")
            header = parse_json(f.read(n), source=path, what="safetensors header")
        for key, entry in header.items():
            if key != "__metadata__":
                offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
                if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)):
                    raise ValueError(f"the header entry {key!r} has no data_offsets [begin, end] of two integers")
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
        if 8 + n + end > size:
            raise ValueError(f"the header promises {8 + n + end} bytes but the file has {size}")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"{path} is not a readable safetensors file (truncated or corrupt?): {err}") from None
    return [k for k in header if k != "__metadata__"]


def _index_files(checkpoint: Checkpoint, index_path: Path) -> dict[str, Path]:
    try:
        index = read_json(index_path, what="shard index")
    except ValueError as err:
        raise CheckpointError(str(err)) from None
    if "weight_map" not in index:
        raise CheckpointError(f"shard index {str(index_path)!r} has no weight_map (tensor name -> shard file)")
    weight_map = index["weight_map"]
    if not isinstance(weight_map, dict):
        raise CheckpointError(
            f"shard index {str(index_path)!r}: weight_map must be an object (tensor name -> shard file), "
            f"got {type_name(weight_map)}"
        )
    shards: dict[str, Path] = {}
    for key, name in weight_map.items():
        if not isinstance(name, str) or name not in shards:  # each shard checked (and fetched) once
            where = f"shard index {str(index_path)!r} (weight_map entry {key!r})"
            shards[name] = checkpoint.named_file(name, named_in=where)
    return {key: shards[name] for key, name in weight_map.items()}


def find_weights(checkpoint: Checkpoint, *, use_safetensors: bool | None = None) -> dict[str, Path]:
    """Map each tensor name of a checkpoint to the file that holds it (safetensors preferred)."""
    candidates: list[tuple[str, bool]] = []  # (file name, is index)
    if use_safetensors is not False:
        candidates += [(SAFE_WEIGHTS_NAME, False), (SAFE_WEIGHTS_INDEX_NAME, True)]
    if use_safetensors is not True:
        candidates += [(WEIGHTS_NAME, False), (WEIGHTS_INDEX_NAME, True)]
    for name, is_index in candidates:
        path = checkpoint.get(name)
        if path is None:
            continue
        if is_index:
            return _index_files(checkpoint, path)
        if path.suffix == ".safetensors":
            return {key: path for key in _safetensors_keys(path)}
        return {key: path for key in _torch_load(path)}
    names = ", ".join(name for name, _ in candidates)
    raise FileNotFoundError(
        f"{checkpoint.name!r} has no weights: none of {names} was found. Looked in:\n"
        + "\n".join(f"  - {s}" for s in checkpoint.searched)
    )


def load_state_dict(checkpoint: Checkpoint, *, use_safetensors: bool | None = None) -> LazyStateDict:
    return LazyStateDict(find_weights(checkpoint, use_safetensors=use_safetensors))


# -- writing ----------------------------------------------------------------------------------------
def _parse_size(size: int | str) -> int:
    if isinstance(size, int):
        return size
    units = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}
    text = size.strip().upper()
    for unit, factor in units.items():
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    raise ValueError(f"max_shard_size must be an int of bytes or a string like '5GB', got {size!r}")


def save_state_dict(
    state: dict[str, torch.Tensor], folder: str | os.PathLike, *, max_shard_size: int | str = "5GB"
) -> list[Path]:
    """Write ``state`` as model.safetensors, or as shards plus an index when it exceeds the limit.

    The folder is replaced as a whole (``headway.atomic.staged_folder``; inside another save's staging
    folder the files join that save). Weight files of an earlier save that this one does not rewrite
    (a different shard count) are not kept; other files of the folder are.

    Returns:
        The paths written, under ``folder`` as given.
    """
    from safetensors.torch import save_file

    limit = _parse_size(max_shard_size)
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for key, tensor in state.items():
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > limit:
            shards.append({})
            size = 0
        shards[-1][key] = tensor.contiguous()
        size += nbytes
    names = (
        [SAFE_WEIGHTS_NAME]
        if len(shards) == 1
        else [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    )
    with staged_folder(folder) as stage:
        stage.discard(SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME, "model-*-of-*.safetensors")
        # The staging folder is private to this save: files are written there directly.
        for name, shard in zip(names, shards):
            save_file(shard, str(stage.path / name), metadata={"format": "pt"})
        if len(shards) > 1:
            total = sum(t.numel() * t.element_size() for t in state.values())
            index = {
                "metadata": {"total_size": total},
                "weight_map": {key: name for name, shard in zip(names, shards) for key in shard},
            }
            text = json.dumps(index, indent=2, sort_keys=True) + "\n"
            (stage.path / SAFE_WEIGHTS_INDEX_NAME).write_text(text, encoding="utf-8")
            names.append(SAFE_WEIGHTS_INDEX_NAME)
    return [Path(folder) / name for name in names]


__all__ = [
    "SAFE_WEIGHTS_INDEX_NAME",
    "SAFE_WEIGHTS_NAME",
    "WEIGHTS_INDEX_NAME",
    "WEIGHTS_NAME",
    "CheckpointError",
    "LazyStateDict",
    "atomic_path",
    "atomic_write_text",
    "find_weights",
    "load_state_dict",
    "save_folder",
    "save_state_dict",
    "staged_folder",
]
