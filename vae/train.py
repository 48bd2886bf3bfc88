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

from vae import UserError, distributed
from vae.batching import Pairs, buckets, collate
from vae.cli import console
from vae.config import ModelConfig, TrainConfig, VariantConfig, parse
from vae.distributed import Ranks
from vae.io import save_torch
from vae.model import Seq2SeqVAE, build_model
from vae.model.attention import gumbel_temperature
from vae.objective import kl_weight, objective, weighted


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
        resumable["train"].pop("epochs")  # and train for longer: no schedule depends on the run's length,
        resumable["train"].pop("processes")  # and on more or fewer ranks: they make the same steps
        return hashlib.sha256(json.dumps(resumable, sort_keys=True).encode()).hexdigest()[:16]


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[Seq2SeqVAE, dict]:
    """Rebuild a trained model from a checkpoint written by `train`."""
    blob = torch.load(path, map_location=device, weights_only=False)
    setup = blob["setup"]
    model = build_model(setup["src_vocab"], setup["tgt_vocab"], parse(ModelConfig, setup["model"], "model"),
                        parse(VariantConfig, setup["variant"], "variant"))
    model.load_state_dict(blob["model"])
    return model.to(device).eval(), blob


SPIKE_FACTOR, SPIKE_WARMUP = 1.5, 100  # a spike: a step's loss per token above 1.5× its running mean, after step 100


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; `step` is the optimiser step where it happened."""

    def __init__(self, step: int, message: str):
        super().__init__(message)
        self.step = step


@dataclass
class Run:
    """Mutable state of a run: what a checkpoint holds besides the weights."""

    epoch: int = 0
    step: int = 0
    best_dev_loss: float = math.inf
    loss_ema: float | None = None  # running mean of the step loss per target token, for spike counts
    history: list[dict] = field(default_factory=list)


def evaluate(model: Seq2SeqVAE, pairs: Pairs, max_tokens: int, device, precision: str,
             ranks: Ranks = Ranks()) -> dict:
    """Dev terms per sentence and per token, with z and a at their means (no sampling).
    Data-parallel ranks each take a share of the batches and sum their totals."""
    model.eval()
    sums = [0.0, 0.0, 0.0, 0.0]  # rec, kl_z, kl_a, tokens
    with torch.no_grad(), _autocast(device, precision):
        for indices in buckets(pairs, max_tokens, seed=None)[ranks.rank::ranks.world]:
            batch = collate([pairs.src[i] for i in indices], [pairs.tgt[i] for i in indices])
            terms = model(batch.to(device), sample=False)
            for k, key in enumerate(("rec", "kl_z", "kl_a", "tokens")):
                sums[k] += getattr(terms, key).sum().item()
    rec, kl_z, kl_a, tokens = distributed.sum_across(sums, ranks, device)
    n, tokens = len(pairs), max(tokens, 1)
    return {"dev_elbo_loss": (rec + kl_z + kl_a) / n,
            "dev_rec": rec / n, "dev_kl_z": kl_z / n, "dev_kl_a": kl_a / n,
            "dev_nll_per_token": rec / tokens, "dev_ppl": math.exp(min(rec / tokens, 50.0)),
            "dev_kl_z_per_token": kl_z / tokens, "dev_kl_a_per_token": kl_a / tokens}


def _kept(last: Path) -> str:
    return f"{last} still holds the last good epoch" if last.is_file() else "no epoch had finished, so nothing was saved"


def _autocast(device: torch.device, precision: str):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def _rng_state(device: torch.device) -> dict:
    return {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["cpu"].cpu())  # map_location moved it to `device`
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)


def train(setup: Setup, train_pairs: Pairs, dev_pairs: Pairs, checkpoint_dir: Path,
          on_epoch_end: Callable[[Run], None] | None = None) -> tuple[Seq2SeqVAE, Run]:
    """Train (or resume) a variant; returns the best model by dev loss and the run's history.

    checkpoint_dir/last.pt is rewritten atomically after every epoch; checkpoint_dir/best.pt
    whenever the dev loss improves. A last.pt from the same setup is resumed from. Under
    torchrun every rank trains on its share of each batch (vae.distributed); rank 0 alone
    writes checkpoints and shows progress.
    """
    cfg, variant = setup.train, setup.variant
    ranks, device = distributed.start(resolve_device(cfg.device))
    log = console.log if ranks.is_main else (lambda *args, **kwargs: None)
    torch.manual_seed(cfg.seed)
    model = build_model(setup.src_vocab, setup.tgt_vocab, setup.model, variant).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    if ranks.distributed:  # same initial weights everywhere, different dropout and latent noise per rank
        torch.manual_seed(cfg.seed + ranks.rank)
    run = Run()
    last, best = checkpoint_dir / "last.pt", checkpoint_dir / "best.pt"
    if last.is_file():
        blob = torch.load(last, map_location=device, weights_only=False)
        if blob["fingerprint"] == setup.fingerprint():
            model.load_state_dict(blob["model"])
            optimiser.load_state_dict(blob["optimiser"])
            run = Run(**blob["run"])
            states = blob["rng"] if isinstance(blob["rng"], list) else [blob["rng"]]  # one per rank
            if len(states) == ranks.world:
                _set_rng_state(states[ranks.rank], device)
            else:  # the same data and weights; only the noise streams cannot continue
                torch.manual_seed(cfg.seed + 1000 * run.epoch + ranks.rank)
                log(f"{last} was written by {len(states)} process(es), this run has {ranks.world}: "
                    "random streams restart")
            log(f"resuming from {last} after epoch {run.epoch}")
        else:
            log(f"{last} is from other settings; starting afresh")
    trainer = distributed.wrap(model, ranks, device)

    def epoch_batches(epoch: int) -> list[list[int]]:
        # Every rank needs a share of every batch; a batch of fewer sentences than ranks (only
        # when max_tokens is below ranks × the longest sentence) is skipped by all of them.
        return [b for b in buckets(train_pairs, cfg.max_tokens, seed=cfg.seed + epoch) if len(b) >= ranks.world]

    total_steps = len(epoch_batches(0)) * cfg.epochs
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False, disable=not ranks.is_main) as progress:
        task = progress.add_task("train", total=total_steps, completed=run.step, status="")
        while run.epoch < cfg.epochs:
            epoch_start, tokens, sentences, grad_norm, spikes = time.perf_counter(), 0, 0, 0.0, 0
            sums = {"loss": 0.0, "rec": 0.0, "kl_z": 0.0, "kl_a": 0.0}
            progress.update(task, description=f"{variant.attention} epoch {run.epoch + 1}/{cfg.epochs}")
            model.train()
            for indices in epoch_batches(run.epoch):
                mine = distributed.shard(indices, ranks)
                batch = collate([train_pairs.src[i] for i in mine], [train_pairs.tgt[i] for i in mine]).to(device)
                weight = kl_weight(run.step, cfg.kl)
                tau = gumbel_temperature(run.step, variant.gumbel_tau0, variant.gumbel_tau_min, variant.gumbel_anneal_rate)
                with _autocast(device, cfg.precision):
                    terms = trainer(batch, sample=True, temperature=tau, word_dropout=cfg.word_dropout)
                result = objective(terms, weight, variant.gamma_a, sentences=len(indices) / ranks.world)
                # Each rank holds N·(its share's sum)/B: the mean over the N ranks is the batch mean.
                *values, batch_tokens = distributed.sum_across(
                    [result.loss.item(), result.rec, result.kl_z, result.kl_a, float(batch.tgt_mask.sum())], ranks,
                    device)
                loss, rec, kl_z, kl_a = (v / ranks.world for v in values)
                if not math.isfinite(loss):
                    raise TrainingDiverged(
                        run.step, f"the loss became {loss} at step {run.step} (epoch {run.epoch + 1}): rec "
                        f"{rec:.3g}, KL_z {kl_z:.3g}, KL_a {kl_a:.3g}, λ_KL {weight:.3g}, τ {tau:.3g}. "
                        f"Training stopped; {_kept(last)}. Try a lower train.learning_rate "
                        "or train.clip_norm, or a higher gumbel_tau_min."
                    )
                optimiser.zero_grad(set_to_none=True)
                result.loss.backward()
                grad_norm = max(grad_norm, float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)))
                optimiser.step()
                per_token = loss * len(indices) / batch_tokens  # per sentence would flag every long-sentence batch
                ema = run.loss_ema
                spikes += ema is not None and run.step >= SPIKE_WARMUP and per_token > SPIKE_FACTOR * ema
                run.loss_ema = per_token if ema is None else 0.98 * ema + 0.02 * per_token
                run.step += 1
                tokens += int(batch_tokens)
                sentences += len(indices)
                for key, value in zip(sums, (loss, rec, kl_z, kl_a)):
                    sums[key] += value * len(indices)
                rate = tokens / (time.perf_counter() - epoch_start)
                progress.update(task, advance=1, status=f"loss {loss:.2f} rec {rec:.2f} "
                                f"KLz {kl_z:.2f} KLa {kl_a:.2f} λ {weight:.2f} {rate:,.0f} tok/s")
            train_seconds = time.perf_counter() - epoch_start
            dev = evaluate(model, dev_pairs, cfg.max_tokens, device, cfg.precision, ranks)
            # The best epoch minimises the objective being trained, at its full λ_KL: the unweighted
            # ELBO would prefer an early epoch of a model whose KL_a grows while its NLL falls.
            dev["dev_loss"] = weighted(dev["dev_rec"], dev["dev_kl_z"], dev["dev_kl_a"], cfg.kl.max_weight,
                                       variant.gamma_a)
            if not math.isfinite(dev["dev_loss"]):
                raise TrainingDiverged(run.step, f"the dev loss became {dev['dev_loss']} after epoch "
                                       f"{run.epoch + 1}; training stopped; {_kept(last)}. Try a lower train.learning_rate.")
            run.epoch += 1
            row = {"epoch": run.epoch, "step": run.step, **{f"train_{k}": v / sentences for k, v in sums.items()},
                   "train_loss_per_token": sums["loss"] / tokens,
                   "kl_weight": weight, "temperature": tau, **dev, "grad_norm_max": grad_norm, "loss_spikes": spikes,
                   "tokens_per_s": tokens / train_seconds,
                   "epoch_seconds": train_seconds}
            run.history.append(row)
            log(" ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
            improved = dev["dev_loss"] < run.best_dev_loss
            run.best_dev_loss = min(run.best_dev_loss, dev["dev_loss"])
            rng = distributed.gather(_rng_state(device), ranks)  # a collective: every rank takes part
            if ranks.is_main:
                if improved:
                    save_torch(best, {"setup": setup.as_dict(), "model": model.state_dict(), "epoch": run.epoch})
                save_torch(last, {"fingerprint": setup.fingerprint(), "setup": setup.as_dict(),
                                  "model": model.state_dict(), "optimiser": optimiser.state_dict(),
                                  "run": dataclasses.asdict(run), "rng": rng})
            distributed.barrier(ranks)  # the checkpoint is on disk before any rank goes on
            if on_epoch_end is not None:
                on_epoch_end(run)
    best_model, _ = load_model(best, device)
    return best_model, run
