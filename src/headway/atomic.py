"""Writing a checkpoint folder as a whole.

A save never writes into the folder a reader may be looking at. ``staged_folder`` hands out a hidden
staging folder next to the target (same filesystem), the save writes every file there, and on success:

1. the files of the old folder that the save did not write (a tokenizer when only the model is saved, a
   README.md, a user's own files) are carried into the staging folder, as hard links (copies where the
   filesystem refuses links), so they survive;
2. every file and folder of the staging folder is fsynced;
3. the staging folder and the target are swapped in one step with ``renameat2(RENAME_EXCHANGE)`` (Linux
   3.15+; ext4, xfs, btrfs, tmpfs, overlayfs), so a reader sees the old folder or the new one, never a
   mix; the old one is then deleted. Where the exchange is not available the fallback renames the old
   folder aside, the new one into place, then deletes the old: between those two renames (two system
   calls) the target is briefly absent, and a save killed exactly there is repaired by the next save
   into that folder, which renames the old folder back before it starts.

Saves nest: a save into a folder that is (inside) an active staging folder writes there directly, so
``model.save_pretrained`` calling ``config.save_pretrained``, or ``SentenceTransformer.save`` calling the
model's and tokenizer's saves, make one swap, not several.

Temporary names say whose they are: ``.{name}.headway-tmp-{machine}-{pid}-{start}-{random}``
(``headway-old`` for a folder renamed aside), where ``machine`` names the kernel boot and process-id
namespace (see ``machine_tag``) and ``start`` is the process start time read from ``/proc`` (0 where it
cannot be read), so a reused process id is not mistaken for the writer. Each save removes the temporaries
that dead processes of this machine left next to its target (and, through the carry, inside it); it never
touches those of a live process or of another machine.

Where a folder cannot be swapped (a mount point, the folder holding the current working directory, a
parent folder that is not writable) the staging folder is made inside the target instead and each file is
renamed into place on its own: each file is still whole, but the folder is not replaced as a whole; a
warning says so.

A target that is a symlink to a folder is resolved and the real folder is saved into (the link keeps
pointing at it); paths returned to the caller keep the name the caller gave. Two saves into one folder at
the same time are serialised around the carry-and-swap step (a lock on the parent folder), so each one's
files survive unless both wrote the same name (then the later swap wins).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fnmatch
import functools
import hashlib
import logging
import os
import re
import secrets
import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

logger = logging.getLogger(__name__)

_TEMP_RE = re.compile(
    r"^\.(?P<name>.+)\.headway-(?P<kind>tmp|old)-(?P<machine>[0-9a-f]{8})-(?P<pid>\d+)-(?P<start>\d+)-[0-9a-f]{8}$"
)
# What tempfile.mkstemp(prefix=".{name}.", suffix=".tmp") left behind in earlier headway versions.
_LEGACY_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp$")
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


# -- the folder path -------------------------------------------------------------------------------
def save_folder(save_directory: str | os.PathLike, *, create: bool = True) -> Path:
    """The folder a ``save_pretrained`` writes into, created unless ``create=False``.

    Raises:
        TypeError: ``save_directory`` is not a str or os.PathLike.
        ValueError: it is empty (which would write into the current directory) or an existing file.
    """
    if not isinstance(save_directory, (str, os.PathLike)):
        raise TypeError(f"save_directory must be a folder path (str or os.PathLike), got {save_directory!r}")
    if not os.fspath(save_directory):
        raise ValueError(
            f"save_directory {save_directory!r} is empty; expected the path of a folder to write into "
            "(use '.' to mean the current directory)"
        )
    folder = Path(save_directory)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"save_directory {str(folder)!r} is a file, expected a folder")
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    return folder


# -- temporary names and their owners --------------------------------------------------------------
def _proc_stat(pid: int) -> list[str] | None:
    """Fields of ``/proc/{pid}/stat`` after the command name (state first), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode("ascii", "replace")
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def _start_time(pid: int) -> int:
    fields = _proc_stat(pid)
    return int(fields[19]) if fields is not None and len(fields) > 19 else 0  # field 22 of proc(5)


