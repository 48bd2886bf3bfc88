"""figures: attention maps, z's per-dimension KL, PCA and traversals, Gaussian a's σ, Gumbel attention entropy."""

from pathlib import Path

import torch

from vae import cli
from vae.batching import Pairs
from vae.diagnostics import attention_entropy, latent_traversal, posterior_moments, teacher_forced_attention
from vae.figures import attention_maps, entropy_histogram, kl_per_dimension, posterior_pca, sigma_per_component
from vae.io import write_text
from vae.report import traversal_table
from vae.search import SearchSettings
from vae.tokenizer import Tokenizers
from vae.checkpoint import load_model, resolve_device


def main(args, params):
    cfg = params.diagnose
    device = resolve_device(params.decode.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizers = Tokenizers.load(Path(args.data) / "tokenizer")
    test = Pairs.load(Path(args.data) / "encoded" / "test.pt", cfg.max_sentences)
    models = {name: load_model(Path(args.models) / f"{name}.pt", device, tokenizer=Path(args.data) / "tokenizer")[0]
              for name in params.variants}

    shown = test.head(3)  # the maps show the first sentences of the batch the statistics use
    maps, entropies = {}, {}
    for name, model in models.items():
        if not model.decoder.attention.attends:
            continue
        weights, logvar, mask = teacher_forced_attention(model, test.head(max(cfg.sample_sentences, 3)), device)
        maps[name] = weights[: len(shown)]
        entropies[name] = attention_entropy(weights, mask)
        if logvar is not None:
            sigma_per_component(logvar, mask, out / f"sigma_a_{name}.png")
    if maps:
        attention_maps(maps, _pieces(tokenizers.src, shown.src), _pieces(tokenizers.tgt, shown.tgt),
                       out / "attention_maps.png")
        entropy_histogram(entropies, out / "attention_entropy.png")

    posteriors = {name: posterior_moments(model, test, params.decode.max_tokens, device)
                  for name, model in models.items() if model.latent is not None}
    if posteriors:
        kl_per_dimension(posteriors, out / "z_kl_per_dimension.png")
        lengths = torch.tensor([len(s) + 1 for s in test.src], dtype=torch.float32)
        posterior_pca({name: mu for name, (mu, _) in posteriors.items()}, lengths, out / "z_pca.png")
        # a sentence of ordinary length, so that changes in the output are easy to read
        index = next((i for i, s in enumerate(test.src) if 8 <= len(s) <= 20), 0)
        settings = SearchSettings.from_config(params.decode, beam_size=1)
        traversals = {name: latent_traversal(models[name], test.src[index], mu, logvar, index, settings, device)
                      for name, (mu, logvar) in posteriors.items()}
        write_text(out / "z_traversal.md", traversal_table(
            tokenizers.src.decode(test.src[index].tolist()), traversals, tokenizers.tgt.decode))
    cli.console.print(f"figures: {', '.join(sorted(p.name for p in out.glob('*.png')))}")


def _pieces(processor, sequences) -> list[list[str]]:
    """Subword labels for a plot axis, with the </s> that collate appends."""
    return [[processor.id_to_piece(int(i)) for i in s] + ["</s>"] for s in sequences]


if __name__ == "__main__":
    p = cli.parser(__doc__)
    p.add_argument("--data", default="data")
    p.add_argument("--models", default="models")
    p.add_argument("--out", default="results/figures")
    cli.run(main, p)
