"""The peer, reproducible: JoeyNMT's RNN at our size (benchmarks/joeynmt/rnn.yaml), trained on the
project's prepared splits with the project's sentencepiece model for a stated budget, its final weights
decoded greedily on the first --dev-sentences dev pairs and with beam 5 on the test split, both scored
by the sacreBLEU that scores our models (vae.metrics.corpus_scores). Run through run.sh, which installs
JoeyNMT into .venv-joeynmt and passes --joeynmt-python:

    bash benchmarks/joeynmt/run.sh --name rnn-16min --minutes 16

The budget: --minutes M interrupts training (SIGINT: JoeyNMT saves its weights and stops) M minutes after
its first epoch began, so data loading is not counted; --epochs E stops it after E epochs; either or both.
No validation runs inside the budget. It writes, under --out (results/joeynmt/):
  <name>.json  the point that benchmarks/time_to_bleu.py draws ({"label", "points": [{"train_minutes",
               "bleu", "split", "beam"}, ...]}) and what it was measured with (`record`)
  <name>.log   JoeyNMT's training log, then its decoding log
  <name>.yaml  the config that ran
Checkpoints, JoeyNMT's copy of the data and the hypotheses stay under --work (checkpoints/joeynmt/<name>/).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import sentencepiece as spm
import torch
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
from time_to_bleu import commit  # noqa: E402

from vae.checkpoint import device_name  # noqa: E402
from vae.metrics import corpus_scores  # noqa: E402

SPLITS = ("train", "dev", "test")
STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) - ")


def first_lines(path: Path, n: int) -> list[str]:
    """The first `n` lines of `path` (all of them for n = 0), without their line ends."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return lines[:n] if n > 0 else lines


def prepare_data(data: Path, work: Path, sizes: dict[str, int], langs: tuple[str, str]) -> dict[str, int]:
    """Write JoeyNMT's plain-text copy of each split (<work>/<split>.<lang>), cut to its size in `sizes`,
    and one vocabulary file per side from our sentencepiece model; return each split's pair count."""
    missing = [str(data / "prepared" / f"{s}.{e}") for s in SPLITS for e in ("src", "tgt")
               if not (data / "prepared" / f"{s}.{e}").is_file()]
    missing += [str(data / "tokenizer" / f"{side}.model") for side in ("src", "tgt")
                if not (data / "tokenizer" / f"{side}.model").is_file()]
    if missing:
        sys.exit(f"missing {', '.join(missing)}: run `dvc repro tokenize` first (it prepares the splits too)")
    work.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split in SPLITS:
        for ext, lang in zip(("src", "tgt"), langs):
            lines = first_lines(data / "prepared" / f"{split}.{ext}", sizes[split])
            (work / f"{split}.{lang}").write_text("\n".join(lines) + "\n", encoding="utf-8")
        counts[split] = len(lines)
    for side in ("src", "tgt"):  # JoeyNMT puts its own <unk> <pad> <s> </s> first; ours are skipped as repeats
        model = spm.SentencePieceProcessor(model_file=str(data / "tokenizer" / f"{side}.model"))
        pieces = [model.id_to_piece(i) for i in range(model.get_piece_size())]
        (work / f"{side}_vocab.txt").write_text("\n".join(pieces) + "\n", encoding="utf-8")
    return counts


def training_config(template: Path, data: Path, work: Path, epochs: int) -> dict:
    """The template with the paths of this run and its epochs filled in."""
    cfg = yaml.safe_load(template.read_text(encoding="utf-8"))
    d = cfg["data"]
    d["train"], d["dev"], d["test"] = (str(work / "data" / s) for s in SPLITS)
    for key, side in (("src", "src"), ("trg", "tgt")):
        d[key]["voc_file"] = str(work / "data" / f"{side}_vocab.txt")
        d[key]["tokenizer_cfg"]["model_file"] = str(data / "tokenizer" / f"{side}.model")
    cfg["training"]["epochs"] = epochs
    cfg["training"]["model_dir"] = str(work / "model")
    return cfg


