"""The training loop: exact resumption, fingerprinted checkpoints, NaN guard, and the best model."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import yaml

from conftest import REPO, random_pairs
from vae import UserError
from vae.batching import Pairs, collate
from vae.config import KLScheduleConfig, ModelConfig, TrainConfig, VariantConfig, parse
from vae.model import Seq2SeqVAE
from vae.objective import Prices, objective, settled_prices
from vae.train import Run, Setup, evaluate, load_model, train, weight_average

VOCAB = 30
TIMING = {"tokens_per_s", "epoch_seconds", "train_minutes"}  # wall-clock measurements: the only history that may differ


def repo_variant(name: str) -> VariantConfig:
    raw = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))["variants"][name]
    return parse(VariantConfig, raw, f"variants.{name}")


TRAIN, DEV = Pairs(*random_pairs(48, seed=0)), Pairs(*random_pairs(12, seed=1))


def make_setup(variant: str | VariantConfig = "gaussian", **train) -> Setup:
    variant = repo_variant(variant) if isinstance(variant, str) else variant
    options = dict(epochs=3, max_tokens=60, learning_rate=3e-3, word_dropout=0.1, seed=3, device="cpu",
                   kl=KLScheduleConfig(schedule="linear", max_weight=1.0, warmup_steps=10))
    options.update(train)
    return Setup(model=ModelConfig(embedding_dim=16, hidden_size=16, z_dim=8, dropout=0.2), variant=variant,
                 train=TrainConfig(**options), src_vocab=VOCAB, tgt_vocab=VOCAB, train_pairs=len(TRAIN))


class Interrupt(Exception):
    pass


def interrupt_after(epoch: int):
    def hook(run: Run) -> None:
        if run.epoch == epoch:
            raise Interrupt
    return hook


def last_state(directory) -> dict:
    return torch.load(directory / "last.pt", weights_only=True)


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def without_timing(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in TIMING} for row in history]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted 3-epoch run per variant, shared by the tests that compare against it."""
    runs = {}

    def get(variant: str):
        if variant not in runs:
            directory = tmp_path_factory.mktemp(f"reference-{variant}")
            model, run = train(make_setup(variant), TRAIN, DEV, directory)
            runs[variant] = (directory, model, run)
        return runs[variant]

    return get


# --- resumption ---------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["gaussian", "gumbel"])
def test_interrupted_run_resumes_to_the_same_result(tmp_path, reference, variant):
    ref_dir, _, ref_run = reference(variant)
    with pytest.raises(Interrupt):
        train(make_setup(variant), TRAIN, DEV, tmp_path, on_epoch_end=interrupt_after(1))
    assert last_state(tmp_path)["run"]["epoch"] == 1
    _, run = train(make_setup(variant), TRAIN, DEV, tmp_path)
    assert run.epoch == 3 and len(run.history) == 3
    assert without_timing(run.history) == without_timing(ref_run.history)
    assert run.step == ref_run.step and run.best_dev_loss == ref_run.best_dev_loss
    resumed, uninterrupted = last_state(tmp_path), last_state(ref_dir)
    assert_same_weights(resumed["model"], uninterrupted["model"])
    assert without_timing(resumed["run"]["history"]) == without_timing(uninterrupted["run"]["history"])
    assert_same_weights(torch.load(tmp_path / "best.pt", weights_only=True)["model"],
                        torch.load(ref_dir / "best.pt", weights_only=True)["model"])


def test_reference_run_really_trains(reference):
    _, _, run = reference("gaussian")
    assert [row["epoch"] for row in run.history] == [1, 2, 3]
    steps = [row["step"] for row in run.history]
    assert 1 < steps[0] < steps[1] < steps[2] == run.step
    assert run.history[-1]["train_rec"] < run.history[0]["train_rec"]
    assert all(math.isfinite(row["dev_loss"]) for row in run.history)
    assert run.history[0]["kl_weight"] < run.history[-1]["kl_weight"] <= 1.0  # the linear warm-up


