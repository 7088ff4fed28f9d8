"""Reading a sentence-transformers folder: where it is, its modules.json entries, the Hub options, and the
facts a saved folder records (format and headway versions, the default device)."""

from __future__ import annotations

import os
import warnings
from typing import Any

import torch

from headway.hub import Checkpoint, pop_hub_kwargs, resolve

FORMAT_VERSION = "5.0.0"  # the sentence-transformers folder format that save() writes


def default_device() -> str:
    """cuda, then mps, then cpu: the first one available."""
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def refuse_file_path(name: str | os.PathLike) -> None:
    """A NotADirectoryError for an existing file: a model is a folder or a Hub id, and a file named like a
    Hub id must not silently load that repository."""
    if os.path.isfile(os.fspath(name)):
        raise NotADirectoryError(
            f"{os.fspath(name)!r} is a file, not a directory: a model is a folder or a Hub id"
        )


def resolve_checkpoint(name: str | os.PathLike, hub_kwargs: dict) -> Checkpoint:
    """Resolve ``name``; a bare name (no '/') is tried as ``sentence-transformers/<name>`` first."""
    refuse_file_path(name)
    text = os.fspath(name)
    if "/" not in text and not os.path.isdir(text):
        try:
            return resolve(f"sentence-transformers/{text}", **hub_kwargs)
        except FileNotFoundError:
            pass
    return resolve(name, **hub_kwargs)


def check_module_entries(entries: list[Any], checkpoint: Checkpoint) -> None:
    """Each modules.json entry is an object with a string ``type`` (and string ``path`` / ``name`` if given)."""
    for i, entry in enumerate(entries):
        where = f"modules.json of {checkpoint.name!r}: entry {i}"
        if not isinstance(entry, dict):
            raise ValueError(  # noqa: TRY004 - bad file content, not a bad argument
                f"{where} must be an object with 'name', 'path' and 'type', got {type(entry).__name__} {entry!r:.80}"
            )
        if not isinstance(entry.get("type"), str):
            raise ValueError(  # noqa: TRY004 - bad file content
                f"{where} must have a 'type' string (the module class), got {entry.get('type')!r:.80}"
            )
        for key in ("path", "name"):
            if key in entry and not isinstance(entry[key], str if key == "path" else (str, int)):
                raise ValueError(f"{where}: {key!r} must be a string, got {entry[key]!r:.80}")
        name = str(entry.get("name", i))
        if not name or "." in name:  # a module's attribute name
            raise ValueError(f"{where}: 'name' must be a non-empty name without '.', got {name!r:.80}")
    names = [str(entry.get("name", i)) for i, entry in enumerate(entries)]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:  # a later module would silently replace an earlier one
        raise ValueError(f"modules.json of {checkpoint.name!r} names modules {repeated} more than once")


def hub_options(kwargs: dict[str, Any], owner: str) -> dict[str, Any]:
    """The Hub options of ``kwargs`` (popped); ``use_auth_token`` is the deprecated name of ``token``.

    Raises:
        ValueError: both ``token`` and ``use_auth_token`` given.
        TypeError: a keyword that is not a Hub option.
    """
    if "cache_folder" in kwargs:
        kwargs["cache_dir"] = kwargs.pop("cache_folder")
    if kwargs.get("cache_dir") is None:
        kwargs.pop("cache_dir", None)
    if kwargs.get("use_auth_token") is not None:
        warnings.warn(
            "The `use_auth_token` argument is deprecated; use `token` instead.", FutureWarning, stacklevel=3
        )
        if kwargs.get("token") is not None:
            raise ValueError("Both `token` and `use_auth_token` were given; pass `token` only.")
        kwargs["token"] = kwargs.pop("use_auth_token")
    kwargs.pop("use_auth_token", None)
    hub_kwargs = pop_hub_kwargs(kwargs)
    if kwargs:
        raise TypeError(f"{owner}() got unexpected keyword arguments: {sorted(kwargs)}")
    return hub_kwargs


def headway_version() -> str:
    from headway import __version__

    return __version__


__all__ = [
    "FORMAT_VERSION",
    "check_module_entries",
    "default_device",
    "headway_version",
    "hub_options",
    "refuse_file_path",
    "resolve_checkpoint",
]
