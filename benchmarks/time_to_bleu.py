"""BLEU against training minutes: how much translation quality a minute of training buys.

Trains one variant under a configuration (params.yaml plus `-S key=value` overrides, as in
`dvc exp run`) in segments of `--every` training minutes up to `--minutes`; after each segment
(the run resumes from its checkpoint, so evaluation time is not training time) it measures dev
BLEU by greedy search on the first `--dev-sentences` dev pairs and, with `--test`, test BLEU with
beam 5 on the whole test split and the decoding speed (in the point; the JSON's
`decode` is the pipeline's own model's, from --trained). Points are merged into
results/time_to_bleu.json (a rerun of a variant's configuration replaces its points) and drawn in time_to_bleu.png.

Every point records what it was measured with (`provenance`): the beam of each BLEU, the decode length
cap (max_length_ratio, max_length_slack), the training and decoding precision, the CPU model, torch's
version and the commit (`-dirty` where vae/, stages/ or benchmarks/ had uncommitted changes).

A peer system is drawn from any results/*joeynmt*/*.json that holds {"label": ..., "points":
[{"train_minutes": m, "bleu": b, "split": "dev"|"test", "beam": k}, ...]}: benchmarks/joeynmt/run.sh writes
one (JoeyNMT's RNN at our size, with its config, log, CPU model, torch and commit beside the points; how to
measure both side by side: benchmarks/joeynmt/README.md); nothing is drawn when there is none.

    PYTHONPATH=. python benchmarks/time_to_bleu.py --variant plain --config lr3e-3 -S train.learning_rate=0.003 \\
        --minutes 16 --every 4 --test

With --trained, nothing is trained: the pipeline's own model of each variant named (models/<variant>.pt,
its training minutes from results/train/<variant>.json) becomes one point, with dev BLEU (greedy) and
test BLEU (beam 5, the whole test split: the pipeline's own where `dvc repro` decoded so):

    PYTHONPATH=. python benchmarks/time_to_bleu.py --trained plain deterministic gumbel --config root-2ep
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import time
from pathlib import Path

import torch

from vae.batching import Pairs
from vae.checkpoint import device_name, load_model, resolve_device
from vae.config import DecodeConfig, load_params
from vae.data import read_lines
from vae.io import atomic_path, write_json
from vae.metrics import corpus_scores
from vae.search import SearchSettings, translate_ids
from vae.tokenizer import Tokenizers
from vae.train import setup_for, train

BUDGET_MINUTES = 16.0  # the training budget (#14), drawn on the plot and the default of --minutes
PROVENANCE = ("beam", "max_len", "precision", "cpu_model", "torch", "commit")  # every point has these keys
REPO = Path(__file__).resolve().parents[1]


def cpu_name() -> str:
    """This machine's CPU model ('AMD EPYC ...'), without the thread count that device_name adds."""
    return device_name(torch.device("cpu")).rsplit(", ", 1)[0]


def machine(device: torch.device, precision: str, threads: int | None = None) -> str:
    """'CPU <model>, <threads> threads, <precision>' or 'GPU <name>, <precision>' (vae.checkpoint.device_name)."""
    if device.type == "cuda":
        return f"GPU {device_name(device)}, {precision}"
    return f"CPU {cpu_name()}, {threads or torch.get_num_threads()} threads, {precision}"