def test_longer_run_extends_a_finished_one(tmp_path, reference):
    """epochs is not part of the fingerprint: 2 epochs, then 3, equals 3 at once."""
    ref_dir, _, ref_run = reference("gaussian")
    train(make_setup(epochs=2), TRAIN, DEV, tmp_path)
    _, run = train(make_setup(epochs=3), TRAIN, DEV, tmp_path)
    assert without_timing(run.history) == without_timing(ref_run.history)
    assert_same_weights(last_state(tmp_path)["model"], last_state(ref_dir)["model"])


def test_finished_run_is_not_trained_again(tmp_path):
    setup = make_setup("deterministic", epochs=1)
    _, first = train(setup, TRAIN, DEV, tmp_path)
    before = last_state(tmp_path)
    model, again = train(setup, TRAIN, DEV, tmp_path)
    assert without_timing(again.history) == without_timing(first.history) and again.step == first.step
    assert_same_weights(last_state(tmp_path)["model"], before["model"])
    assert not model.training


def test_checkpoint_from_other_settings_is_not_resumed(tmp_path):
    other_lr = make_setup("deterministic", epochs=2, learning_rate=1e-2)
    setup = make_setup("deterministic", epochs=2)
    assert other_lr.fingerprint() != setup.fingerprint()
    with pytest.raises(Interrupt):
        train(other_lr, TRAIN, DEV, tmp_path, on_epoch_end=interrupt_after(1))
    assert last_state(tmp_path)["run"]["epoch"] == 1
    _, run = train(setup, TRAIN, DEV, tmp_path)
    assert len(run.history) == 2 and [row["epoch"] for row in run.history] == [1, 2]
    assert last_state(tmp_path)["fingerprint"] == setup.fingerprint()
    fresh = tmp_path / "fresh"
    _, fresh_run = train(setup, TRAIN, DEV, fresh)  # starting afresh means exactly this
    assert without_timing(run.history) == without_timing(fresh_run.history)
    assert_same_weights(last_state(tmp_path)["model"], last_state(fresh)["model"])


def test_fingerprint_ignores_device_and_epochs_only():
    base = make_setup()
    assert make_setup(device="cuda").fingerprint() == base.fingerprint()
    assert make_setup(epochs=9).fingerprint() == base.fingerprint()
    assert make_setup(max_minutes=5.0).fingerprint() == base.fingerprint()
    assert dataclasses.replace(base, data="other").fingerprint() != base.fingerprint()
    for changed in (make_setup(seed=4), make_setup(max_tokens=61), make_setup("gumbel"),
                    dataclasses.replace(base, model=ModelConfig(16, 16, 8, 0.1)),
                    make_setup(kl=KLScheduleConfig(schedule="constant"))):
        assert changed.fingerprint() != base.fingerprint()


# --- the weight average -------------------------------------------------------------------------


def test_weight_average_is_the_warmed_up_exponential_average():
    """avg ← d·avg + (1 − d)·w with d = min(decay, (1 + n)/(10 + n)) after n updates; the first copies."""
    module = torch.nn.Linear(1, 1, bias=False)
    average = weight_average(module, decay=0.2)
    expected = None
    for n, w in enumerate((1.0, 5.0, 3.0)):
        with torch.no_grad():
            module.weight.fill_(w)
        average.update_parameters(module)
        d = min(0.2, (1 + n) / (10 + n))
        expected = w if expected is None else d * expected + (1 - d) * w
        assert average.module.weight.item() == pytest.approx(expected)
    assert expected == pytest.approx(0.2 * (2 / 11 * 1 + 9 / 11 * 5) + 0.8 * 3)  # by hand


