"""Data-parallel training under torchrun (gloo, CPU): the same gradients and the same run as one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ddp_setup import VARIANTS, batch_of, gradient_setup, train_data, train_setup
from vae.objective import Prices, objective
from vae.train import train

WORKER = Path(__file__).with_name("ddp_worker.py")


def torchrun(*args: str, processes: int = 2) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                             f"--nproc_per_node={processes}", str(WORKER), *args],
                            env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_averaged_gradients_equal_one_process_on_the_whole_batch(tmp_path):
    torchrun("gradients", str(tmp_path))
    averaged = torch.load(tmp_path / "gradients.pt", weights_only=True)
    for name in VARIANTS:
        model, indices = gradient_setup(name)
        objective(model(batch_of(indices), sample=False), Prices(0.7, 0.3, "sentence")).loss.backward()
        for key, p in model.named_parameters():
            torch.testing.assert_close(averaged[name][key], p.grad, rtol=1e-4, atol=1e-6, msg=f"{name}: {key}")


def history_without_timing(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in {"tokens_per_s", "epoch_seconds", "train_minutes"}} for row in history]


def assert_same_history(a: list[dict], b: list[dict], rel: float) -> None:
    a, b = history_without_timing(a), history_without_timing(b)
    assert len(a) == len(b)
    for row_a, row_b in zip(a, b):
        assert row_a.keys() == row_b.keys()
        for key in row_a:
            assert row_a[key] == pytest.approx(row_b[key], rel=rel), (row_a["epoch"], key, row_a[key], row_b[key])


@pytest.fixture(scope="module")
def single_process_history(tmp_path_factory) -> list[dict]:
    train_pairs, dev_pairs = train_data()
    _, run = train(train_setup(2), train_pairs, dev_pairs, tmp_path_factory.mktemp("single"))
    return run.history


def test_two_ranks_train_as_one_process_would_and_resume(tmp_path, single_process_history):
    torchrun("train", str(tmp_path), "2")
    two_ranks = json.loads((tmp_path / "history-2.json").read_text())
    # Same batches, same steps: only the order of floating-point sums differs.
    assert_same_history(two_ranks, single_process_history, rel=1e-3)
    assert two_ranks[-1]["dev_loss"] < two_ranks[0]["dev_loss"]

    resumed = tmp_path / "resumed"
    torchrun("train", str(resumed), "1")
    log = torchrun("train", str(resumed), "2")
    assert "resuming from" in log.stdout + log.stderr
    assert_same_history(json.loads((resumed / "history-2.json").read_text()), two_ranks, rel=1e-6)
    checkpoint = torch.load(resumed / "checkpoints" / "last.pt", weights_only=True)
    assert len(checkpoint["rng"]) == 2  # each rank's random state, for an exact resume
