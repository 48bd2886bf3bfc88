"""Model parts: encoder, sentence latent, attentions (deterministic and latent), decoder, the seq2seq, the label-smoothed loss."""

from vae.model.seq2seq import Seq2SeqVAE, Terms, build_model

__all__ = ["Seq2SeqVAE", "Terms", "build_model"]
