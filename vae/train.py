"""Training: Adam, gradient clipping, the priced objective with its schedules, dev loss at the end of
every epoch (and when the time budget runs out), the best model kept, and atomic checkpoints from
which a killed or budget-stopped run resumes to the same result as an uninterrupted one."""

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
from torch.optim.swa_utils import AveragedModel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from vae import UserError, distributed
from vae.batching import Pairs, buckets, collate
from vae.checkpoint import data_fingerprint, load_model, read_checkpoint, resolve_device, save_checkpoint
from vae.cli import console
from vae.config import ModelConfig, TrainConfig, VariantConfig
from vae.distributed import Ranks
from vae.live import log as log_values, open_log
from vae.model import Seq2SeqVAE, build_model
from vae.measure import TERMS, autocast, term_sums
from vae.objective import Prices, objective, prices, settled_prices
from vae.tokenizer import Tokenizers

__all__ = ["Setup", "Run", "TrainingDiverged", "train", "evaluate", "load_model", "resolve_device", "setup_for"]


@dataclass
class Setup:
    """What defines a run; its fingerprint decides whether a checkpoint may be resumed."""

    model: ModelConfig
    variant: VariantConfig
    train: TrainConfig
    src_vocab: int
    tgt_vocab: int
    train_pairs: int
    data: str = ""  # data_fingerprint of the encoded training split and the tokenizers
    tokenizer: str = ""  # data_fingerprint of the tokenizers alone: what a later stage must pair the model with

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        resumable = self.as_dict()
        resumable["train"].pop("device")  # a run may resume on another device,
        resumable["train"].pop("epochs")  # and train for longer: no schedule depends on the run's length,
        resumable["train"].pop("max_minutes")
        resumable["train"].pop("processes")  # and on more or fewer ranks: they make the same steps,
        resumable["train"].pop("log_every")  # and log more or less often
        return hashlib.sha256(json.dumps(resumable, sort_keys=True).encode()).hexdigest()[:16]


def setup_for(model: ModelConfig, variant: VariantConfig, cfg: TrainConfig, data: Path, train_pairs: Pairs) -> Setup:
    """The Setup of a run on the encoded data and tokenizers under `data` (as the tokenize stage writes them)."""
    tokenizers = Tokenizers.load(data / "tokenizer")
    return Setup(model, variant, cfg, tokenizers.src.get_piece_size(), tokenizers.tgt.get_piece_size(),
                 len(train_pairs), data_fingerprint([data / "encoded" / "train.pt", data / "tokenizer"]),
                 data_fingerprint([data / "tokenizer"]))


SPIKE_FACTOR, SPIKE_WARMUP = 1.5, 100  # a spike: a step's loss per token above 1.5× its running mean, after step 100
DIVERGED_FACTOR = 1.5  # dev NLL per token above 1.5× a uniform guess's (log V): the model has diverged without a NaN


class TrainingDiverged(UserError):
    """The loss became NaN, infinite or absurd; `step` is the optimiser step where it was seen."""

    def __init__(self, step: int, message: str):
        super().__init__(message)
        self.step = step


@dataclass
class Run:
    """Mutable state of a run: what a checkpoint holds besides the weights."""

    epoch: int = 0  # epochs completed
    batch: int = 0  # batches of the current epoch already trained (a budget stop can fall mid-epoch)
    step: int = 0
    train_seconds: float = 0.0  # time spent in training steps (not dev evaluation or saving)
    max_minutes: float = 0.0  # the budget the run last trained under
    best_dev_loss: float = math.inf
    loss_ema: float | None = None  # running mean of the step loss per target token, for spike counts
    history: list[dict] = field(default_factory=list)

    def kept(self) -> dict:
        """The history row whose weights best.pt holds: the lowest dev_loss, the earliest on a tie
        (best.pt is replaced only on a strict improvement)."""
        return min(self.history, key=lambda row: row["dev_loss"])


