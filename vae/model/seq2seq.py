"""The seq2seq (V)AE that wires encoder, sentence latent, attention and decoder together.

One class serves every variant; the config decides whether z exists and which attention
(none, deterministic, Gaussian latent, Gumbel latent) the decoder uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vae.config import ModelConfig, VariantConfig
from vae.model.attention import build_attention
from vae.model.decoder import Decoder, Memory
from vae.model.encoder import Encoder
from vae.model.latent import SentenceLatent
from vae.model.loss import label_smoothed_cross_entropy
from vae.batching import Batch
from vae.symbols import PAD


@dataclass
class Terms:
    """Per-sentence sums of the objective's terms (batch,), and the token count."""

    rec: torch.Tensor  # −log p(Y|z, a, X) summed over target tokens
    kl_z: torch.Tensor  # KL[q(z|X) || p(z)]
    kl_a: torch.Tensor  # Σ_j KL[q(a_j|X) || p(a_j)] over real target steps
    tokens: torch.Tensor  # number of target tokens (incl. </s>)
    attention_kl: torch.Tensor | None = None  # Σ_j KL[α_j || uniform] of the attention weights
    kl_a_last: torch.Tensor | None = None  # KL[q(a_J|X) || p(a_J)] of the last target step J alone


class Seq2SeqVAE(nn.Module):
    def __init__(self, src_vocab: int, tgt_vocab: int, model: ModelConfig, variant: VariantConfig):
        super().__init__()
        self.variant = variant
        self.encoder = Encoder(src_vocab, model.embedding_dim, model.hidden_size, model.dropout)
        memory_size = self.encoder.output_size
        self.latent = SentenceLatent(memory_size, model.z_dim) if variant.latent_z else None
        z_dim = model.z_dim if variant.latent_z else 0
        attention = build_attention(model.hidden_size, memory_size, variant)
        self.decoder = Decoder(tgt_vocab, model.embedding_dim, model.hidden_size, memory_size, z_dim,
                               attention, model.dropout)
        # The decoder starts from z (the VAE) or from the source summary (the plain model).
        self.init_hidden = nn.Linear(z_dim if variant.latent_z else memory_size, model.hidden_size)
        if model.init == "xavier":
            initialise_xavier(self)
        if model.tie_output:
            self.decoder.out.weight = self.decoder.embed.weight

    def encode(self, src, src_lengths, sample: bool, z_source: str | torch.Tensor = "posterior"):
        """Returns the decoder's Memory, its initial LSTM state, and q(z|X) (None without z).

        z_source says what the decoder gets as z: "posterior" (a sample if `sample`, else the
        mean), "mean" (always the mean), or, to test whether z matters, "zero" or "prior" (a
        draw from N(0, I) that ignores the source); a (batch, z_dim) tensor is used as z itself.
        """
        states, summary = self.encoder(src, src_lengths)
        posterior = self.latent(summary, sample) if self.latent is not None else None
        z = posterior.z if posterior is not None else None
        if z is not None and isinstance(z_source, torch.Tensor):
            z = z_source.to(z)
        elif z is not None and z_source != "posterior":
            z = {"mean": posterior.mu, "zero": torch.zeros_like(z), "prior": torch.randn_like(z)}[z_source]
        h0 = torch.tanh(self.init_hidden(z if z is not None else summary))[None]  # (1, batch, hidden)
        return Memory(states, src != PAD, z), (h0, torch.zeros_like(h0)), posterior

    def set_step(self, step: int) -> None:
        """The optimiser step about to be taken, for schedules the parts own (the Gumbel τ)."""
        self.decoder.attention.set_step(step)

    def forward(self, batch: Batch, sample: bool, word_dropout: float = 0.0, z_source: str = "posterior",
                a_source: str = "posterior", label_smoothing: float = 0.0) -> Terms:
        """Teacher-forced pass: the per-sentence terms of I = rec + λ·KL_z + γ·Σ_j KL_a_j.

        With `label_smoothing` ε (training only), rec is the cross-entropy against (1 − ε)·one-hot + ε/V
        instead of the NLL (Szegedy et al., 2016)."""
        memory, hidden, posterior = self.encode(batch.src, batch.src_lengths, sample, z_source)
        inputs = batch.tgt_in
        if word_dropout > 0:  # Bowman et al. (2016): hide some previous words so z must carry content
            drop = (torch.rand(inputs.shape, device=inputs.device) < word_dropout) & (inputs > 3)
            inputs = inputs.masked_fill(drop, 1)  # <unk>
        mask = batch.tgt_mask
        logits, _, attended = self.decoder(inputs, hidden, memory, sample, a_source, select=mask)
        target = batch.tgt_out[mask]
        if label_smoothing > 0:  # fused: no whole-batch fp32 copies of the (tokens, V) logits
            token_rec = label_smoothed_cross_entropy(logits, target, label_smoothing)
        else:  # the true NLL, as evaluation reports it
            token_rec = F.cross_entropy(logits.float(), target, reduction="none")
        rec = torch.zeros(mask.shape, dtype=token_rec.dtype, device=mask.device)
        rec[mask] = token_rec
        zeros = rec.new_zeros(mask.size(0))
        kl_z = posterior.kl.float() if posterior is not None else zeros
        kl_a = (attended.kl * mask).sum(1)
        tokens = mask.sum(1)
        kl_a_last = attended.kl.gather(1, (tokens - 1).clamp(min=0).unsqueeze(1)).squeeze(1) * (tokens > 0)
        attention_kl = (attended.weights_kl * mask).sum(1)
        return Terms(rec=rec.sum(1), kl_z=kl_z, kl_a=kl_a, tokens=tokens, attention_kl=attention_kl,
                     kl_a_last=kl_a_last)


def initialise_xavier(model: nn.Module) -> None:
    """Glorot-uniform weights (each LSTM gate's block on its own), zero biases, LSTM forget-gate bias 1,
    as JoeyNMT initialises its recurrent models (Glorot & Bengio, 2010; Jozefowicz et al., 2015)."""
    for name, param in model.named_parameters():
        if "bias" in name:
            nn.init.zeros_(param)
            if "bias_ih" in name:  # gates i, f, g, o
                param.data[param.size(0) // 4: param.size(0) // 2] = 1.0
        elif name.startswith(("encoder.forward_rnn", "encoder.backward_rnn", "decoder.rnn")):
            for gate in param.data.chunk(4, dim=0):
                nn.init.xavier_uniform_(gate)
        else:
            nn.init.xavier_uniform_(param)
    for embedding in (model.encoder.embed, model.decoder.embed):
        embedding.weight.data[embedding.padding_idx].zero_()


def build_model(src_vocab: int, tgt_vocab: int, model: ModelConfig, variant: VariantConfig) -> Seq2SeqVAE:
    return Seq2SeqVAE(src_vocab, tgt_vocab, model, variant)
