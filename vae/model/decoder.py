"""The shared decoder: an LSTM over [y_{j-1}; z], then attention, then the output layer.

There is no input feeding: the decoder state s_j does not depend on the context c_{j-1}, so
teacher-forced training runs the LSTM as one fused call over all steps and attends for all
steps at once (Luong et al., 2015). Greedy and beam search call the same `forward` with one
step at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vae.model.attention import Attended, Attention


@dataclass
class Memory:
    """Everything the decoder reads from the source, computed once per batch."""

    states: torch.Tensor  # (batch, src_len, memory_size)
    mask: torch.Tensor  # (batch, src_len), True at real tokens
    z: torch.Tensor | None  # (batch, z_dim), None for the model without a sentence latent


class Decoder(nn.Module):
    """logits_j = W_o tanh(W_c [s_j; c_j; z]), s_j = LSTM([E y_{j-1}; z], s_{j-1})."""

    def __init__(self, vocab_size: int, embedding_dim: int, hidden_size: int, memory_size: int,
                 z_dim: int, attention: Attention, dropout: float, pad_id: int = 0):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)
        self.rnn = nn.LSTM(embedding_dim + z_dim, hidden_size, batch_first=True)
        self.attention = attention
        self.combine = nn.Linear(hidden_size + attention.context_size + z_dim, hidden_size)
        self.out = nn.Linear(hidden_size, vocab_size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, inputs: torch.Tensor, hidden, memory: Memory, sample: bool, a_source: str = "posterior",
                select: torch.Tensor | None = None) -> tuple[torch.Tensor, tuple, Attended]:
        """inputs: (batch, steps) previous tokens. Returns (logits, hidden, attended); `a_source`: see
        vae.model.attention.

        `select` (batch, steps) bool keeps only those positions' logits, flattened to (n, vocab):
        training never pays the vocabulary projection for padding.
        """
        embedded = self.dropout(self.embed(inputs))  # (batch, steps, emb)
        if memory.z is not None:
            embedded = torch.cat([embedded, memory.z[:, None, :].expand(-1, inputs.size(1), -1)], dim=-1)
        states, hidden = self.rnn(embedded, hidden)  # (batch, steps, hidden)
        attended = self.attention(states, memory.states, memory.mask, sample, a_source)
        parts = [states, attended.context]
        if memory.z is not None:
            parts.append(memory.z[:, None, :].expand(-1, inputs.size(1), -1))
        combined = torch.cat([p.to(states.dtype) for p in parts], dim=-1)
        if select is not None:
            combined = combined[select]
        output = self.dropout(torch.tanh(self.combine(combined)))
        return self.out(output), hidden, attended
