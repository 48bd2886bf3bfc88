"""Batched beam search: same answers as one sentence at a time, within the length limit."""

import pytest
import torch

from vae.config import ModelConfig, VariantConfig
from vae.model import build_model
from vae.batching import collate
from vae.search import SearchSettings, beam_search, translate_ids

VOCAB = 30


@pytest.fixture(params=["deterministic", "gumbel"])
def model(request):
    torch.manual_seed(0)
    return build_model(VOCAB, VOCAB, ModelConfig(embedding_dim=16, hidden_size=16, z_dim=4, dropout=0.0),
                       VariantConfig(attention=request.param)).eval()


def sources(n=9):
    g = torch.Generator().manual_seed(1)
    return [torch.randint(4, VOCAB, (int(torch.randint(2, 12, (1,), generator=g)),), generator=g).tolist()
            for _ in range(n)]


@pytest.mark.parametrize("beam", [1, 4])
def test_batched_search_equals_one_sentence_at_a_time(model, beam):
    settings = SearchSettings(beam_size=beam, max_length_ratio=1.5, max_length_slack=3)
    src = sources()
    batched = translate_ids(model, src, settings, max_tokens=200)
    alone = [translate_ids(model, [s], settings)[0] for s in src]
    assert batched == alone
    assert any(batched)  # not all empty: the comparison has something to compare


def test_finished_sentences_leave_the_batch(model, monkeypatch):
    """A sentence whose beams have all stopped is not decoded further; the others' answers stay."""
    src = [[5], [6, 7, 8, 9, 10, 11, 12, 13, 14, 15]]  # with </s>, length limits 2 + 1 = 3 and 11 + 1 = 12
    settings = SearchSettings(beam_size=3, max_length_ratio=1.0, max_length_slack=1)
    rows = []
    decoder_forward = type(model.decoder).forward

    def forward(self, tokens, *args, **kwargs):
        rows.append(tokens.size(0))
        return decoder_forward(self, tokens, *args, **kwargs)

    monkeypatch.setattr(type(model.decoder), "forward", forward)
    batched = translate_ids(model, src, settings, max_tokens=200)
    assert rows[:3] == [6, 6, 6] and set(rows[3:]) == {3} and len(rows) <= 12
    assert batched == [translate_ids(model, [s], settings)[0] for s in src]


def test_translations_respect_the_length_limit(model):
    settings = SearchSettings(beam_size=3, max_length_ratio=0.5, max_length_slack=1)
    src = sources()
    for s, hyp in zip(src, translate_ids(model, src, settings)):
        # the limit counts </s>, which the returned ids leave out
        assert len(hyp) <= int((len(s) + 1) * 0.5) + 1 - 1


def test_a_given_z_replaces_the_sentence_latent(model):
    """Latent traversals decode with a chosen z: z = 0 matches z_source='zero', and a z far from
    it changes at least one translation of this (untrained, but z-conditioned) model."""
    src = sources()
    batch = collate([torch.tensor(s) for s in src], [torch.zeros(0, dtype=torch.long)] * len(src))
    settings = SearchSettings(beam_size=2, max_length_slack=3)
    zero = torch.zeros(len(src), 4)
    assert beam_search(model, batch.src, batch.src_lengths, settings, z=zero) == \
        beam_search(model, batch.src, batch.src_lengths, SearchSettings(beam_size=2, max_length_slack=3, z_source="zero"))
    far = beam_search(model, batch.src, batch.src_lengths, settings, z=torch.full((len(src), 4), 30.0))
    assert far != beam_search(model, batch.src, batch.src_lengths, settings, z=zero)


def test_bf16_search_decodes_under_autocast(model, monkeypatch):
    """precision bf16 runs the decoder's products in bf16 (the scores stay fp32) and still returns ids."""
    seen = []
    real = torch.nn.functional.linear

    def spy(x, weight, bias=None):
        out = real(x, weight, bias)
        seen.append(out.dtype)
        return out

    monkeypatch.setattr(torch.nn.functional, "linear", spy)
    src = sources()
    hypotheses = translate_ids(model, src, SearchSettings(beam_size=2, max_length_slack=3, precision="bf16"))
    assert len(hypotheses) == len(src) and any(hypotheses)
    assert torch.bfloat16 in seen
    seen.clear()
    translate_ids(model, src, SearchSettings(beam_size=2, max_length_slack=3))
    assert seen and torch.bfloat16 not in seen


def test_sampled_search_uses_the_gumbel_temperature_the_model_was_trained_at(model, monkeypatch):
    """The τ buffer of a Gumbel model (saved with its weights) reaches the sampler during search."""
    import vae.model.attention as attention_module

    if not model.decoder.attention.latent:
        pytest.skip("deterministic attention has nothing to sample")
    model.decoder.attention.temperature.fill_(0.37)
    temperatures = []
    real = attention_module.gumbel_softmax

    def spy(log_probs, temperature, hard):
        temperatures.append(float(temperature))
        return real(log_probs, temperature, hard)

    monkeypatch.setattr(attention_module, "gumbel_softmax", spy)
    translate_ids(model, sources(), SearchSettings(beam_size=1, max_length_slack=3, sample=True))
    assert temperatures and all(t == pytest.approx(0.37) for t in temperatures)