def test_averaged_run_keeps_the_average_and_resumes_to_the_same_result(tmp_path):
    """best.pt holds the averaged weights (with the model's own buffers: the Gumbel τ); a killed run
    resumes its average as exactly as its weights."""
    gumbel = dataclasses.replace(repo_variant("gumbel"), gumbel_anneal_rate=0.05)
    setup = make_setup(gumbel, weight_average=0.9)
    assert setup.fingerprint() != make_setup(gumbel).fingerprint()
    averages = {}  # the average as last.pt held it after each epoch

    def keep_average(run: Run) -> None:
        averages[run.epoch] = last_state(tmp_path / "whole")["average"]

    _, run = train(setup, TRAIN, DEV, tmp_path / "whole", on_epoch_end=keep_average)
    with pytest.raises(Interrupt):
        train(setup, TRAIN, DEV, tmp_path / "killed", on_epoch_end=interrupt_after(1))
    _, resumed = train(setup, TRAIN, DEV, tmp_path / "killed")
    assert without_timing(resumed.history) == without_timing(run.history)
    whole, killed = last_state(tmp_path / "whole"), last_state(tmp_path / "killed")
    assert_same_weights(whole["average"], killed["average"])
    best = torch.load(tmp_path / "whole" / "best.pt", weights_only=True)["model"]
    assert_same_weights(torch.load(tmp_path / "killed" / "best.pt", weights_only=True)["model"], best)
    kept = run.kept()  # best.pt is the average of the kept epoch, with the model's own buffers (τ)
    averaged = {k.removeprefix("module."): v for k, v in averages[kept["epoch"]].items() if k != "n_averaged"}
    assert_same_weights(averaged, best)
    temperature = "decoder.attention.temperature"
    assert best[temperature] < 1.0 and whole["model"][temperature] == whole["average"][f"module.{temperature}"]
    assert not all(torch.equal(whole["model"][k], best[k]) for k in best)
    assert evaluate(load_model(tmp_path / "whole" / "best.pt")[0], DEV, 60, torch.device("cpu"), "fp32",
                    settled_prices(setup.train, gumbel))["dev_loss"] == pytest.approx(kept["dev_loss"])


# --- time budget and what may be resumed ---------------------------------------------------------


def test_time_budget_stops_mid_epoch_and_resumes_exactly(tmp_path, reference):
    """A budget stop falls after the first step past it, mid-epoch; the run resumes from that batch."""
    ref_dir, _, ref_run = reference("gaussian")
    _, cut = train(make_setup(max_minutes=1e-6), TRAIN, DEV, tmp_path)  # past the budget after one step
    assert cut.step == 1 and cut.epoch == 0 and cut.batch == 1 and cut.train_seconds > 0
    assert len(cut.history) == 1 and 0 < cut.history[0]["epoch"] < 1  # a fractional epoch, with dev metrics
    assert last_state(tmp_path)["run"]["batch"] == 1
    _, again = train(make_setup(max_minutes=1e-6), TRAIN, DEV, tmp_path)  # the same budget: nothing to do
    assert again.step == 1
    _, run = train(make_setup(), TRAIN, DEV, tmp_path)  # no budget: on to the 3 epochs
    assert run.step == ref_run.step and [row["epoch"] for row in run.history][-3:] == [1, 2, 3]
    assert_same_weights(last_state(tmp_path)["model"], last_state(ref_dir)["model"])
    keys = [k for k in ref_run.history[-1] if k.startswith("dev_")]
    assert [run.history[-1][k] for k in keys] == [ref_run.history[-1][k] for k in keys]


def test_run_trained_further_than_asked_starts_afresh(tmp_path):
    """Lowering train.epochs (or max_minutes) after a finished run must not hand back the longer run."""
    train(make_setup("deterministic", epochs=2), TRAIN, DEV, tmp_path)
    _, run = train(make_setup("deterministic", epochs=1), TRAIN, DEV, tmp_path)
    fresh = tmp_path / "fresh"
    _, fresh_run = train(make_setup("deterministic", epochs=1), TRAIN, DEV, fresh)
    assert without_timing(run.history) == without_timing(fresh_run.history)
    assert_same_weights(last_state(tmp_path)["model"], last_state(fresh)["model"])
    _, budgeted = train(make_setup("deterministic", epochs=1, max_minutes=1e-6), TRAIN, DEV, tmp_path)
    assert budgeted.step == 1  # 1 epoch took longer than the new budget: afresh, one step


