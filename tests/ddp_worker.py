"""Run under `torchrun --nproc_per_node N` by test_distributed.py: one rank of a tiny job.

    ddp_worker.py gradients OUT      one step's DDP-averaged gradients of every variant (rank 0 saves them)
    ddp_worker.py train OUT EPOCHS   vae.train.train on the shared tiny setup; rank 0 saves the history
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's vae/
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ddp_setup import VARIANTS, batch_of, gradient_setup, train_data, train_setup  # noqa: E402
from vae import distributed  # noqa: E402
from vae.objective import Prices, objective  # noqa: E402
from vae.train import train  # noqa: E402


def gradients(out: Path) -> None:
    ranks, device = distributed.start(torch.device("cpu"))
    grads = {}
    for name in VARIANTS:
        model, indices = gradient_setup(name)
        trainer = distributed.wrap(model, ranks, device)
        terms = trainer(batch_of(distributed.shard(indices, ranks)), sample=False)
        objective(terms, Prices(0.7, 0.3, "sentence"), sentences=len(indices) / ranks.world).loss.backward()
        grads[name] = {k: p.grad.clone() for k, p in model.named_parameters()}
    if ranks.is_main:
        torch.save(grads, out / "gradients.pt")
    # Without it rank 1 may tear gloo down while rank 0 is still saving: it then aborts ("terminate called
    # without an active exception"), session 16 twice in a row, and the test fails on its exit status.
    distributed.barrier(ranks)
    distributed.finish(ranks)


def run_training(out: Path, epochs: int) -> None:
    train_pairs, dev_pairs = train_data()
    _, run = train(train_setup(epochs), train_pairs, dev_pairs, out / "checkpoints")
    if distributed.is_main_process():
        (out / f"history-{epochs}.json").write_text(json.dumps(run.history))


if __name__ == "__main__":
    mode, out = sys.argv[1], Path(sys.argv[2])
    if mode == "gradients":
        gradients(out)
    else:
        run_training(out, int(sys.argv[3]))
