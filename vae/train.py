"""Training: Adam, gradient clipping, annealed λ_KL and τ, dev loss every epoch, best model kept,
and atomic per-epoch checkpoints from which a killed run resumes to the same result."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from vae import UserError
from vae.batching import Pairs, buckets, collate, iterate
from vae.cli import console
from vae.config import ModelConfig, TrainConfig, VariantConfig, parse
from vae.io import save_torch
from vae.model import Seq2SeqVAE, build_model
from vae.model.attention import gumbel_temperature
from vae.objective import kl_weight, objective


def resolve_device(name: str) -> torch.device:
    """'auto' is CUDA when present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass
class Setup:
    """What defines a run; its fingerprint decides whether a checkpoint may be resumed."""

    model: ModelConfig
    variant: VariantConfig
    train: TrainConfig
    src_vocab: int
    tgt_vocab: int
    train_pairs: int

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        resumable = self.as_dict()
        resumable["train"].pop("device")  # a run may resume on another device,
        resumable["train"].pop("epochs")  # and train for longer: no schedule depends on the run's length
        return hashlib.sha256(json.dumps(resumable, sort_keys=True).encode()).hexdigest()[:16]


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[Seq2SeqVAE, dict]:
    """Rebuild a trained model from a checkpoint written by `train`."""
    blob = torch.load(path, map_location=device, weights_only=False)
    setup = blob["setup"]
    model = build_model(setup["src_vocab"], setup["tgt_vocab"], parse(ModelConfig, setup["model"], "model"),
                        parse(VariantConfig, setup["variant"], "variant"))
    model.load_state_dict(blob["model"])
    return model.to(device).eval(), blob


@dataclass
class Run:
    """Mutable state of a run: what a checkpoint holds besides the weights."""

    epoch: int = 0
    step: int = 0
    best_dev_loss: float = math.inf
    history: list[dict] = field(default_factory=list)


def evaluate(model: Seq2SeqVAE, pairs: Pairs, max_tokens: int, device, precision: str) -> dict:
    """Dev terms per sentence and per token, with z and a at their means (no sampling)."""
    model.eval()
    sums = {"rec": 0.0, "kl_z": 0.0, "kl_a": 0.0, "tokens": 0}
    with torch.no_grad(), _autocast(device, precision):
        for batch in iterate(pairs, max_tokens):
            terms = model(batch.to(device), sample=False)
            for key in ("rec", "kl_z", "kl_a", "tokens"):
                sums[key] += getattr(terms, key).sum().item()
    n, tokens = len(pairs), max(sums["tokens"], 1)
    return {"dev_loss": (sums["rec"] + sums["kl_z"] + sums["kl_a"]) / n,
            "dev_rec": sums["rec"] / n, "dev_kl_z": sums["kl_z"] / n, "dev_kl_a": sums["kl_a"] / n,
            "dev_nll_per_token": sums["rec"] / tokens, "dev_ppl": math.exp(min(sums["rec"] / tokens, 50.0)),
            "dev_kl_z_per_token": sums["kl_z"] / tokens, "dev_kl_a_per_token": sums["kl_a"] / tokens}


def _kept(last: Path) -> str:
    return f"{last} still holds the last good epoch" if last.is_file() else "no epoch had finished, so nothing was saved"


