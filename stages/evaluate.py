"""evaluate: BLEU/chrF per variant with signatures, paired bootstrap, and the results table (with the
seeds' table from results/seeds.json, when the studies pipeline has written it)."""

import json
from pathlib import Path

from vae import UserError, cli
from vae.data import read_lines
from vae.io import write_json, write_text
from vae.metrics import corpus_scores, paired_bootstrap
from vae.report import headline, results_table
from vae.studies import read_if_present, seeds_section


def main(args, params):
    variants = list(params.variants)
    unknown = [b for b in params.evaluate.baselines if b not in variants]
    if unknown:
        raise UserError(f"'evaluate.baselines': {unknown} are not variants; known: {', '.join(variants)}")
    missing = [name for name in variants if not (Path(args.decoded) / f"{name}.txt").is_file()]
    if missing:
        raise UserError(f"{Path(args.decoded) / (missing[0] + '.txt')}: no such file; decode first "
                        f"(dvc repro {' '.join('decode@' + name for name in missing)})")
    hypotheses = {name: read_lines(Path(args.decoded) / f"{name}.txt") for name in variants}
    references = read_lines(Path(args.references))[: len(next(iter(hypotheses.values())))]
    scores = {name: corpus_scores(hyps, references) for name, hyps in hypotheses.items()}
    for name in variants:
        scores[name]["train"] = json.loads((Path(args.trained) / f"{name}.json").read_text())
        scores[name]["latent"] = json.loads((Path(args.diagnosed) / f"{name}.json").read_text())
    significance = {}
    for baseline in params.evaluate.baselines:
        if baseline in hypotheses:
            others = [(n, h) for n, h in hypotheses.items() if n != baseline]
            significance[baseline] = paired_bootstrap((baseline, hypotheses[baseline]), others, references,
                                                      params.evaluate.bootstrap_samples)
    metrics = {"test_sentences": len(references), "variants": scores, "bootstrap": significance}
    write_json(args.metrics, metrics)
    for name, row in headline(metrics).items():
        write_json(Path(args.headline) / f"{name}.json", row)
    over_seeds = ["", "## Over seeds", "", "Seed 1 is the run above; seeds 2 and 3 are the studies pipeline's "
                  "points at the same budget ([studies/README.md](studies/README.md#seeds)).", "",
                  *seeds_section(read_if_present(Path(args.seeds)), params.claim)]
    write_text(args.table, results_table(metrics, params) + "\n".join(over_seeds) + "\n")
    cli.console.print(Path(args.table).read_text())


if __name__ == "__main__":
    p = cli.parser(__doc__)
    p.add_argument("--decoded", default="results/decode")
    p.add_argument("--trained", default="results/train")
    p.add_argument("--diagnosed", default="results/diagnose")
    p.add_argument("--references", default="data/prepared/test.tgt")
    p.add_argument("--metrics", default="results/metrics.json")
    p.add_argument("--headline", default="results/headline", help="one small file per variant: `dvc metrics show`")
    p.add_argument("--table", default="results/RESULTS.md")
    p.add_argument("--seeds", default="results/seeds.json")
    cli.run(main, p)
