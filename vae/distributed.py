"""Data-parallel training over torchrun ranks (DistributedDataParallel; NCCL on GPUs, gloo on CPU).

Every rank builds the same token buckets and takes its share of each one, so N ranks with
`train.max_tokens` M make the same optimiser steps, over the same sentences, as one process
with M: the run's result does not depend on how many processes computed it, only its speed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def under_torchrun() -> bool:
    return world_size() > 1


def is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


def launch(processes: int, module: str, args: list[str]) -> int:
    """Re-run `python -m module args` as `processes` local torchrun ranks; returns their exit code."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               "-m", module, *args]
    env = dict(os.environ)
    # torchrun's default of one thread per rank, made explicit: N ranks share the machine's cores.
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // processes)))
    return subprocess.call(command, env=env)


def start(device: torch.device) -> tuple[Ranks, torch.device]:
    """Join the process group when torchrun started us; a plain process is rank 0 of 1."""
    if not under_torchrun():
        return Ranks(), device
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Ranks(rank, dist.get_world_size()), device


def wrap(model: torch.nn.Module, ranks: Ranks, device: torch.device) -> torch.nn.Module:
    """DDP averages gradients across ranks during backward; one process trains the bare model."""
    if not ranks.distributed:
        return model
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def shard(indices: list[int], ranks: Ranks) -> list[int]:
    """This rank's sentences of one global batch (a strided slice: lengths stay balanced)."""
    return indices[ranks.rank::ranks.world]


def sum_across(values: list[float], ranks: Ranks, device: torch.device) -> list[float]:
    """Element-wise sums over ranks (every rank gets them); the values themselves on one rank."""
    if not ranks.distributed:
        return values
    total = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return total.tolist()


def gather(value, ranks: Ranks) -> list:
    """Every rank's `value`, in rank order (any picklable object)."""
    if not ranks.distributed:
        return [value]
    out = [None] * ranks.world
    dist.all_gather_object(out, value)
    return out


def barrier(ranks: Ranks) -> None:
    if ranks.distributed:
        dist.barrier()


def finish(ranks: Ranks) -> None:
    if ranks.distributed and dist.is_initialized():
        dist.destroy_process_group()