def evaluate(model: Seq2SeqVAE, pairs: Pairs, max_tokens: int, device, precision: str, settled: Prices,
             ranks: Ranks = Ranks()) -> dict:
    """Dev terms per sentence and per token, with z and a at their means (no sampling), and
    `dev_loss`, the objective at the `settled` prices by which the best checkpoint is chosen.
    Data-parallel ranks each take a share of the batches and sum their totals."""
    sums = term_sums(model, pairs, max_tokens, device, prices=settled, precision=precision,
                     shard=(ranks.rank, ranks.world))
    rec, kl_z, kl_a, tokens, loss = distributed.sum_across([sums[k] for k in (*TERMS, "loss")], ranks, device)
    n, tokens = len(pairs), max(tokens, 1)
    return {"dev_loss": loss / n, "dev_elbo_loss": (rec + kl_z + kl_a) / n,
            "dev_rec": rec / n, "dev_kl_z": kl_z / n, "dev_kl_a": kl_a / n,
            "dev_nll_per_token": rec / tokens, "dev_ppl": math.exp(min(rec / tokens, 50.0)),
            "dev_kl_z_per_token": kl_z / tokens, "dev_kl_a_per_token": kl_a / tokens}


def weight_average(model: torch.nn.Module, decay: float) -> AveragedModel:
    """An exponential moving average of `model`'s weights, the model that is evaluated, kept and decoded.

    With a constant learning rate Adam's weights keep jittering around a minimum; their average sits
    nearer to it (Polyak averaging), which is what a decaying rate would buy without fixing the
    run's length in advance. The decay warms up as min(decay, (1 + n)/(10 + n)) after n updates, so
    the weights of the first steps fade within a few hundred steps, not within 1/(1 − decay).
    Buffers (the Gumbel τ) are copied, not averaged.
    """
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], updates: torch.Tensor) -> None:
        n = float(updates)
        torch._foreach_lerp_(averaged, current, 1.0 - min(decay, (1.0 + n) / (10.0 + n)))

    return AveragedModel(model, multi_avg_fn=update, use_buffers=False)


def _rng_state(device: torch.device) -> dict:
    return {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["cpu"].cpu())  # map_location moved it to `device`
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)


def _empty_window() -> dict:
    """Sums over the steps since the last DVCLive line."""
    return dict.fromkeys(("loss", "rec", "kl_z", "kl_a", "tokens", "grad_norm", "seconds", "steps"), 0.0) | {"prices": None}


