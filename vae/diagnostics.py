"""Does z carry information? Latent-use evidence for one trained variant.

- KL_z and KL_a per target token (z, a at their means for the NLL; KLs are exact).
- Active units of z: dimensions d with Var_x(E_q[z_d|x]) ≥ 0.01 (Burda et al., 2016).
- I(x; z) under the aggregate posterior, estimated as in He et al. (2019, "Lagging inference
  networks"): E_x E_q(z|x)[log q(z|x) − log q(z)], q(z) ≈ (1/N) Σ_n q(z|x_n).
- The test NLL when the decoder gets z = 0 or z ~ p(z) instead of E_q[z|x], and, for a latent
  attention, when a is sampled from q(a|X) instead of taking its mean, or set to its prior's
  mean (Gaussian: 0 or h̄; Gumbel: uniform weights) — how much the decoder relies on a.
- Sampling diversity over k draws of (z, a) per source: distinct-1/2 and self-BLEU.
"""

from __future__ import annotations

import math

import torch
from sacrebleu.metrics import BLEU

from vae.batching import Pairs, buckets, collate
from vae.config import DecodeConfig, DiagnoseConfig
from vae.measure import term_sums
from vae.metrics import corpus_scores
from vae.model import Seq2SeqVAE
from vae.model.latent import kl_per_dimension, reparameterise
from vae.search import SearchSettings, beam_search, translate_ids
from vae.tokenizer import Tokenizers

ACTIVE_UNIT_THRESHOLD = 0.01


def nll_per_token(model: Seq2SeqVAE, pairs: Pairs, max_tokens: int, device, *, sample: bool = False,
                  z_source: str = "posterior", a_source: str = "posterior") -> dict[str, float]:
    """Test rec NLL, KL_z and KL_a per target token under one way of feeding z and a."""
    sums = term_sums(model, pairs, max_tokens, device, sample=sample, z_source=z_source, a_source=a_source)
    return {"nll": sums["rec"] / sums["tokens"], "kl_z": sums["kl_z"] / sums["tokens"], "kl_a": sums["kl_a"] / sums["tokens"]}


