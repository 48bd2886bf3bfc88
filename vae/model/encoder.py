"""The shared source encoder: embeddings and a bidirectional LSTM (Bahuleyan et al., 2018, §2.1)."""

from __future__ import annotations

import torch
from torch import nn


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence's first `length` steps, leaving its padding at the end.

    x: (batch, steps, features). Applying it twice is the identity.
    """
    steps = torch.arange(x.size(1), device=x.device)[None, :]  # (1, steps)
    lengths = lengths.to(x.device)[:, None]
    index = torch.where(steps < lengths, lengths - 1 - steps, steps)  # (batch, steps)
    return x.gather(1, index[..., None].expand_as(x))


class Encoder(nn.Module):
    """h_i = [→h_i; ←h_i] for every source position, plus a sentence summary [→h_S; ←h_1].

    The backward direction runs over each sentence reversed within its own length, so
    padding is always read last and never changes a real position's state; both directions
    stay single fused LSTM calls (packed sequences would fall back to a per-step loop on CPU).
    """

    def __init__(self, vocab_size: int, embedding_dim: int, hidden_size: int, dropout: float, pad_id: int = 0):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)
        self.forward_rnn = nn.LSTM(embedding_dim, hidden_size, batch_first=True)
        self.backward_rnn = nn.LSTM(embedding_dim, hidden_size, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.output_size = 2 * hidden_size

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """src: (batch, src_len) ids; returns states (batch, src_len, 2*hidden), summary (batch, 2*hidden)."""
        embedded = self.dropout(self.embed(src))
        forward_states, _ = self.forward_rnn(embedded)
        backward_states, _ = self.backward_rnn(reverse_within_length(embedded, src_lengths))
        last = (src_lengths.to(src.device) - 1)[:, None, None].expand(-1, 1, forward_states.size(-1))
        summary = torch.cat([forward_states.gather(1, last), backward_states.gather(1, last)], dim=-1)[:, 0]
        states = torch.cat([forward_states, reverse_within_length(backward_states, src_lengths)], dim=-1)
        return self.dropout(states), summary
