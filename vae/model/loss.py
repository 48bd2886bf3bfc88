"""Label-smoothed cross-entropy as one autograd Function that never holds a whole fp32 copy of the logits.

For token i with logits x_i ∈ R^V, target y_i and smoothing ε (Szegedy et al., 2016):

    loss_i = logsumexp(x_i) − (1 − ε)·x_i[y_i] − (ε/V)·Σ_v x_i[v]
           = −(1 − ε)·log p_i[y_i] − (ε/V)·Σ_v log p_i[v],          p_i = softmax(x_i)
    ∂loss_i/∂x_i = p_i − (1 − ε)·onehot(y_i) − ε/V

the same as F.cross_entropy(x, y, label_smoothing=ε, reduction="none"), in fp32 for bf16 logits.

Why not that: `F.cross_entropy(logits.float(), ...)` allocates five fresh (tokens, V) fp32 tensors
per step (the upcast, log p, the one-hot gradient, its sum with the uniform one, the log-softmax
backward) and a sixth for the cast back to bf16. At 1,500 tokens × 8,000 words each fp32 one is 48 MB,
above glibc's 32 MiB mmap ceiling, so each is a fresh mapping whose pages fault in one by one, which
costs more than the arithmetic. Here the work goes in blocks of rows: each block is upcast
into a 4 MiB fp32 buffer (reused from the heap), turned into log p (forward) or the gradient
(backward) in place, and dropped. Backward recomputes p from the saved logits, so the one V-wide
tensor kept for it is the logits themselves (in bf16, half the size of the fp32 log p PyTorch keeps).
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

BLOCK_ELEMENTS = 2 ** 20  # fp32 elements per block: 4 MiB, under the mmap ceiling; few enough Python loops


def row_blocks(tokens: int, vocab: int) -> list[slice]:
    rows = max(1, BLOCK_ELEMENTS // vocab)
    return [slice(start, start + rows) for start in range(0, tokens, rows)]


class LabelSmoothedCrossEntropy(torch.autograd.Function):
    """loss_i = −(1 − ε)·log p_i[y_i] − (ε/V)·Σ_v log p_i[v] for logits (tokens, V) of any float dtype;
    the loss and everything between are fp32 (float64 for float64 logits); the gradient has the logits' dtype."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, target: torch.Tensor, smoothing: float) -> torch.Tensor:
        dtype = torch.promote_types(logits.dtype, torch.float32)  # at least fp32; float64 stays, for gradcheck
        vocab = logits.size(1)
        loss = torch.empty(logits.size(0), dtype=dtype, device=logits.device)
        for rows in row_blocks(*logits.shape):
            log_probs = logits[rows].to(dtype, copy=True)  # (block, V), our own, so overwritten in place
            torch.log_softmax(log_probs, -1, out=log_probs)  # each row is reduced before it is written
            nll = -log_probs.gather(1, target[rows, None]).squeeze(1)  # −log p_i[y_i]
            uniform = -log_probs.sum(-1)  # −Σ_v log p_i[v]
            loss[rows] = (1 - smoothing) * nll + (smoothing / vocab) * uniform
        ctx.save_for_backward(logits, target)
        ctx.smoothing = smoothing
        return loss

    @staticmethod
    @once_differentiable  # the gradient is computed in place, outside autograd
    def backward(ctx, grad_loss: torch.Tensor):
        logits, target = ctx.saved_tensors
        smoothing, vocab = ctx.smoothing, logits.size(1)
        dtype = torch.promote_types(logits.dtype, torch.float32)
        grad_logits = torch.empty_like(logits, memory_format=torch.contiguous_format)
        for rows in row_blocks(*logits.shape):
            grad = logits[rows].to(dtype, copy=True)  # (block, V)
            torch.softmax(grad, -1, out=grad)  # p_i, recomputed
            grad.sub_(smoothing / vocab)
            grad[torch.arange(grad.size(0), device=grad.device), target[rows]] -= 1 - smoothing
            grad.mul_(grad_loss[rows, None])
            grad_logits[rows] = grad  # rounded to the logits' dtype once, here
        return grad_logits, None, None


def label_smoothed_cross_entropy(logits: torch.Tensor, target: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Per-token loss (tokens,) of logits (tokens, V) against target indices (tokens,); see the module."""
    if logits.dim() != 2 or target.shape != logits.shape[:1]:
        raise ValueError(f"logits (tokens, V) and target (tokens,) expected, got {tuple(logits.shape)} "
                         f"and {tuple(target.shape)}")
    return LabelSmoothedCrossEntropy.apply(logits, target, smoothing)