@torch.no_grad()
def posterior_moments(model: Seq2SeqVAE, pairs: Pairs, max_tokens: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """μ and log σ² of q(z|x) for every sentence, in the order of `pairs`: (n, z_dim) each."""
    model.eval()
    order, mus, logvars = [], [], []
    for indices in buckets(pairs, max_tokens, seed=None):
        batch = collate([pairs.src[i] for i in indices], [pairs.tgt[i] for i in indices]).to(device)
        _, summary = model.encoder(batch.src, batch.src_lengths)
        posterior = model.latent(summary, sample=False)
        order += indices
        mus.append(posterior.mu.float().cpu())
        logvars.append(posterior.logvar.float().cpu())
    inverse = torch.argsort(torch.tensor(order))
    return torch.cat(mus)[inverse], torch.cat(logvars)[inverse]


@torch.no_grad()
def latent_traversal(model: Seq2SeqVAE, source: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, index: int,
                     settings: SearchSettings, device, dims: int = 3,
                     steps: tuple[float, ...] = (-2.0, -1.0, 0.0, 1.0, 2.0)) -> list[dict]:
    """Decode one source (sentence `index` of the moments `mu`, `logvar`) with z = E_q[z|x] moved
    along the `dims` dimensions of largest mean KL, by each of `steps` standard deviations of
    E_q[z_d|x] across sentences. A z that the decoder ignores gives the same output in every column."""
    kl = kl_per_dimension(mu, logvar)
    spread = mu.std(0)
    batch = collate([source] * len(steps), [torch.zeros(0, dtype=torch.long)] * len(steps))
    offsets = torch.tensor(steps)
    rows = []
    for d in kl.argsort(descending=True)[:dims].tolist():
        z = mu[index].repeat(len(steps), 1)
        z[:, d] += offsets * spread[d]
        hypotheses = beam_search(model, batch.src.to(device), batch.src_lengths.to(device), settings, z=z.to(device))
        rows.append({"dim": d, "kl": float(kl[d]), "spread": float(spread[d]), "offsets": list(steps),
                     "hypotheses": hypotheses})
    return rows


@torch.no_grad()
def teacher_forced_attention(model: Seq2SeqVAE, pairs: Pairs, device):
    """Attention weights (batch, tgt_len, src_len) with z and a at their means, the Gaussian a's
    log σ² (batch, tgt_len, memory) or None, and the target mask (batch, tgt_len)."""
    model.eval()
    batch = collate(pairs.src, pairs.tgt).to(device)
    memory, hidden, _ = model.encode(batch.src, batch.src_lengths, sample=False)
    _, _, attended = model.decoder(batch.tgt_in, hidden, memory, sample=False)
    logvar = attended.logvar.float().cpu() if attended.logvar is not None else None
    return attended.weights.float().cpu(), logvar, batch.tgt_mask.cpu()


def attention_entropy(weights: torch.Tensor, tgt_mask: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of each real step's attention distribution, flattened."""
    entropy = -(weights * weights.clamp_min(1e-12).log()).sum(-1)  # (batch, tgt_len)
    return entropy[tgt_mask]


def active_units(mu: torch.Tensor, threshold: float = ACTIVE_UNIT_THRESHOLD) -> int | None:
    """Number of dimensions whose posterior mean varies across sentences: Var_x(E_q[z_d|x]) ≥ threshold.
    None (not measurable) below two sentences, where the variance is NaN, not 0."""
    if mu.size(0) < 2:
        return None
    return int((mu.var(dim=0) >= threshold).sum())


def mutual_information(mu: torch.Tensor, logvar: torch.Tensor, chunk: int = 256) -> float:
    """I(x; z) ≈ E_x[E_q(z|x) log q(z|x)] − E_x[E_q(z|x) log q(z)], one z sample per x (He et al., 2019)."""
    n, dim = mu.shape
    log_2pi = math.log(2 * math.pi)
    neg_entropy = (-0.5 * dim * log_2pi - 0.5 * (1 + logvar).sum(-1)).mean()
    z = reparameterise(mu, logvar)
    var = logvar.exp()
    log_qz = []
    for start in range(0, n, chunk):  # log q(z_i) = logsumexp_j log q(z_i | x_j) − log n
        deviation = z[start:start + chunk, None, :] - mu[None]  # (chunk, n, dim)
        log_density = -0.5 * (deviation.pow(2) / var[None]).sum(-1) - 0.5 * (dim * log_2pi + logvar.sum(-1))[None]
        log_qz.append(torch.logsumexp(log_density, dim=1) - math.log(n))
    return float(neg_entropy - torch.cat(log_qz).mean())


def distinct_n(texts: list[str], n: int) -> float:
    """Unique n-grams / all n-grams over whitespace tokens of `texts` (Li et al., 2016)."""
    grams = [tuple(words[i:i + n]) for words in (t.split() for t in texts) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def self_bleu(samples: list[list[str]]) -> float:
    """Mean corpus BLEU of draw i against the other draws as references (Zhu et al., 2018):
    100 means every draw is the same sentence."""
    k = len(samples[0])
    if k < 2:
        return 100.0
    scores = []
    for i in range(k):
        hypotheses = [draws[i] for draws in samples]
        references = [[draws[j] for draws in samples] for j in range(k) if j != i]
        scores.append(BLEU().corpus_score(hypotheses, references).score)
    return sum(scores) / k


def diversity(samples: list[list[str]]) -> dict[str, float]:
    """samples[s][i]: draw i for source s. distinct-n per source, averaged; self-BLEU over all."""
    return {"distinct_1": sum(distinct_n(d, 1) for d in samples) / len(samples),
            "distinct_2": sum(distinct_n(d, 2) for d in samples) / len(samples),
            "self_bleu": self_bleu(samples)}


def latent_evidence(model: Seq2SeqVAE, test: Pairs, references: list[str], tokenizers: Tokenizers,
                    cfg: DiagnoseConfig, decode: DecodeConfig, device) -> dict:
    """Every diagnostic above for one trained variant, on `test` (greedy decoding for the BLEUs)."""
    torch.manual_seed(cfg.seed)
    latent_z, latent_a = model.latent is not None, model.decoder.attention.latent
    sources = [s.tolist() for s in test.src]

    def nll(**kwargs):
        return nll_per_token(model, test, decode.max_tokens, device, **kwargs)

    def translate(sentences, **kwargs):
        hypotheses = translate_ids(model, sentences, SearchSettings.from_config(decode, beam_size=1, **kwargs),
                                   decode.max_tokens, device)
        return tokenizers.tgt.decode(hypotheses)

    def bleu(**kwargs):
        return corpus_scores(translate(sources, **kwargs), references)["bleu"]

    means = nll()
    out = {"sentences": len(test), "nll_per_token": means["nll"], "kl_z_per_token": means["kl_z"],
           "kl_a_per_token": means["kl_a"], "greedy_bleu": bleu()}
    if latent_z:
        mu, logvar = posterior_moments(model, test, decode.max_tokens, device)
        out |= {"active_units": active_units(mu), "z_dim": mu.size(1), "mutual_information": mutual_information(mu, logvar),
                "nll_z_zero": nll(z_source="zero")["nll"], "nll_z_prior": nll(z_source="prior")["nll"],
                "greedy_bleu_z_zero": bleu(z_source="zero"), "greedy_bleu_z_prior": bleu(z_source="prior")}
    if latent_a:
        out["nll_a_sampled"] = nll(sample=True, z_source="mean")["nll"]
        out["nll_a_prior"] = nll(a_source="prior")["nll"]
        first = Pairs(test.src[: cfg.sample_sentences], test.tgt[: cfg.sample_sentences])
        _, logvar, mask = teacher_forced_attention(model, first, device)
        if logvar is not None:  # a Gaussian a: how noisy its context is, on average over components and steps
            out["sigma_a_mean"] = float((0.5 * logvar[mask]).exp().mean())
    if latent_z or latent_a:
        draws = [translate(sources[: cfg.sample_sentences], sample=True) for _ in range(cfg.samples)]
        out["diversity"] = diversity([list(d) for d in zip(*draws)])
    return out