def test_damaged_checkpoint_is_a_clear_error_and_stale_temporaries_go(tmp_path):
    setup = make_setup("deterministic", epochs=1)
    train(setup, TRAIN, DEV, tmp_path)
    (tmp_path / ".last.pt.abc123.tmp").write_bytes(b"half a checkpoint")  # a kill during a save
    data = (tmp_path / "last.pt").read_bytes()
    (tmp_path / "last.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=r"last\.pt cannot be read: the file is damaged .* delete it to start this "
                                        r"run afresh"):
        train(setup, TRAIN, DEV, tmp_path)
    assert not list(tmp_path.glob(".*.tmp"))
    (tmp_path / "last.pt").unlink()
    _, run = train(setup, TRAIN, DEV, tmp_path)
    assert run.epoch == 1


def test_last_without_best_says_how_to_start_afresh(tmp_path):
    # resuming a finished last.pt with no best.pt beside it used to end in "no such model; train it
    # first", and training again did the same, for ever
    setup = make_setup("deterministic", epochs=1)
    train(setup, TRAIN, DEV, tmp_path)
    (tmp_path / "best.pt").unlink()
    for epochs in (1, 2):
        with pytest.raises(UserError, match=r"best\.pt is missing beside .*last\.pt, so this run cannot know its best "
                                            r"weights; delete .*last\.pt to start the run afresh"):
            train(make_setup("deterministic", epochs=epochs), TRAIN, DEV, tmp_path)
    (tmp_path / "last.pt").unlink()  # the advice works
    _, run = train(setup, TRAIN, DEV, tmp_path)
    assert run.epoch == 1 and (tmp_path / "best.pt").is_file()


def test_changed_data_is_not_resumed(tmp_path):
    setup = make_setup("deterministic", epochs=1)
    train(setup, TRAIN, DEV, tmp_path)
    other = dataclasses.replace(setup, data="another-tokenizer")
    _, run = train(other, TRAIN, DEV, tmp_path)
    assert len(run.history) == 1 and last_state(tmp_path)["fingerprint"] == other.fingerprint()


def test_divergence_without_nan_stops_with_a_clear_message(tmp_path, monkeypatch):
    import vae.train

    monkeypatch.setattr(vae.train, "DIVERGED_FACTOR", 0.0)  # any dev NLL counts as absurd
    with pytest.raises(UserError, match=r"training diverged: after step \d+ the dev loss .* uniform guess"):
        train(make_setup("deterministic", epochs=1), TRAIN, DEV, tmp_path)
    assert not (tmp_path / "last.pt").exists()


# --- NaN guard ----------------------------------------------------------------------------------


def poison_after_epoch(monkeypatch, epoch: int | None):
    """Make every training forward pass return a NaN loss once `epoch` epochs are done (None: at once)."""
    state = {"on": epoch is None}
    real_forward = Seq2SeqVAE.forward

    def forward(self, batch, *args, **kwargs):
        terms = real_forward(self, batch, *args, **kwargs)
        if self.training and state["on"]:
            return dataclasses.replace(terms, rec=terms.rec * float("nan"))
        return terms

    def hook(run: Run) -> None:
        if run.epoch == epoch:
            state["on"] = True

    monkeypatch.setattr(Seq2SeqVAE, "forward", forward)
    return hook


