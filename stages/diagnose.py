"""diagnose: latent-use evidence for one variant — KLs, active units, I(x;z), ablations, diversity."""

import time
from pathlib import Path

import torch

from vae import cli
from vae.batching import Pairs
from vae.data import read_lines
from vae.diagnostics import active_units, diversity, mutual_information, nll_per_token, posterior_moments
from vae.io import write_json
from vae.metrics import corpus_scores
from vae.search import SearchSettings, translate_ids
from vae.tokenizer import Tokenizers
from vae.train import load_model, resolve_device


def main(args, params):
    cfg, decode = params.diagnose, params.decode
    torch.manual_seed(cfg.seed)
    device = resolve_device(decode.device)
    model, _ = load_model(Path(args.models) / f"{args.variant}.pt", device)
    variant = model.variant
    tokenizers = Tokenizers.load(Path(args.data) / "tokenizer")
    test = Pairs.load(Path(args.data) / "encoded" / "test.pt", cfg.max_sentences)
    references = read_lines(Path(args.references))[: len(test)]
    start = time.perf_counter()
    tau = variant.gumbel_tau_min if variant.gumbel_anneal_rate > 0 else variant.gumbel_tau0

    def nll(**kwargs):
        return nll_per_token(model, test, decode.max_tokens, device, temperature=tau, **kwargs)

    def bleu(**kwargs):
        settings = SearchSettings(1, decode.length_penalty, decode.max_length_ratio, decode.max_length_slack, **kwargs)
        hyps = translate_ids(model, [s.tolist() for s in test.src], settings, decode.max_tokens, device)
        return corpus_scores(tokenizers.tgt.decode(hyps), references)["bleu"]

    means = nll()
    out = {"sentences": len(test), "nll_per_token": means["nll"], "kl_z_per_token": means["kl_z"],
           "kl_a_per_token": means["kl_a"], "greedy_bleu": bleu()}
    if variant.latent_z:
        mu, logvar = posterior_moments(model, test, decode.max_tokens, device)
        out |= {"active_units": active_units(mu), "z_dim": mu.size(1), "mutual_information": mutual_information(mu, logvar),
                "nll_z_zero": nll(z_source="zero")["nll"], "nll_z_prior": nll(z_source="prior")["nll"],
                "greedy_bleu_z_zero": bleu(z_source="zero"), "greedy_bleu_z_prior": bleu(z_source="prior")}
    if variant.attention in ("gaussian", "gumbel"):
        out["nll_a_sampled"] = nll(sample=True, z_source="mean")["nll"]
    if variant.latent_z or variant.attention in ("gaussian", "gumbel"):
        subset = [s.tolist() for s in test.src[: cfg.sample_sentences]]
        settings = SearchSettings(1, decode.length_penalty, decode.max_length_ratio, decode.max_length_slack, sample=True)
        draws = [tokenizers.tgt.decode(translate_ids(model, subset, settings, decode.max_tokens, device))
                 for _ in range(cfg.samples)]
        out["diversity"] = diversity([list(d) for d in zip(*draws)])
    out["seconds"] = time.perf_counter() - start
    write_json(Path(args.out) / f"{args.variant}.json", out)
    cli.console.print(f"diagnose {args.variant}: " + ", ".join(f"{k} {v:.4g}" for k, v in out.items()
                                                               if isinstance(v, (int, float))))


if __name__ == "__main__":
    p = cli.parser(__doc__)
    p.add_argument("--variant", required=True)
    p.add_argument("--data", default="data")
    p.add_argument("--models", default="models")
    p.add_argument("--references", default="data/prepared/test.tgt")
    p.add_argument("--out", default="results/diagnose")
    cli.run(main, p)