def write_yaml(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def train(joeynmt: list[str], config: Path, log: Path, minutes: float, env: dict) -> float | None:
    """Run `joeynmt train`; with `minutes` > 0, interrupt it that long after its log says EPOCH 1. Returns
    the minutes from EPOCH 1 to the interrupt (None without one): JoeyNMT stops at the end of the update
    in progress, so its log's end can be later."""
    output = log.parent.parent / "train.out"  # JoeyNMT's console: a file, so a long run cannot fill a pipe
    with output.open("w") as out:
        # SIGINT back to its default in the child: a shell starts a background job (`nohup ... &`) with SIGINT
        # ignored, Python then installs no KeyboardInterrupt handler, and JoeyNMT would train past the budget.
        proc = subprocess.Popen([*joeynmt, "train", str(config), "--skip-test"], env=env, stdout=out, stderr=out,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        started, sent = None, None
        while proc.poll() is None:
            time.sleep(0.5)
            if started is None and log.is_file() and " - EPOCH 1" in log.read_text(encoding="utf-8"):
                started = time.monotonic()
            if minutes > 0 and started is not None and time.monotonic() - started >= minutes * 60:
                proc.send_signal(signal.SIGINT)
                sent = round((time.monotonic() - started) / 60, 2)
                print(f"budget reached: SIGINT sent {sent} minutes after EPOCH 1", flush=True)
                break
        proc.wait()
    if proc.returncode not in (0, -signal.SIGINT):
        sys.exit(f"joeynmt train failed ({proc.returncode}); its output ends:\n{output.read_text()[-3000:]}")
    return sent


def training_record(log_text: str) -> dict:
    """From JoeyNMT's training log: minutes from the start of epoch 1 to the end of training, the updates
    (the step of the last checkpoint saved) and the epoch training stopped in."""
    def stamp(line: str) -> datetime.datetime:
        return datetime.datetime.strptime(STAMP.match(line).group(1), "%Y-%m-%d %H:%M:%S,%f")
    lines = log_text.splitlines()
    start = next(stamp(line) for line in lines if line.endswith(" - EPOCH 1"))
    end = next(stamp(line) for line in reversed(lines)
               if " - Interrupt at epoch" in line or " - Training ended" in line)
    saved = [int(m.group(1)) for m in re.finditer(r"Checkpoint saved in .*?(\d+)\.ckpt", log_text)]
    epochs = [int(m.group(1)) for m in re.finditer(r" - EPOCH (\d+)$", log_text, re.MULTILINE)]
    return {"train_minutes": round((end - start).total_seconds() / 60, 2), "updates": saved[-1],
            "epoch_reached": epochs[-1], "interrupted": any(" - Interrupt at epoch" in line for line in lines)}


def decode(joeynmt: list[str], cfg: dict, split: str, beam: int, work: Path, env: dict) -> tuple[list[str], float]:
    """Decode one split with the final weights (`joeynmt test`); its hypotheses and the seconds its search
    took (JoeyNMT's "Generation took", without starting up and loading the model)."""
    cfg = json.loads(json.dumps(cfg))  # a deep copy
    for other in SPLITS:
        if other != split:
            cfg["data"].pop(other)
    cfg["testing"]["beam_size"] = beam
    cfg["testing"]["load_model"] = str(work / "model" / "latest.ckpt")
    config = write_yaml(work / f"decode_{split}.yaml", cfg)
    done = subprocess.run([*joeynmt, "test", str(config), "-o", str(work / "hyp")], env=env,
                          capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"joeynmt test ({split}) failed ({done.returncode}); its output ends:\n{done.stderr[-3000:]}")
    log = (work / "model" / "test.log").read_text(encoding="utf-8")
    seconds = float(re.findall(r"Generation took ([0-9.]+)\[sec\]", log)[-1])
    return (work / f"hyp.{split}").read_text(encoding="utf-8").splitlines(), seconds


def record(name: str, versions: dict, trained: dict, dev: dict | None, test: dict, config: str, threads: int,
           budget: dict, train_pairs: int, batch_size: int) -> dict:
    """The result: time_to_bleu's peer format ("label", "points") and what it was measured with."""
    epochs = round(trained["updates"] * batch_size / train_pairs, 2)  # passes over the training pairs
    cpu = device_name(torch.device("cpu")).rsplit(", ", 1)[0]  # as time_to_bleu.py's points record it
    points = ([{"train_minutes": trained["train_minutes"], "bleu": dev["bleu"], "split": "dev", "beam": 1,
                "sentences": dev["sentences"]}] if dev else [])
    points.append({"train_minutes": trained["train_minutes"], "bleu": test["bleu"], "split": "test", "beam": 5,
                   "sentences": test["sentences"]})
    return {"label": f"JoeyNMT {versions['joeynmt']} RNN ({name}; {cpu}, {threads} threads)", "points": points,
            "system": f"joeynmt {versions['joeynmt']}", "config": config, "template": "benchmarks/joeynmt/rnn.yaml",
            "budget": budget, "train_minutes": trained["train_minutes"], "epochs": epochs,
            "epoch_reached": trained["epoch_reached"], "interrupted": trained["interrupted"],
            "interrupt_sent_minutes": trained.get("interrupt_sent_minutes"),
            "updates": trained["updates"], "train_pairs": train_pairs,
            "dev_bleu": dev["bleu"] if dev else None, "dev_beam": 1, "dev_sentences": dev["sentences"] if dev else 0,
            "test_bleu": test["bleu"], "test_chrf": test["chrf"], "bleu_signature": test["bleu_signature"],
            "beam": 5, "test_sentences": test["sentences"], "beam5_sentences_per_s": test["sentences_per_s"],
            "cpu_model": cpu, "threads": threads, "torch": versions["torch"],
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "commit": commit()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", required=True, help="the run's name: results/joeynmt/<name>.{json,log,yaml}")
    p.add_argument("--minutes", type=float, default=0.0, help="training minutes (0: no time limit)")
    p.add_argument("--epochs", type=int, default=0, help="training epochs (0: as many as --minutes allows)")
    p.add_argument("--train-pairs", type=int, default=0, help="the first N training pairs (0: all)")
    p.add_argument("--dev-sentences", type=int, default=500, help="greedy dev BLEU on the first N (0: none)")
    p.add_argument("--test-sentences", type=int, default=0, help="beam-5 test BLEU on the first N (0: all)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="OMP/MKL threads of JoeyNMT's torch")
    p.add_argument("--data", type=Path, default=Path("data"))
    p.add_argument("--config", type=Path, default=Path("benchmarks/joeynmt/rnn.yaml"))
    p.add_argument("--work", type=Path, default=Path("checkpoints/joeynmt"))
    p.add_argument("--out", type=Path, default=Path("results/joeynmt"))
    p.add_argument("--joeynmt-python", default=".venv-joeynmt/bin/python")
    args = p.parse_args()
    if args.minutes <= 0 and args.epochs <= 0:
        p.error("state a budget: --minutes and/or --epochs")

    work = args.work / args.name  # relative to the repository, as the config records it
    shutil.rmtree(work, ignore_errors=True)
    template = yaml.safe_load(args.config.read_text(encoding="utf-8"))["data"]
    counts = prepare_data(args.data, work / "data", {"train": args.train_pairs, "dev": max(args.dev_sentences, 1),
                                                     "test": args.test_sentences},
                          (template["src"]["lang"], template["trg"]["lang"]))
    cfg = training_config(args.config, args.data, work, args.epochs or 10_000)
    config = write_yaml(work / "config.yaml", cfg)
    env = os.environ | {"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    joeynmt = [args.joeynmt_python, "-m", "joeynmt"]
    versions = json.loads(subprocess.run(
        [args.joeynmt_python, "-c", "import json, torch, importlib.metadata as m; "
         "print(json.dumps({'joeynmt': m.version('joeynmt'), 'torch': torch.__version__}))"],
        check=True, capture_output=True, text=True).stdout)

    train_log = work / "model" / "train.log"
    sent = train(joeynmt, config, train_log, args.minutes, env)
    trained = training_record(train_log.read_text(encoding="utf-8")) | {"interrupt_sent_minutes": sent}
    print(json.dumps(trained), flush=True)

    dev = None
    if args.dev_sentences > 0:
        hyps, _ = decode(joeynmt, cfg, "dev", 1, work, env)
        dev = corpus_scores(hyps, first_lines(args.data / "prepared" / "dev.tgt", counts["dev"])) | \
            {"sentences": len(hyps)}
    hyps, seconds = decode(joeynmt, cfg, "test", 5, work, env)
    test = corpus_scores(hyps, first_lines(args.data / "prepared" / "test.tgt", counts["test"])) | \
        {"sentences": len(hyps), "sentences_per_s": round(len(hyps) / seconds, 1)}

    args.out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(config, args.out / f"{args.name}.yaml")
    logs = [train_log.read_text(encoding="utf-8"), (work / "model" / "test.log").read_text(encoding="utf-8")]
    (args.out / f"{args.name}.log").write_text("".join(logs), encoding="utf-8")
    budget = {"minutes": args.minutes or None, "epochs": args.epochs or None, "train_pairs": counts["train"]}
    result = record(args.name, versions, trained, dev, test, str(args.out / f"{args.name}.yaml"), args.threads,
                    budget, counts["train"], cfg["training"]["batch_size"])
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