_own: tuple[int, int] = (-1, 0)  # (pid, start time) of this process, recomputed after a fork


@functools.cache
def machine_tag() -> str:
    """8 hex digits naming this kernel boot and process-id namespace: where a process id means something.

    A temporary made on another machine (a shared filesystem) or in another container is never judged by
    the process ids of this one.
    """
    parts = []
    for read in (
        lambda: Path("/proc/sys/kernel/random/boot_id").read_text().strip(),
        lambda: os.readlink("/proc/self/ns/pid"),
    ):
        try:
            parts.append(read())
        except OSError:
            parts.append(socket.gethostname())
    return hashlib.blake2b("/".join(parts).encode(), digest_size=4).hexdigest()


def _own_tag() -> str:
    global _own
    pid = os.getpid()
    if _own[0] != pid:
        _own = (pid, _start_time(pid))
    return f"{machine_tag()}-{pid}-{_own[1]}"


def temp_name(name: str, kind: str = "tmp") -> str:
    """A hidden name next to ``name`` that later saves recognise as this process's temporary."""
    return f".{name}.headway-{kind}-{_own_tag()}-{secrets.token_hex(4)}"


def _owner_alive(pid: int, start: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        pass
    except OSError:
        return True  # cannot tell: keep its files
    fields = _proc_stat(pid)
    if fields is None:
        return True
    if fields[0] in ("Z", "X"):  # a zombie writes nothing more
        return False
    return not (start and len(fields) > 19 and int(fields[19]) != start)  # the id was reused


def is_temporary(name: str) -> bool:
    """Whether ``name`` is a headway temporary (any owner)."""
    return _TEMP_RE.match(name) is not None


def _stale(name: str) -> bool:
    m = _TEMP_RE.match(name)
    return (
        m is not None and m["machine"] == machine_tag() and not _owner_alive(int(m["pid"]), int(m["start"]))
    )


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def remove_stale_temporaries(folder: Path, *, restore: str | None = None) -> list[Path]:
    """Remove the headway temporaries in ``folder`` (not recursively) whose writer is dead.

    Args:
        folder: where to look.
        restore: a folder name; when ``folder/restore`` is missing and a dead save had renamed it aside
            (``.{restore}.headway-old-...``), that old folder is renamed back first.

    Returns:
        The paths removed.
    """
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    stale = [n for n in names if _stale(n)]
    if restore is not None and not os.path.lexists(folder / restore):
        for n in stale:
            m = _TEMP_RE.match(n)
            if m["kind"] == "old" and m["name"] == restore:
                logger.warning("Restoring %s, left renamed aside by a save that was killed", folder / restore)
                os.rename(folder / n, folder / restore)
                stale.remove(n)
                break
    for n in stale:
        logger.info("Removing %s, left by a save that did not finish", folder / n)
        _remove(folder / n)
    return [folder / n for n in stale]


# -- fsync ------------------------------------------------------------------------------------------
def fsync_path(path: Path) -> None:
    """Flush a file's or folder's data and entry list to disk (no-op where a folder cannot be opened)."""
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if path.is_dir() else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as err:
        if err.errno not in (errno.EINVAL, errno.EBADF):  # some filesystems refuse fsync on a folder
            raise
    finally:
        os.close(fd)


def _fsync_tree(root: Path, *, files: bool = True) -> None:
    """fsync every file (unless ``files=False``) and every folder under ``root``."""
    for dirpath, _, filenames in os.walk(root):
        for name in filenames if files else ():
            path = Path(dirpath, name)
            if not path.is_symlink():
                fsync_path(path)
        fsync_path(Path(dirpath))


# -- single files ------------------------------------------------------------------------------------
@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is fsynced and replaces ``path`` in one rename.

    Inside a staging folder the fsync is left to the folder's commit.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(temp_name(path.name))
    try:
        yield tmp
        staged = _active_for(os.path.realpath(path.parent)) is not None
        if not staged:
            fsync_path(tmp)
        os.replace(tmp, path)
        if not staged:
            fsync_path(path.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through ``atomic_path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


# -- staged folders ---------------------------------------------------------------------------------
class StagedFolder:
    """Where a save writes (``path``) and where its files will be once committed (``final``).

    Attributes:
        path: the folder to write into now.
        final: the folder the caller named; the files appear there when the outermost save commits.
    """

    def __init__(
        self, path: Path, final: Path, root: StagedFolder | None = None, rel: PurePosixPath | None = None
    ) -> None:
        self.path = path
        self.final = final
        self._root = root or self
        self._rel = rel or PurePosixPath()
        self.discarded: set[str] = set()  # glob patterns relative to the root, kept on the root only

    def discard(self, *patterns: str) -> None:
        """Files of the old folder matching these glob patterns (relative to ``path``) are not kept.

        For files this save owns but may not rewrite: old weight shards when the new save has a
        different number of them, an old chat template when the tokenizer no longer has one.
        """
        self._root.discarded.update(str(self._rel / p) for p in patterns)

    def view(self, real: str) -> StagedFolder:
        """The same staging seen from ``real``, a folder at or inside it."""
        rel = PurePosixPath(Path(os.path.relpath(real, self.path)).as_posix())
        if str(rel) == ".":
            return self
        return StagedFolder(Path(real), self.final / rel, root=self._root, rel=self._rel / rel)


_active: dict[str, StagedFolder] = {}
_active_lock = threading.Lock()


def _active_for(real: str) -> StagedFolder | None:
    with _active_lock:
        for root, stage in _active.items():
            if real == root or real.startswith(root + os.sep):
                return stage.view(real)
    return None


def _swap_unavailable(real: Path) -> str | None:
    """Why ``real`` cannot be replaced by a rename, or None when it can."""
    if real.is_dir() and os.path.ismount(real):
        return "it is a mount point"
    with contextlib.suppress(OSError):
        cwd = os.path.realpath(os.getcwd())
        if cwd == str(real) or cwd.startswith(str(real) + os.sep):
            return "it holds the current working directory"
    parent = real.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"its parent folder {str(parent)!r} is not writable"
    return None


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on ``folder`` (flock on the folder itself: no lock file to leave behind)."""
    try:
        import fcntl

        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except (ImportError, OSError):
        yield
        return
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


@contextmanager
def staged_folder(save_directory: str | os.PathLike, *, carry: bool = True) -> Iterator[StagedFolder]:
    """Stage a save into ``save_directory``; on success the folder is replaced as a whole.

    Args:
        save_directory: the folder to save into (created if missing).
        carry: keep the files of the old folder that this save does not write. False replaces the folder
            with exactly what was written (a Trainer checkpoint).

    Yields:
        The ``StagedFolder`` to write into (``.path``). Nested inside another save's staging folder it is
        that staging folder (or a sub-folder of it), and nothing is swapped on exit.

    Raises:
        TypeError, ValueError: see ``save_folder``. If the body raises, the staging folder is removed and
        the old folder is left as it was.
    """
    final = save_folder(save_directory, create=False)
    real = os.path.realpath(final)
    nested = _active_for(real)
    if nested is not None:
        Path(real).mkdir(parents=True, exist_ok=True)
        yield nested
        return
    target = Path(real)
    reason = _swap_unavailable(target)
    if reason is None:
        target.parent.mkdir(parents=True, exist_ok=True)
        with _locked(target.parent):  # two saves must not both restore or remove the same leftover
            remove_stale_temporaries(target.parent, restore=target.name)
        staging = target.parent / temp_name(target.name)
    else:
        target.mkdir(parents=True, exist_ok=True)
        with _locked(target):
            remove_stale_temporaries(target)
        staging = target / temp_name(target.name)
    staging.mkdir()
    stage = StagedFolder(staging, final)
    with _active_lock:
        _active[str(staging)] = stage
    try:
        try:
            yield stage
        finally:
            with _active_lock:
                del _active[str(staging)]
        if reason is None:
            _commit_swap(staging, target, carry=carry, discarded=stage.discarded)
        else:
            logger.warning("Saving into %s file by file, not as a whole: %s", target, reason)
            _commit_in_place(staging, target, carry=carry, discarded=stage.discarded)
    finally:
        _remove(staging)  # the failed save's files, or after a swap the old folder


def _commit_swap(staging: Path, target: Path, *, carry: bool, discarded: set[str]) -> None:
    _fsync_tree(staging)  # the files written; carried files are already on disk
    with _locked(target.parent):
        if target.is_dir():
            shutil.copymode(target, staging)
            if carry:
                _carry(target, staging, discarded, PurePosixPath())
                _fsync_tree(staging, files=False)
        if not os.path.lexists(target):
            os.rename(staging, target)
        elif not _exchange(staging, target):
            aside = target.with_name(temp_name(target.name, "old"))
            os.rename(target, aside)
            # The brief window: `target` is absent until the next rename (see the module docstring).
            try:
                os.rename(staging, target)
            except BaseException:
                os.rename(aside, target)
                raise
            os.rename(aside, staging)  # so that the caller's cleanup deletes the old folder
        fsync_path(target.parent)


@functools.cache
def _renameat2() -> Any:
    """glibc's renameat2 (2.28+), or None."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    return renameat2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically with renameat2(RENAME_EXCHANGE); False where that is not supported."""
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EPERM):
        return False
    raise OSError(err, f"could not swap {a} and {b}: {os.strerror(err)}")


def _is_discarded(rel: PurePosixPath, discarded: set[str]) -> bool:
    return any(fnmatch.fnmatchcase(str(rel), pattern) for pattern in discarded)


def _carry(old: Path, new: Path, discarded: set[str], rel: PurePosixPath) -> None:
    """Hard-link (or copy) into ``new`` what ``old`` holds and ``new`` does not, folders recursively."""
    written = set(os.listdir(new))
    for entry in os.scandir(old):
        name = entry.name
        legacy = _LEGACY_TEMP_RE.match(name)
        if is_temporary(name) or (legacy and legacy["name"] in written):
            continue  # a temporary (of a dead save, or of one racing this swap): not part of the folder
        src, dst, sub = Path(entry.path), new / name, rel / name
        if entry.is_dir(follow_symlinks=False):
            if name in written:
                if dst.is_dir() and not dst.is_symlink():  # else the new save wrote a file of that name
                    _carry(src, dst, discarded, sub)
            elif not _is_discarded(sub, discarded):
                dst.mkdir()
                shutil.copymode(src, dst)
                _carry(src, dst, discarded, sub)
                if not any(dst.iterdir()) and any(os.scandir(src)):
                    dst.rmdir()  # everything in it was discarded
        elif name not in written and not _is_discarded(sub, discarded):
            if entry.is_symlink():
                os.symlink(os.readlink(src), dst)
            elif entry.is_file(follow_symlinks=False):
                try:
                    os.link(src, dst, follow_symlinks=False)
                except OSError:  # another filesystem, or links refused: copy
                    shutil.copy2(src, dst)
            else:
                logger.warning("Not keeping %s in the saved folder: not a file, folder or link", src)


def _commit_in_place(staging: Path, target: Path, *, carry: bool, discarded: set[str]) -> None:
    """Rename each staged file into ``target`` (JSON last, so a config names weights already there)."""
    _fsync_tree(staging)
    files = sorted(
        (p for p in staging.rglob("*") if not p.is_dir() or p.is_symlink()),
        key=lambda p: (p.suffix == ".json", str(p)),
    )
    written = {PurePosixPath(p.relative_to(staging).as_posix()) for p in files}
    for src in files:
        dst = target / src.relative_to(staging)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.is_dir() and not dst.is_symlink():
            shutil.rmtree(dst)
        os.replace(src, dst)
    for dirpath, dirnames, filenames in os.walk(target):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if not is_temporary(d)]
        for name in filenames:
            rel = PurePosixPath((here / name).relative_to(target).as_posix())
            if rel not in written and not is_temporary(name) and (not carry or _is_discarded(rel, discarded)):
                (here / name).unlink()
        fsync_path(here)
