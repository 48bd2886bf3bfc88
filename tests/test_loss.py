"""The fused label-smoothed cross-entropy against PyTorch's: values, gradients, dtypes, gradcheck."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vae.model.loss import label_smoothed_cross_entropy

SMOOTHINGS = [0.0, 0.1, 0.3]


def random_case(tokens: int, vocab: int, dtype: torch.dtype, seed: int):
    """Logits spread like a trained output layer's (a few nats apart), targets, and an upstream gradient."""
    generator = torch.Generator().manual_seed(seed)
    logits = (4 * torch.randn(tokens, vocab, generator=generator)).to(dtype)
    target = torch.randint(0, vocab, (tokens,), generator=generator)
    grad_loss = torch.rand(tokens, generator=generator) + 0.5
    return logits, target, grad_loss


def loss_and_grad(loss_fn, logits: torch.Tensor, target: torch.Tensor, grad_loss: torch.Tensor):
    logits = logits.detach().clone().requires_grad_()
    loss = loss_fn(logits, target)
    loss.backward(grad_loss)
    return loss.detach(), logits.grad


def pytorch(smoothing: float):
    """The reference: PyTorch's cross-entropy over the logits upcast to fp32, as seq2seq computed it before."""
    return lambda logits, target: F.cross_entropy(logits.float(), target, reduction="none", label_smoothing=smoothing)


def fused(smoothing: float):
    return lambda logits, target: label_smoothed_cross_entropy(logits, target, smoothing)


@pytest.mark.parametrize("smoothing", SMOOTHINGS)
def test_fp32_values_and_gradients_are_pytorch_s(smoothing):
    case = random_case(64, 500, torch.float32, seed=1)
    loss, grad = loss_and_grad(fused(smoothing), *case)
    expected_loss, expected_grad = loss_and_grad(pytorch(smoothing), *case)
    assert loss.dtype == grad.dtype == torch.float32
    torch.testing.assert_close(loss, expected_loss, rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("smoothing", SMOOTHINGS)
def test_bf16_logits_are_upcast_inside_and_get_a_bf16_gradient(smoothing):
    case = random_case(64, 8000, torch.bfloat16, seed=2)
    loss, grad = loss_and_grad(fused(smoothing), *case)
    expected_loss, expected_grad = loss_and_grad(pytorch(smoothing), *case)
    # The loss is fp32 arithmetic on the same upcast values: fp32 tolerance. The gradient is fp32 rounded
    # once to bf16 (8 bits of mantissa) on both sides: at most a rounding step apart.
    assert loss.dtype == torch.float32 and grad.dtype == torch.bfloat16
    torch.testing.assert_close(loss, expected_loss, rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(grad.float(), expected_grad.float(), rtol=2 ** -7, atol=1e-7)


def test_the_loss_is_the_equation_and_the_smoothing_matters():
    logits, target, _ = random_case(16, 50, torch.float64, seed=3)
    smoothing, vocab = 0.3, logits.size(1)
    by_hand = (logits.logsumexp(-1) - (1 - smoothing) * logits.gather(1, target[:, None]).squeeze(1)
               - smoothing / vocab * logits.sum(-1))
    torch.testing.assert_close(label_smoothed_cross_entropy(logits, target, smoothing), by_hand)
    assert not torch.allclose(label_smoothed_cross_entropy(logits, target, 0.0), by_hand)


def test_autocast_does_not_change_the_numerics():
    logits, target, grad_loss = random_case(32, 300, torch.bfloat16, seed=4)
    outside = loss_and_grad(fused(0.1), logits, target, grad_loss)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = loss_and_grad(fused(0.1), logits, target, grad_loss)
    torch.testing.assert_close(inside, outside, rtol=0, atol=0)


@pytest.mark.parametrize("smoothing", SMOOTHINGS)
def test_gradcheck_in_float64(smoothing):
    logits, target, _ = random_case(5, 7, torch.float64, seed=5)
    logits.requires_grad_()
    assert torch.autograd.gradcheck(lambda x: label_smoothed_cross_entropy(x, target, smoothing), (logits,))


def test_the_input_logits_are_left_alone():
    logits, target, grad_loss = random_case(8, 20, torch.float32, seed=6)
    kept = logits.clone()
    loss_and_grad(fused(0.1), logits, target, grad_loss)
    torch.testing.assert_close(logits, kept, rtol=0, atol=0)


def test_a_retained_graph_gives_the_same_gradient_twice():
    logits, target, grad_loss = random_case(8, 20, torch.float32, seed=7)
    logits.requires_grad_()
    loss = label_smoothed_cross_entropy(logits, target, 0.1)
    first, = torch.autograd.grad(loss, logits, grad_loss, retain_graph=True)
    second, = torch.autograd.grad(loss, logits, grad_loss)
    torch.testing.assert_close(first, second, rtol=0, atol=0)


@pytest.mark.parametrize("tokens", [1, 130, 131, 132, 300])
def test_blocks_of_rows_cover_every_token_once(tokens):
    """At V = 8000 a block is 131 rows: one block, exactly one, one and a bit, several."""
    case = random_case(tokens, 8000, torch.bfloat16, seed=8)
    loss, grad = loss_and_grad(fused(0.1), *case)
    expected_loss, expected_grad = loss_and_grad(pytorch(0.1), *case)
    torch.testing.assert_close(loss, expected_loss, rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(grad.float(), expected_grad.float(), rtol=2 ** -7, atol=1e-7)


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="tokens"):
        label_smoothed_cross_entropy(torch.zeros(2, 3, 4), torch.zeros(2, 3, dtype=torch.long), 0.1)
    with pytest.raises(ValueError, match="tokens"):
        label_smoothed_cross_entropy(torch.zeros(2, 4), torch.zeros(3, dtype=torch.long), 0.1)
