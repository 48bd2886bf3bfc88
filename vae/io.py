"""Atomic file output: a reader (or a killed run) never sees a half-written file or folder."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

# A failed write (full disk, quota, read-only file system) raises OSError without a file name;
# an atomic writer knows which output it was writing, and says so.
_WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO}


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _prefix(path: Path) -> str:
    """How the temporary files and folders of `path` begin: `.<name>.` beside it."""
    return f".{path.name}."


@contextlib.contextmanager
def _naming(path: Path) -> Iterator[None]:
    """Re-raise a write error about a temporary of `path` (or about no file) as one about `path`: the
    user knows the output, not the temporary name (a read-only folder fails on creating it)."""
    try:
        yield
    except OSError as err:
        unnamed = err.filename is None and err.errno in _WRITE_ERRORS
        ours = err.filename is not None and str(err.filename).startswith(str(path.parent / _prefix(path)))
        if unnamed or ours:
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _naming(path):
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_prefix(path), suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp)
    try:
        with _naming(path):
            yield tmp
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would make outputs private
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder beside `path`; it replaces `path` as a whole only if the block succeeds.

    On any failure the previous `path` is left exactly as it was, so a stage's outputs are never a mix
    of two runs. The swap is two renames (old aside, new in): a kill between them leaves no `path` but
    the previous one beside it as `.<name>.*.olddir`, never half of each.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmpdir"):  # left by a killed run
        if re.fullmatch(rf"\.{re.escape(path.name)}\.[a-z0-9_]+\.tmpdir", stale.name):
            shutil.rmtree(stale, ignore_errors=True)
    with _naming(path):
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=_prefix(path), suffix=".tmpdir"))
    try:
        with _naming(path):
            yield tmp
            os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp's 0700 would make outputs private
        if not (path.exists() or path.is_symlink()):
            os.rename(tmp, path)
            return
        with _naming(path):
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=_prefix(path), suffix=".olddir"))
        old.rmdir()
        os.rename(path, old)
        try:
            os.rename(tmp, path)
        except BaseException:
            os.rename(old, path)
            raise
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # nothing left once renamed into place


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_lines(path: str | os.PathLike, lines) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(line)
            f.write("\n")


def write_json(path: str | os.PathLike, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def save_torch(path: str | os.PathLike, obj) -> None:
    import torch  # here, not at the top: the data stages write no tensors and start 2 s faster without it

    # Through a file object, not the temporary path: torch.save names the archive's inner folder
    # after the file it writes to, and a random temporary name would make identical data differ.
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        out = _KeepsWriteError(f)
        try:
            torch.save(obj, out)
        except RuntimeError:
            if out.error is not None:  # the full disk, not torch's "unexpected pos" that followed it
                raise out.error from None
            raise


class _KeepsWriteError:
    """A binary file that remembers the OSError its write raised. torch's zip writer meets that error
    (ENOSPC on a full disk) and then raises its own RuntimeError ("unexpected pos …") in its place."""

    def __init__(self, f):
        self.f, self.error = f, None

    def write(self, data) -> int:
        try:
            return self.f.write(data)
        except OSError as err:
            self.error = err
            raise

    def flush(self) -> None:
        try:
            self.f.flush()
        except OSError as err:
            self.error = err
            raise
