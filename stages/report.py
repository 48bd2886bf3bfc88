"""report: results/REPORT.md — the BLEU table, latent-use evidence, figures, the studies' seeds and
price curve (results/seeds.json, results/price_curve.json, when the studies pipeline has written them)
and the collected DVC experiments, on one page."""

import json
from pathlib import Path

from vae import UserError, cli
from vae.io import write_text
from vae.report import report_markdown
from vae.studies import curve_markdown, read_if_present, seeds_section


def studies(seeds: dict | None, curve: dict | None, rule) -> list[str]:
    lines = ["### Seeds", "", *seeds_section(seeds, rule), ""]
    lines += ["### The Gaussian a's price curve", ""]
    if curve is None:
        return lines + ["results/price_curve.json is absent: the price curve has not been run."]
    return lines + [*curve_markdown(curve, rule), "", "![the price curve](studies/price_curve.png)"]


def main(args, params):
    if not Path(args.metrics).is_file():
        raise UserError(f"{args.metrics}: no such file; run the evaluate stage first (dvc repro evaluate)")
    figures = Path(args.figures)
    traversal = figures / "z_traversal.md"
    text = report_markdown(json.loads(Path(args.metrics).read_text()),
                           json.loads(Path(args.experiments).read_text()), {p.name for p in figures.glob("*.png")},
                           traversal.read_text(encoding="utf-8") if traversal.is_file() else "", params,
                           studies(read_if_present(Path(args.seeds)), read_if_present(Path(args.curve)), params.claim))
    write_text(args.out, text)
    cli.console.print(f"report: {args.out}")


if __name__ == "__main__":
    p = cli.parser(__doc__)
    p.add_argument("--metrics", default="results/metrics.json")
    p.add_argument("--experiments", default="results/experiments.json")
    p.add_argument("--figures", default="results/figures")
    p.add_argument("--seeds", default="results/seeds.json")
    p.add_argument("--curve", default="results/price_curve.json")
    p.add_argument("--out", default="results/REPORT.md")
    cli.run(main, p)