def commit() -> str:
    """`git rev-parse --short HEAD`, with `-dirty` where the code that ran differs from it."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
    head = git("rev-parse", "--short", "HEAD")
    if head.returncode:
        return "unknown (not a git checkout)"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "vae", "stages", "benchmarks").stdout.strip()
    return head.stdout.strip() + ("-dirty" if dirty else "")


def provenance(beams: dict[str, int], search: DecodeConfig | SearchSettings, precision: dict[str, str]) -> dict:
    """What a point was measured with: `beams` maps each BLEU of the point to its beam size
    ({"dev_bleu": 1, "test_bleu": 5}), `search` holds the length cap, `precision` is per phase
    ({"train": "bf16", "decode": "bf16"})."""
    return {"beam": beams,
            "max_len": {"max_length_ratio": search.max_length_ratio, "max_length_slack": search.max_length_slack},
            "precision": precision,
            "cpu_model": cpu_name(),
            "torch": torch.__version__, "commit": commit()}


def run_arguments(p: argparse.ArgumentParser, name: str) -> None:
    """The options every training benchmark shares; `name` names its checkpoints and results."""
    p.add_argument("--dev-sentences", type=int, default=500)
    p.add_argument("--test", action="store_true", help="beam-5 BLEU on the whole test split after every segment")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--data", default="data")
    p.add_argument("--checkpoints", default=f"checkpoints/{name}")
    p.add_argument("--out", default=f"results/{name}.json")


def bleu(model, pairs: Pairs, references: list[str], tokenizers: Tokenizers, settings: SearchSettings,
         max_tokens: int, device):
    start = time.perf_counter()
    ids = translate_ids(model, [s.tolist() for s in pairs.src], settings, max_tokens, device)
    seconds = time.perf_counter() - start
    return corpus_scores(tokenizers.tgt.decode(ids), references[: len(pairs)]), len(pairs) / seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variant", default="plain")
    p.add_argument("--config", required=True, help="a name for the overrides, e.g. 'default' or 'lr3e-3'")
    p.add_argument("-S", dest="overrides", action="append", default=[], help="section.key=value, as dvc exp run -S")
    p.add_argument("--minutes", type=float, default=BUDGET_MINUTES)
    p.add_argument("--every", type=float, default=4.0, help="training minutes between dev BLEU measurements")
    p.add_argument("--epochs", type=int, default=0,
                   help="N > 0: measure after each of N epochs instead (equal updates, whatever the machine's load)")
    run_arguments(p, "time_to_bleu")
    p.add_argument("--trained", nargs="+", metavar="VARIANT", help="record the pipeline's trained models instead")
    args = p.parse_args()
    if args.trained:
        return record_trained(args)

    params = load_params(args.params, args.overrides)
    data = Path(args.data)
    cfg = params.train
    train_pairs = Pairs.load(data / "encoded" / "train.pt", cfg.max_pairs)
    dev_pairs = Pairs.load(data / "encoded" / "dev.pt")
    dev_sample = dev_pairs.head(args.dev_sentences)
    dev_refs = read_lines(data / "prepared" / "dev.tgt")
    test, test_refs = Pairs.load(data / "encoded" / "test.pt"), read_lines(data / "prepared" / "test.tgt")
    tokenizers = Tokenizers.load(data / "tokenizer")
    device = resolve_device(cfg.device)
    checkpoints = Path(args.checkpoints) / args.config / args.variant
    points = []
    marks = [round(args.every * k, 3) for k in range(1, int(args.minutes / args.every + 1e-9) + 1)]
    if not marks or marks[-1] < args.minutes:
        marks.append(args.minutes)
    limits = [dict(epochs=e, max_minutes=0.0) for e in range(1, args.epochs + 1)] if args.epochs else \
        [dict(max_minutes=minutes) for minutes in marks]
    setup = setup_for(params.model, params.variants[args.variant], cfg, data, train_pairs)  # hashes the data once
    for limit in limits:
        setup = dataclasses.replace(setup, train=dataclasses.replace(cfg, **limit))
        model, run = train(setup, train_pairs, dev_pairs, checkpoints, label=f"{args.variant}/{args.config}")
        last = run.history[-1]
        scores, _ = bleu(model, dev_sample, dev_refs, tokenizers, SearchSettings.from_config(params.decode, beam_size=1),
                         params.decode.max_tokens, device)
        point = {"variant": args.variant, "config": args.config, "overrides": args.overrides,
                 "train_minutes": round(run.train_seconds / 60, 2), "steps": run.step, "epochs": last["epoch"],
                 "dev_nll_per_token": last["dev_nll_per_token"], "dev_ppl": last["dev_ppl"],
                 "dev_bleu": scores["bleu"], "dev_sentences": len(dev_sample), "test_bleu": None,
                 "tokens_per_s": sum(r["tokens_per_s"] * r["epoch_seconds"] for r in run.history) / run.train_seconds,
                 "machine": machine(device, cfg.precision),
                 **provenance({"dev_bleu": 1}, params.decode,
                              {"train": cfg.precision, "decode": params.decode.precision})}
        if args.test:  # the speed stays with its point: the top-level `decode` is the pipeline's model's (--trained)
            scores, speed = bleu(model, test, test_refs, tokenizers, SearchSettings.from_config(params.decode, beam_size=5),
                                 params.decode.max_tokens, device)
            point |= {"test_bleu": scores["bleu"], "test_bleu_signature": scores["bleu_signature"],
                      "test_sentences": len(test), "beam5_sentences_per_s": round(speed, 1),
                      "beam": {"dev_bleu": 1, "test_bleu": 5}}
        print(json.dumps(point), flush=True)
        points.append(point)
        merge(Path(args.out), points, None)  # each segment's point is kept as soon as it is measured
        if run.epoch >= cfg.epochs and not args.epochs:
            break


def record_trained(args) -> None:
    """One point per variant from the pipeline's models/<variant>.pt and results/train/<variant>.json.
    Test BLEU is the pipeline's own (results/metrics.json) where its decode was beam 5 on the whole
    test split; otherwise the model is decoded here with beam 5."""
    params = load_params(args.params, args.overrides)
    data = Path(args.data)
    tokenizers = Tokenizers.load(data / "tokenizer")
    dev = Pairs.load(data / "encoded" / "dev.pt").head(args.dev_sentences)
    test = Pairs.load(data / "encoded" / "test.pt")
    device = resolve_device(params.decode.device)
    metrics = json.loads(Path("results/metrics.json").read_text())
    points, decode = [], None
    for variant in args.trained:
        model, _ = load_model(Path("models") / f"{variant}.pt", device, tokenizer=data / "tokenizer")
        trained = json.loads((Path("results") / "train" / f"{variant}.json").read_text())
        decoded = json.loads((Path("results") / "decode" / f"{variant}.json").read_text())
        dev_scores, _ = bleu(model, dev, read_lines(data / "prepared" / "dev.tgt"), tokenizers,
                             SearchSettings.from_config(params.decode, beam_size=1), params.decode.max_tokens, device)
        if decoded["beam_size"] == 5 and decoded["sentences"] == metrics["test_sentences"] == len(test):
            scores, speed, precision = metrics["variants"][variant], decoded["sentences_per_s"], decoded["precision"]
        else:
            scores, speed = bleu(model, test, read_lines(data / "prepared" / "test.tgt"), tokenizers,
                                 SearchSettings.from_config(params.decode, beam_size=5), params.decode.max_tokens, device)
            precision = params.decode.precision
        point = {"variant": variant, "config": args.config, "overrides": args.overrides,
                 "train_minutes": round(trained["train_minutes"], 2), "steps": trained["steps"],
                 "epochs": trained["epochs"], "dev_nll_per_token": trained["dev_nll_per_token"],
                 "dev_ppl": trained["dev_ppl"], "dev_bleu": dev_scores["bleu"], "dev_sentences": len(dev),
                 "test_bleu": scores["bleu"], "test_bleu_signature": scores["bleu_signature"],
                 "test_sentences": len(test), "tokens_per_s": trained["mean_tokens_per_s"],
                 "machine": machine(torch.device(trained["device"]), trained["precision"]),
                 "trained_on": trained.get("device_name"),  # provenance's CPU, torch and commit are the scoring's
                 **provenance({"dev_bleu": 1, "test_bleu": 5}, params.decode,
                              {"train": trained["precision"], "decode": precision})}
        print(json.dumps(point), flush=True)
        points.append(point)
        if variant == "plain":
            decode = {"beam5_sentences_per_s": round(speed, 1), "model": f"models/{variant}.pt ({args.config})",
                      "sentences": len(test), "test_bleu": scores["bleu"], "bleu_signature": scores["bleu_signature"],
                      "machine": machine(device, precision), "max_tokens": params.decode.max_tokens,
                      **provenance({"test_bleu": 5}, params.decode,
                                   {"train": trained["precision"], "decode": precision})}
    merge(Path(args.out), points, decode)


def merge(path: Path, points: list[dict], decode: dict | None) -> None:
    """Add `points` to the JSON at `path`, replacing every earlier point of their (variant, config)."""
    old = json.loads(path.read_text()) if path.is_file() else {"points": [], "decode": None}
    keys = {(q["variant"], q["config"]) for q in points}
    kept = [q for q in old["points"] if (q["variant"], q["config"]) not in keys]
    write_json(path, {"points": kept + points, "decode": decode or old.get("decode")})
    plot(path)


def best_configurations(points: list[dict]) -> dict[str, tuple[str, str]]:
    """Per variant, the (variant, config) whose best test BLEU is highest; one without a test BLEU only
    where its variant has none measured."""
    best: dict[str, tuple[float, tuple[str, str]]] = {}
    for q in points:
        score = q["test_bleu"] if q.get("test_bleu") is not None else -1.0
        if q["variant"] not in best or score > best[q["variant"]][0]:
            best[q["variant"]] = (score, (q["variant"], q["config"]))
    return {variant: key for variant, (_, key) in best.items()}


def peers(results: Path) -> list[dict]:
    """The peer systems' points from every `*joeynmt*/*.json` under `results` (none: an empty list)."""
    return [json.loads(f.read_text()) for f in sorted(results.glob("*joeynmt*/*.json"))]


