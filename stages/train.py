"""train: train one variant; resumes from checkpoints/<variant>/last.pt if a run was cut short.

Writes models/<variant>.pt (the kept weights), results/train/<variant>.json (the run's record) and
results/train/<variant>/ (DVCLive: training terms every train.log_every steps, dev terms per evaluation).

With train.processes N > 1 it re-runs itself as N torchrun ranks (data parallel, same result);
`torchrun --nproc_per_node N -m stages.train --variant V` does the same by hand.
"""

import shutil
import sys
import time
from pathlib import Path

import torch

from vae import UserError, cli, distributed
from vae.batching import Pairs
from vae.io import atomic_path, write_json
from vae.checkpoint import device_name
from vae.train import resolve_device, setup_for, train


def main(args, params):
    if args.variant not in params.variants:
        raise UserError(f"no variant '{args.variant}' in {args.params}; known: {', '.join(params.variants)}")
    cfg = params.train
    if cfg.processes > 1 and not distributed.under_torchrun():
        sys.exit(distributed.launch(cfg.processes, "stages.train", sys.argv[1:]))
    data = Path(args.data)
    train_pairs = Pairs.load(data / "encoded" / "train.pt", cfg.max_pairs)
    dev_pairs = Pairs.load(data / "encoded" / "dev.pt")
    setup = setup_for(params.model, params.variants[args.variant], cfg, data, train_pairs)
    start = time.perf_counter()
    checkpoints = Path(args.checkpoints) / args.name
    out = Path(args.results)
    _, run = train(setup, train_pairs, dev_pairs, checkpoints, label=args.name, log_dir=out / args.name)
    if not distributed.is_main_process():
        return
    with atomic_path(Path(args.models) / f"{args.name}.pt") as tmp:
        shutil.copyfile(checkpoints / "best.pt", tmp)

    best = run.kept()
    metrics = {"best_epoch": best["epoch"], **{k: v for k, v in best.items() if k.startswith("dev_")},
               "epochs": run.history[-1]["epoch"], "steps": run.step,
               "train_minutes": run.train_seconds / 60, "max_minutes": cfg.max_minutes,
               "train_pairs": len(train_pairs), "train_target_tokens": train_pairs.target_tokens(),
               "device": str(resolve_device(cfg.device)), "device_name": device_name(resolve_device(cfg.device)),
               "precision": cfg.precision, "torch": torch.__version__,
               "processes": distributed.world_size(),
               "mean_epoch_seconds": sum(r["epoch_seconds"] for r in run.history) / len(run.history),
               "mean_tokens_per_s": sum(r["tokens_per_s"] for r in run.history) / len(run.history),
               "stage_seconds_this_run": time.perf_counter() - start}
    write_json(out / f"{args.name}.json", metrics)


if __name__ == "__main__":
    p = cli.parser(__doc__)
    cli.model_arguments(p)
    p.add_argument("--data", default="data")
    p.add_argument("--checkpoints", default="checkpoints")
    p.add_argument("--models", default="models")
    p.add_argument("--results", default="results/train")
    cli.run(main, p)
