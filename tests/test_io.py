"""Atomic outputs: nothing half-written, ordinary permissions, byte-identical re-runs."""

import builtins
import errno
import io
import os
import tempfile

import pytest
import torch

from vae.io import atomic_dir, atomic_path, save_torch


def test_save_torch_is_byte_identical_for_identical_data(tmp_path):
    # DVC hashes outputs: a re-run that writes the same tensors must not look like a change.
    data = {"src": {"ids": torch.arange(20, dtype=torch.int32), "offsets": torch.tensor([0, 7, 20])}}
    save_torch(tmp_path / "a" / "train.pt", data)
    save_torch(tmp_path / "b" / "train.pt", data)
    assert (tmp_path / "a" / "train.pt").read_bytes() == (tmp_path / "b" / "train.pt").read_bytes()


def test_atomic_path_leaves_nothing_when_the_writer_fails(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_output_has_ordinary_permissions(tmp_path):
    with atomic_path(tmp_path / "out.txt") as tmp:
        tmp.write_text("done")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "out.txt").stat().st_mode & 0o777 == 0o666 & ~umask


# --- atomic_dir ---------------------------------------------------------------------------


def test_atomic_dir_replaces_the_folder_as_a_whole(tmp_path):
    target = tmp_path / "raw"
    target.mkdir()
    (target / "src.txt").write_text("old src")
    (target / "stale.txt").write_text("from an older run")
    with atomic_dir(target) as tmp:
        (tmp / "src.txt").write_text("new src")
        (tmp / "tgt.txt").write_text("new tgt")
    assert sorted(p.name for p in target.iterdir()) == ["src.txt", "tgt.txt"]
    assert (target / "src.txt").read_text() == "new src"
    assert [p.name for p in tmp_path.iterdir()] == ["raw"]  # no temporary or old folder left
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o777 & ~umask


def test_atomic_dir_keeps_the_previous_folder_when_the_writer_fails(tmp_path):
    target = tmp_path / "raw"
    target.mkdir()
    (target / "src.txt").write_text("old src")
    (target / "tgt.txt").write_text("old tgt")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "src.txt").write_text("new src")
            raise RuntimeError("the target side failed")
    assert (target / "src.txt").read_text() == "old src" and (target / "tgt.txt").read_text() == "old tgt"
    assert [p.name for p in tmp_path.iterdir()] == ["raw"]


def test_atomic_dir_creates_and_cleans_up_after_a_killed_run(tmp_path):
    stale = tmp_path / ".raw.abc123_x.tmpdir"  # what a kill -9 inside the block leaves
    stale.mkdir()
    (stale / "src.txt").write_text("half")
    other = tmp_path / ".raw.json.abc.tmpdir"  # another output's: not ours to delete
    other.mkdir()
    with atomic_dir(tmp_path / "raw") as tmp:
        (tmp / "a").write_text("a")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".raw.json.abc.tmpdir", "raw"]


@pytest.mark.parametrize("writer", [atomic_path, atomic_dir])
def test_a_full_disk_is_reported_with_the_output_name(tmp_path, writer):
    # f.write() on a full disk raises ENOSPC without a file name; the error must name the output.
    target = tmp_path / "out"
    with pytest.raises(OSError) as info:
        with writer(target):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert info.value.errno == errno.ENOSPC
    assert info.value.filename == str(target)
    assert not target.exists()


def test_an_error_about_another_file_keeps_its_name(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        with atomic_path(tmp_path / "out"):
            open(tmp_path / "missing-input")
    assert info.value.filename == str(tmp_path / "missing-input")


class FullDisk(io.RawIOBase):
    """A file on a disk that fills up after `room` bytes: the next write raises ENOSPC, unnamed."""

    def __init__(self, path, room: int):
        self.f, self.room = builtins.open(path, "wb", buffering=0), room

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.f.write(data)

    def close(self) -> None:
        self.f.close()
        super().close()


def test_a_full_disk_during_torch_save_says_so_and_keeps_the_earlier_file(tmp_path, monkeypatch):
    # torch's zip writer turns the ENOSPC into "RuntimeError: … unexpected pos …", which reached the
    # user as an internal error with no word of the disk
    import vae.io
    from vae.cli import os_error_message

    target = tmp_path / "last.pt"
    save_torch(target, {"weights": torch.zeros(10)})
    earlier = target.read_bytes()
    monkeypatch.setattr(vae.io, "open", lambda path, mode: io.BufferedWriter(FullDisk(path, 3000)), raising=False)
    with pytest.raises(OSError) as info:
        save_torch(target, {"weights": torch.randn(10_000)})
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    assert os_error_message(info.value).startswith(f"{target}: No space left on device (ENOSPC); the disk is full")
    assert target.read_bytes() == earlier and [p.name for p in tmp_path.iterdir()] == ["last.pt"]


@pytest.mark.parametrize("writer, maker", [(atomic_path, "mkstemp"), (atomic_dir, "mkdtemp")])
def test_a_read_only_folder_names_the_output_not_its_temporary(tmp_path, monkeypatch, writer, maker):
    target = tmp_path / "results" / "prepare.json"

    def denied(dir, prefix, suffix):
        raise PermissionError(errno.EACCES, "Permission denied", os.path.join(dir, prefix + "k2j4" + suffix))

    monkeypatch.setattr(tempfile, maker, denied)
    with pytest.raises(PermissionError) as info:
        with writer(target):
            pass
    assert info.value.filename == str(target)