def plot(path: Path) -> None:
    """BLEU against training minutes: per variant, its best configuration by test BLEU in colour, the
    other configurations faint behind it, the 16-minute budget, and any peer's points (`peers`)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = json.loads(path.read_text())
    lines: dict[tuple, list] = {}
    for q in results["points"]:
        lines.setdefault((q["variant"], q["config"]), []).append(q)
    best = best_configurations(results["points"])
    variants = sorted(best)
    colours = dict(zip(variants, plt.get_cmap("tab10").colors))
    fig, ax = plt.subplots(figsize=(9, 4.8))
    for key, qs in sorted(lines.items(), key=lambda item: item[0] == best[item[0][0]]):  # the best on top
        qs.sort(key=lambda q: q["train_minutes"])
        chosen = key == best[key[0]]
        style = dict(color=colours[key[0]], alpha=1.0 if chosen else 0.2, linewidth=2 if chosen else 1)
        ax.plot([q["train_minutes"] for q in qs], [q["dev_bleu"] for q in qs], marker="o", markersize=4,
                label=f"{key[0]}: {key[1]} ({qs[-1]['cpu_model']})" if chosen else None, **style)
        tests = [q for q in qs if q.get("test_bleu") is not None]
        ax.scatter([q["train_minutes"] for q in tests], [q["test_bleu"] for q in tests], marker="*",
                   s=140 if chosen else 60, color=colours[key[0]], alpha=style["alpha"], zorder=3)
    if len(lines) > len(best):
        ax.plot([], [], color="grey", alpha=0.3, label="other configurations (faint)")
    ax.axvline(BUDGET_MINUTES, color="grey", linestyle=":", linewidth=1, label=f"{BUDGET_MINUTES:g}-minute budget")
    for peer, marker in zip(peers(path.parent), "XPDv^<>"):
        for q in peer["points"]:
            ax.scatter([q["train_minutes"]], [q["bleu"]], marker=marker, s=120 if q["split"] == "test" else 60,
                       color="black", label=f"{peer['label']}: {q['split']}, beam {q['beam']}")
    if not results["points"]:
        ax.set_ylim(0, 30)
        ax.text(0.5, 0.5, f"no point recorded yet ({path.name})", transform=ax.transAxes, ha="center", color="grey")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("training minutes")
    ax.set_ylabel("BLEU (dots: dev greedy; stars: test beam 5)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="best configuration per variant",
              title_fontsize=7)
    fig.tight_layout()
    with atomic_path(path.with_suffix(".png")) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
