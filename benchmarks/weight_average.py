"""What averaging the weights buys: one training run, several exponential averages of its weights.

The averages do not change the training trajectory, so one run measures the training weights (the
baseline) and an average per `--decays` value side by side: dev NLL and greedy dev BLEU after every
epoch, and at the end test BLEU with beam 5 for the training weights and the best average by dev NLL.
Writes results/weight_average.json and keeps each final average as checkpoints/weight_average/<decay>.pt.

    PYTHONPATH=. python benchmarks/weight_average.py --variant plain --decays 0.995 0.998 0.999 0.9995 --test
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from vae.batching import Pairs
from vae.config import load_params
from vae.data import read_lines
from vae.io import save_torch, write_json
from vae.objective import settled_prices
from vae.search import SearchSettings
from vae.tokenizer import Tokenizers
from vae.train import Trainer, evaluate, setup_for, weight_average

from time_to_bleu import bleu, machine, run_arguments  # noqa: E402 (benchmarks/ is on the path when run as a script)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variant", default="plain")
    p.add_argument("-S", dest="overrides", action="append", default=[], help="section.key=value, as dvc exp run -S")
    p.add_argument("--decays", type=float, nargs="+", default=[0.995, 0.998, 0.999, 0.9995])
    run_arguments(p, "weight_average")
    args = p.parse_args()

    params = load_params(args.params, [*args.overrides, "train.weight_average=0"])
    data, cfg = Path(args.data), params.train
    train_pairs = Pairs.load(data / "encoded" / "train.pt", cfg.max_pairs)
    dev_pairs = Pairs.load(data / "encoded" / "dev.pt")
    dev_refs = read_lines(data / "prepared" / "dev.tgt")
    tokenizers = Tokenizers.load(data / "tokenizer")
    variant = params.variants[args.variant]
    setup = setup_for(params.model, variant, cfg, data, train_pairs)
    directory = Path(args.checkpoints)
    trainer = Trainer(setup, train_pairs, dev_pairs, directory / "run", f"{args.variant}/weights")
    if trainer.run.step:
        raise SystemExit(f"{directory / 'run'} holds a started run; delete it: the averages are not resumed")
    averages = {decay: weight_average(trainer.model, decay) for decay in args.decays}
    train_step = trainer._step

    def step(indices, totals):
        status = train_step(indices, totals)
        for average in averages.values():
            average.update_parameters(trainer.model)
        return status

    trainer._step = step
    weights = {"training weights": trainer.model, **{f"average {d:g}": a.module for d, a in averages.items()}}
    greedy = SearchSettings.from_config(params.decode, beam_size=1)
    rows = []

    def measure(run) -> None:
        for name, model in weights.items():
            dev = evaluate(model, dev_pairs, cfg.max_tokens, trainer.device, cfg.precision,
                           settled_prices(cfg, variant))
            scores, _ = bleu(model, dev_pairs.head(args.dev_sentences), dev_refs, tokenizers, greedy,
                             params.decode.max_tokens, trainer.device)
            rows.append({"weights": name, "epoch": run.epoch, "step": run.step,
                         "train_minutes": round(run.train_seconds / 60, 2), "dev_ppl": dev["dev_ppl"],
                         "dev_nll_per_token": dev["dev_nll_per_token"], "dev_bleu_greedy": scores["bleu"]})
            print(json.dumps(rows[-1]), flush=True)

    start = time.perf_counter()
    run = trainer.fit(on_epoch_end=measure)
    for decay, average in averages.items():
        save_torch(directory / f"{decay:g}.pt", {"setup": setup.as_dict(), "model": average.module.state_dict(),
                                                   "epoch": run.epoch})
    tests = []
    if args.test:
        test = Pairs.load(data / "encoded" / "test.pt")
        refs = read_lines(data / "prepared" / "test.tgt")
        last = [r for r in rows if r["step"] == run.step and r["weights"] != "training weights"]
        best = min(last, key=lambda r: r["dev_nll_per_token"])["weights"]
        for name in ("training weights", best):
            model = weights[name]
            scores, speed = bleu(model, test, refs, tokenizers, SearchSettings.from_config(params.decode, beam_size=5),
                                 params.decode.max_tokens, trainer.device)
            tests.append({"weights": name, "test_bleu_beam5": scores["bleu"], "signature": scores["bleu_signature"],
                          "sentences": len(test), "sentences_per_s": round(speed, 1)})
            print(json.dumps(tests[-1]), flush=True)
    write_json(Path(args.out), {
        "command": "PYTHONPATH=. python benchmarks/weight_average.py " + " ".join(
            [f"--variant {args.variant}", *(f"-S {o}" for o in args.overrides),
             "--decays " + " ".join(f"{d:g}" for d in args.decays), *(["--test"] if args.test else [])]),
        "variant": args.variant, "machine": machine(trainer.device, cfg.precision),
        "wall_minutes": round((time.perf_counter() - start) / 60, 1), "epochs": rows, "test": tests})


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