class Trainer:
    """One run: resume (`_resume`), one optimiser step (`_step`), and the end of a segment — an epoch,
    or the time budget running out — with its dev evaluation and checkpoints (`_end_segment`)."""

    def __init__(self, setup: Setup, train_pairs: Pairs, dev_pairs: Pairs, checkpoint_dir: Path, label: str,
                 log_dir: Path | None = None):
        self.setup, self.cfg, self.variant = setup, setup.train, setup.variant
        self.train_pairs, self.dev_pairs, self.label = train_pairs, dev_pairs, label
        self.ranks, self.device = distributed.start(resolve_device(self.cfg.device))
        self.log = console.log if self.ranks.is_main else (lambda *args, **kwargs: None)
        self.last, self.best = checkpoint_dir / "last.pt", checkpoint_dir / "best.pt"
        torch.manual_seed(self.cfg.seed)
        self.model = build_model(setup.src_vocab, setup.tgt_vocab, setup.model, self.variant).to(self.device)
        self.optimiser = torch.optim.Adam(self.model.parameters(), lr=self.cfg.learning_rate)
        self.average = weight_average(self.model, self.cfg.weight_average) if self.cfg.weight_average else None
        if self.ranks.distributed:  # same initial weights everywhere, different dropout and latent noise per rank
            torch.manual_seed(self.cfg.seed + self.ranks.rank)
        self.run = self._resume()
        self.trainer = distributed.wrap(self.model, self.ranks, self.device)
        self.budget = self.cfg.max_minutes * 60.0
        self.live = open_log(log_dir, self.run.step) if log_dir is not None and self.ranks.is_main else None
        self.window = _empty_window()

    def _resume(self) -> Run:
        if self.ranks.is_main:  # a kill during a save leaves its temporary file (vae.io.atomic_path) behind
            for stale in self.last.parent.glob(".*.tmp"):
                stale.unlink(missing_ok=True)
        if not self.last.is_file():
            return Run(max_minutes=self.cfg.max_minutes)
        # damaged, crafted or from an older version: never train over it silently
        blob = read_checkpoint(self.last, self.device, "delete it to start this run afresh")
        if blob.get("fingerprint") != self.setup.fingerprint():
            self.log(f"{self.last} is from other settings or data; starting afresh")
            return Run(max_minutes=self.cfg.max_minutes)
        run = Run(**blob["run"])
        if run.epoch + (run.batch > 0) > self.cfg.epochs:
            self.log(f"{self.last} has trained {run.epoch} epoch(s), more than train.epochs {self.cfg.epochs}; "
                     "starting afresh")
            return Run(max_minutes=self.cfg.max_minutes)
        if self.cfg.max_minutes and run.train_seconds >= self.cfg.max_minutes * 60 and \
                run.max_minutes != self.cfg.max_minutes:
            self.log(f"{self.last} has trained {run.train_seconds / 60:.1f} min, more than train.max_minutes "
                     f"{self.cfg.max_minutes:g}; starting afresh")
            return Run(max_minutes=self.cfg.max_minutes)
        if not self.best.is_file():  # resuming would finish without one, and every rerun the same
            raise UserError(f"{self.best} is missing beside {self.last}, so this run cannot know its best weights; "
                            f"delete {self.last} to start the run afresh")
        self.model.load_state_dict(blob["model"])
        self.optimiser.load_state_dict(blob["optimiser"])
        if self.average is not None:
            self.average.load_state_dict(blob["average"])
        states = blob["rng"]  # one per rank
        if len(states) == self.ranks.world:
            _set_rng_state(states[self.ranks.rank], self.device)
        else:  # the same data and weights; only the noise streams cannot continue
            torch.manual_seed(self.cfg.seed + 1000 * run.epoch + run.batch + self.ranks.rank)
            self.log(f"{self.last} was written by {len(states)} process(es), this run has {self.ranks.world}: "
                     "random streams restart")
        self.log(f"resuming from {self.last} after epoch {run.epoch}, batch {run.batch} "
                 f"({run.train_seconds / 60:.1f} min of training)")
        run.max_minutes = self.cfg.max_minutes
        return run

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        # Every rank needs a share of every batch; a batch of fewer sentences than ranks (only
        # when max_tokens is below ranks × the longest sentence) is skipped by all of them.
        return [b for b in buckets(self.train_pairs, self.cfg.max_tokens, seed=self.cfg.seed + epoch)
                if len(b) >= self.ranks.world]

    def out_of_time(self) -> bool:
        return bool(self.budget) and self.run.train_seconds >= self.budget

    def _step(self, indices: list[int], totals: dict) -> str:
        """One optimiser step on the batch `indices`; adds to `totals`; returns a progress status."""
        run, ranks, device, cfg = self.run, self.ranks, self.device, self.cfg
        mine = distributed.shard(indices, ranks)
        batch = collate([self.train_pairs.src[i] for i in mine], [self.train_pairs.tgt[i] for i in mine]).to(device)
        step_prices = prices(run.step, cfg, self.variant)
        self.model.set_step(run.step)
        batch_tokens = sum(len(self.train_pairs.tgt[i]) + 1 for i in indices)  # the whole batch's, on every rank
        with autocast(device, cfg.precision):
            terms = self.trainer(batch, sample=True, word_dropout=cfg.word_dropout,
                                 label_smoothing=cfg.label_smoothing)
        # Each rank divides its share's sum by B/N: DDP's mean over the N ranks is the batch's mean.
        result = objective(terms, step_prices, sentences=len(indices) / ranks.world)
        loss, rec, kl_z, kl_a, per_sentence_loss = (v / ranks.world for v in distributed.sum_across(
            [result.loss.item(), result.rec, result.kl_z, result.kl_a, result.sentence_loss], ranks, device))
        if not math.isfinite(loss):
            raise TrainingDiverged(
                run.step, f"{self.label}: the loss became {loss} at step {run.step} (epoch {run.epoch + 1}): rec "
                f"{rec:.3g}, KL_z {kl_z:.3g}, KL_a {kl_a:.3g}, λ_KL {step_prices.kl_z:.3g}. Training stopped; "
                f"{self._kept()}. Try a lower train.learning_rate or train.clip_norm"
                + (", or a higher gumbel_tau_min." if self.variant.attention == "gumbel" else "."))
        self.optimiser.zero_grad(set_to_none=True)
        result.loss.backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip_norm))
        totals["grad_norm"] = max(totals["grad_norm"], grad_norm)
        self.optimiser.step()
        if self.average is not None:
            self.average.update_parameters(self.model)
        per_token = per_sentence_loss * len(indices) / batch_tokens
        ema = run.loss_ema
        totals["spikes"] += ema is not None and run.step >= SPIKE_WARMUP and per_token > SPIKE_FACTOR * ema
        run.loss_ema = per_token if ema is None else 0.98 * ema + 0.02 * per_token
        run.step += 1
        totals["tokens"] += batch_tokens
        totals["sentences"] += len(indices)
        for key, value in zip(("loss", "rec", "kl_z", "kl_a"), (per_sentence_loss, rec, kl_z, kl_a)):
            totals[key] += value * len(indices)
            self.window[key] += value * len(indices)
        self.window["tokens"] += batch_tokens
        self.window["grad_norm"] += grad_norm
        self.window["steps"] += 1
        self.window["prices"] = step_prices
        return (f"loss/token {per_token:.2f} rec {rec:.1f} KLz {kl_z:.2f} KLa {kl_a:.2f} "
                f"λ {step_prices.kl_z:.3f}")

    def _log_window(self) -> None:
        """The training terms per target token (train/loss, rec, kl_z, kl_a), the prices, the learning
        rate, the gradient norm and the speed, averaged over the steps since the last log line, into the
        DVCLive log."""
        w, self.window = self.window, _empty_window()
        if self.live is None or not w["steps"]:
            return
        tokens = max(w["tokens"], 1)
        values = {f"train/{k}": w[k] / tokens for k in ("loss", "rec", "kl_z", "kl_a")}  # per target token
        attention = self.model.decoder.attention
        values |= {"train/kl_z_weight": w["prices"].kl_z,
                   **({"train/kl_a_weight": w["prices"].kl_a} if attention.latent else {}),  # γ_a(t) prices an a only
                   **{f"train/{k}": v for k, v in attention.schedule_values().items()},
                   "train/learning_rate": self.optimiser.param_groups[0]["lr"],
                   "train/grad_norm": w["grad_norm"] / w["steps"],
                   "train/tokens_per_s": w["tokens"] / max(w["seconds"], 1e-9)}
        log_values(self.live, self.run.step, values)

    def _kept(self) -> str:
        return f"{self.last} still holds the last good checkpoint" if self.last.is_file() else \
            "no checkpoint had been written, so nothing was saved"

    @property
    def evaluated(self) -> Seq2SeqVAE:
        """The weights that are evaluated on dev and kept in best.pt: the average, where there is one."""
        return self.model if self.average is None else self.average.module

    def _end_segment(self, totals: dict, seconds: float, batches: int, weight: float) -> None:
        """Dev evaluation, the history row, and the checkpoints, after an epoch or a budget stop."""
        run, cfg = self.run, self.cfg
        dev = evaluate(self.evaluated, self.dev_pairs, cfg.max_tokens, self.device, cfg.precision,
                       settled_prices(cfg, self.variant), self.ranks)
        uniform = math.log(self.setup.tgt_vocab)
        if not math.isfinite(dev["dev_loss"]) or dev["dev_nll_per_token"] > DIVERGED_FACTOR * uniform:
            raise TrainingDiverged(
                run.step, f"{self.label}: training diverged: after step {run.step} the dev loss is {dev['dev_loss']:.4g} "
                f"(NLL {dev['dev_nll_per_token']:.3g} nats/token, a uniform guess is {uniform:.2f}); training stopped; "
                f"{self._kept()}. Try a lower train.learning_rate.")
        sentences, tokens = max(totals["sentences"], 1), max(totals["tokens"], 1)
        row = {"epoch": run.epoch if run.batch == 0 else round(run.epoch + run.batch / batches, 3), "step": run.step,
               "train_minutes": run.train_seconds / 60,
               **{f"train_{k}": totals[k] / sentences for k in ("loss", "rec", "kl_z", "kl_a")},
               "train_loss_per_token": totals["loss"] / tokens,
               "kl_weight": weight, **self.model.decoder.attention.schedule_values(),
               **dev,
               "grad_norm_max": totals["grad_norm"], "loss_spikes": totals["spikes"],
               "tokens_per_s": totals["tokens"] / max(seconds, 1e-9), "epoch_seconds": seconds}
        run.history.append(row)
        if self.live is not None:
            log_values(self.live, run.step, {"dev/loss": dev["dev_loss"], "dev/ppl": dev["dev_ppl"],  # loss per sentence
                                             **{f"dev/{k}": dev[f"dev_{k}_per_token"] for k in ("nll", "kl_z", "kl_a")},
                                             "epoch": row["epoch"]})
        self.log(f"{self.label}: " + " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                             for k, v in row.items()) + self._eta(batches))
        improved = dev["dev_loss"] < run.best_dev_loss
        run.best_dev_loss = min(run.best_dev_loss, dev["dev_loss"])
        rng = distributed.gather(_rng_state(self.device), self.ranks)  # a collective: every rank takes part
        if self.ranks.is_main:
            if improved:
                save_checkpoint(self.best, {"setup": self.setup.as_dict(), "model": self.evaluated.state_dict(),
                                            "epoch": row["epoch"]})
            save_checkpoint(self.last, {"fingerprint": self.setup.fingerprint(), "setup": self.setup.as_dict(),
                                        "model": self.model.state_dict(), "optimiser": self.optimiser.state_dict(),
                                        "run": dataclasses.asdict(run), "rng": rng,
                                        **({} if self.average is None else {"average": self.average.state_dict()})})
        distributed.barrier(self.ranks)  # the checkpoint is on disk before any rank goes on

    def _eta(self, batches: int) -> str:
        """Time left: by the budget, or by the steps left at the mean step time so far."""
        run, cfg = self.run, self.cfg
        if run.epoch >= cfg.epochs or self.out_of_time():
            return " | done"
        per_step = run.train_seconds / max(run.step, 1)
        left = per_step * ((cfg.epochs - run.epoch) * batches - run.batch)
        if self.budget:
            left = min(left, self.budget - run.train_seconds)
        return f" | about {left / 60:.1f} min of training left"

    def fit(self, on_epoch_end: Callable[[Run], None] | None = None) -> Run:
        run, cfg = self.run, self.cfg
        batches_per_epoch = len(self.epoch_batches(0))
        total = batches_per_epoch * cfg.epochs
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn())
        with Progress(*columns, console=console, transient=False, disable=not self.ranks.is_main) as progress:
            task = progress.add_task(self.label, total=total, completed=run.step, status="")
            while run.epoch < cfg.epochs and not self.out_of_time():
                progress.update(task, description=f"{self.label} epoch {run.epoch + 1}/{cfg.epochs}")
                totals = dict.fromkeys(("loss", "rec", "kl_z", "kl_a", "grad_norm", "tokens", "sentences"), 0.0)
                totals["spikes"] = 0
                batches = self.epoch_batches(run.epoch)
                segment_seconds = 0.0
                self.model.train()
                while run.batch < len(batches) and not self.out_of_time():
                    start = time.perf_counter()
                    status = self._step(batches[run.batch], totals)
                    run.batch += 1
                    elapsed = time.perf_counter() - start
                    run.train_seconds += elapsed
                    segment_seconds += elapsed
                    self.window["seconds"] += elapsed
                    if run.step % cfg.log_every == 0:
                        self._log_window()
                    progress.update(task, advance=1, status=f"{status} {totals['tokens'] / segment_seconds:,.0f} tok/s")
                if run.batch == len(batches):
                    run.epoch, run.batch = run.epoch + 1, 0
                self._end_segment(totals, segment_seconds, len(batches), prices(max(run.step - 1, 0), cfg,
                                                                                 self.variant).kl_z)
                if on_epoch_end is not None:
                    on_epoch_end(run)
        return run


def train(setup: Setup, train_pairs: Pairs, dev_pairs: Pairs, checkpoint_dir: Path,
          on_epoch_end: Callable[[Run], None] | None = None, label: str = "",
          log_dir: Path | None = None) -> tuple[Seq2SeqVAE, Run]:
    """Train (or resume) a variant for train.epochs or until train.max_minutes of training, whichever
    comes first; returns the best model by the settled objective on dev, and the run's history.

    checkpoint_dir/last.pt is rewritten atomically at the end of every epoch and at a budget stop;
    checkpoint_dir/best.pt whenever the dev objective improves. A last.pt from the same setup and data
    is resumed from, unless it has trained further than asked (then the run starts afresh). Under
    torchrun every rank trains on its share of each batch (vae.distributed); rank 0 alone writes
    checkpoints and shows progress. With `log_dir`, rank 0 logs the training terms every
    train.log_every steps and the dev terms at every evaluation with DVCLive (vae.live).
    """
    trainer = Trainer(setup, train_pairs, dev_pairs, checkpoint_dir, label or setup.variant.attention, log_dir)
    run = trainer.fit(on_epoch_end)
    best_model, _ = load_model(trainer.best, trainer.device)
    return best_model, run
