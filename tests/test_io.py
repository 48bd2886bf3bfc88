"""Atomic outputs: nothing half-written, ordinary permissions, byte-identical re-runs."""

import os

import pytest
import torch

from vae.io import atomic_path, save_torch


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