def _autocast(device: torch.device, precision: str):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def train(setup: Setup, train_pairs: Pairs, dev_pairs: Pairs, checkpoint_dir: Path,
          on_epoch_end: Callable[[Run], None] | None = None) -> tuple[Seq2SeqVAE, Run]:
    """Train (or resume) a variant; returns the best model by dev loss and the run's history.

    checkpoint_dir/last.pt is rewritten atomically after every epoch; checkpoint_dir/best.pt
    whenever the dev loss improves. A last.pt from the same setup is resumed from.
    """
    cfg, variant = setup.train, setup.variant
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = build_model(setup.src_vocab, setup.tgt_vocab, setup.model, variant).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    run = Run()
    last, best = checkpoint_dir / "last.pt", checkpoint_dir / "best.pt"
    if last.is_file():
        blob = torch.load(last, map_location=device, weights_only=False)
        if blob["fingerprint"] == setup.fingerprint():
            model.load_state_dict(blob["model"])
            optimiser.load_state_dict(blob["optimiser"])
            run = Run(**blob["run"])
            torch.set_rng_state(blob["rng"]["cpu"].cpu())  # map_location moved it to `device`
            if device.type == "cuda" and blob["rng"].get("cuda") is not None:
                torch.cuda.set_rng_state(blob["rng"]["cuda"].cpu())
            console.log(f"resuming from {last} after epoch {run.epoch}")
        else:
            console.log(f"{last} is from other settings; starting afresh")

    steps_per_epoch = len(buckets(train_pairs, cfg.max_tokens, seed=cfg.seed))
    total_steps = steps_per_epoch * cfg.epochs
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("train", total=total_steps, completed=run.step, status="")
        while run.epoch < cfg.epochs:
            epoch_start, tokens, sums = time.perf_counter(), 0, {"loss": 0.0, "rec": 0.0, "kl_z": 0.0, "kl_a": 0.0}
            progress.update(task, description=f"{variant.attention} epoch {run.epoch + 1}/{cfg.epochs}")
            model.train()
            batches = buckets(train_pairs, cfg.max_tokens, seed=cfg.seed + run.epoch)
            for indices in batches:
                batch = collate([train_pairs.src[i] for i in indices], [train_pairs.tgt[i] for i in indices]).to(device)
                weight = kl_weight(run.step, cfg.kl)
                tau = gumbel_temperature(run.step, variant.gumbel_tau0, variant.gumbel_tau_min, variant.gumbel_anneal_rate)
                with _autocast(device, cfg.precision):
                    terms = model(batch, sample=True, temperature=tau, word_dropout=cfg.word_dropout)
                result = objective(terms, weight, variant.gamma_a)
                loss = result.loss.item()
                if not math.isfinite(loss):
                    raise UserError(
                        f"the loss became {loss} at step {run.step} (epoch {run.epoch + 1}): rec "
                        f"{result.rec:.3g}, KL_z {result.kl_z:.3g}, KL_a {result.kl_a:.3g}, λ_KL {weight:.3g}, τ {tau:.3g}. "
                        f"Training stopped; {_kept(last)}. Try a lower train.learning_rate "
                        "or train.clip_norm, or a higher gumbel_tau_min."
                    )
                optimiser.zero_grad(set_to_none=True)
                result.loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
                optimiser.step()
                run.step += 1
                tokens += int(batch.tgt_mask.sum())
                for key in sums:
                    sums[key] += (loss if key == "loss" else getattr(result, key)) * len(indices)
                rate = tokens / (time.perf_counter() - epoch_start)
                progress.update(task, advance=1, status=f"loss {loss:.2f} rec {result.rec:.2f} "
                                f"KLz {result.kl_z:.2f} KLa {result.kl_a:.2f} λ {weight:.2f} {rate:,.0f} tok/s")
            train_seconds = time.perf_counter() - epoch_start
            dev = evaluate(model, dev_pairs, cfg.max_tokens, device, cfg.precision)
            if not math.isfinite(dev["dev_loss"]):
                raise UserError(f"the dev loss became {dev['dev_loss']} after epoch {run.epoch + 1}; training "
                                f"stopped; {_kept(last)}. Try a lower train.learning_rate.")
            run.epoch += 1
            row = {"epoch": run.epoch, "step": run.step, **{f"train_{k}": v / len(train_pairs) for k, v in sums.items()},
                   "kl_weight": weight, "temperature": tau, **dev, "tokens_per_s": tokens / train_seconds,
                   "epoch_seconds": train_seconds}
            run.history.append(row)
            console.log(" ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
            if dev["dev_loss"] < run.best_dev_loss:
                run.best_dev_loss = dev["dev_loss"]
                save_torch(best, {"setup": setup.as_dict(), "model": model.state_dict(), "epoch": run.epoch})
            rng = {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state() if device.type == "cuda" else None}
            save_torch(last, {"fingerprint": setup.fingerprint(), "setup": setup.as_dict(), "model": model.state_dict(),
                              "optimiser": optimiser.state_dict(), "run": dataclasses.asdict(run), "rng": rng})
            if on_epoch_end is not None:
                on_epoch_end(run)
    best_model, _ = load_model(best, device)
    return best_model, run