def test_nan_loss_stops_with_a_clear_message_and_keeps_last_epoch(tmp_path, monkeypatch, reference):
    setup = make_setup("gaussian")
    ref_dir, _, ref_run = reference("gaussian")  # trained before the poison, whichever test asks first
    steps_per_epoch = ref_run.history[0]["step"]
    hook = poison_after_epoch(monkeypatch, epoch=1)
    with pytest.raises(UserError) as err:
        train(setup, TRAIN, DEV, tmp_path, on_epoch_end=hook)
    message = str(err.value)
    assert "loss became nan" in message and f"at step {steps_per_epoch} (epoch 2)" in message
    assert "last.pt" in message and "learning_rate" in message
    assert "gumbel_tau_min" not in message  # a Gaussian run has no τ to raise
    blob = last_state(tmp_path)
    assert blob["run"]["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in blob["model"].values() if t.is_floating_point())
    model, _ = load_model(tmp_path / "last.pt")
    assert not model.training
    monkeypatch.undo()  # the cause is gone: the run resumes from that epoch to the usual result
    _, run = train(setup, TRAIN, DEV, tmp_path)
    assert without_timing(run.history) == without_timing(ref_run.history)
    assert_same_weights(last_state(tmp_path)["model"], last_state(ref_dir)["model"])


def test_a_diverging_gumbel_run_is_told_about_its_temperature(tmp_path, monkeypatch):
    poison_after_epoch(monkeypatch, epoch=None)
    with pytest.raises(UserError, match=r"loss became nan .*train\.clip_norm, or a higher gumbel_tau_min"):
        train(make_setup("gumbel"), TRAIN, DEV, tmp_path)


def test_nan_loss_on_the_first_step_writes_no_checkpoint(tmp_path, monkeypatch):
    poison_after_epoch(monkeypatch, epoch=None)
    with pytest.raises(UserError, match=r"loss became nan at step 0 \(epoch 1\)"):
        train(make_setup("deterministic"), TRAIN, DEV, tmp_path)
    assert not (tmp_path / "last.pt").exists() and not (tmp_path / "best.pt").exists()


# --- the best model -------------------------------------------------------------------------------


def test_best_checkpoint_loads_in_eval_mode(reference):
    directory, returned, run = reference("gaussian")
    model, blob = load_model(directory / "best.pt")
    assert isinstance(model, Seq2SeqVAE)
    assert not model.training and not any(m.training for m in model.modules())
    assert not returned.training
    assert_same_weights(model.state_dict(), returned.state_dict())
    dev_losses = [row["dev_loss"] for row in run.history]
    assert blob["epoch"] == 1 + dev_losses.index(min(dev_losses))
    assert run.best_dev_loss == min(dev_losses)
    assert blob["setup"] == make_setup("gaussian").as_dict()
    setup = make_setup("gaussian")
    again = evaluate(model, DEV, 60, torch.device("cpu"), "fp32", settled_prices(setup.train, setup.variant))  # selection weighs the KLs as training does, at the full λ_KL
    criterion = again["dev_rec"] + setup.train.kl.max_weight * again["dev_kl_z"] + setup.variant.gamma_a * again["dev_kl_a"]
    assert criterion == pytest.approx(min(dev_losses), rel=1e-5)
    assert setup.variant.gamma_a != 1.0  # so the test tells the weighted objective from the ELBO


def test_evaluate_sums_per_sentence_terms(reference):
    _, model, _ = reference("gaussian")
    dev = evaluate(model, DEV, 60, torch.device("cpu"), "fp32", Prices(0.5, 0.1, "token"))
    with torch.no_grad():
        terms = model(collate(DEV.src, DEV.tgt), sample=False)
    n, tokens = len(DEV), terms.tokens.sum().item()
    assert dev["dev_rec"] == pytest.approx(terms.rec.sum().item() / n, rel=1e-5)
    assert dev["dev_kl_z"] == pytest.approx(terms.kl_z.sum().item() / n, rel=1e-5)
    assert dev["dev_kl_a"] == pytest.approx(terms.kl_a.sum().item() / n, rel=1e-5)
    assert dev["dev_elbo_loss"] == pytest.approx(dev["dev_rec"] + dev["dev_kl_z"] + dev["dev_kl_a"])
    assert dev["dev_nll_per_token"] == pytest.approx(terms.rec.sum().item() / tokens, rel=1e-5)
    assert dev["dev_ppl"] == pytest.approx(math.exp(dev["dev_nll_per_token"]))
    assert dev["dev_loss"] == pytest.approx(objective(terms, Prices(0.5, 0.1, "token")).loss.item(), rel=1e-5)
