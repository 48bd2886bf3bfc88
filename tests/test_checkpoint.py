"""Checkpoints: plain data read with weights_only (a crafted file runs no code), weights verified by
their digest, a model paired only with the tokenizer it was trained with."""

from __future__ import annotations

import pytest
import torch

from conftest import random_pairs
from vae import UserError
from vae.batching import Pairs
from vae.checkpoint import data_fingerprint, load_model, save_checkpoint, weights_digest
from vae.config import ModelConfig, TrainConfig, VariantConfig
from vae.model import build_model
from vae.train import Setup, train

MODEL = ModelConfig(embedding_dim=16, hidden_size=16, z_dim=8)
TRAIN, DEV = Pairs(*random_pairs(24, seed=0)), Pairs(*random_pairs(6, seed=1))


def setup(tokenizer: str = "") -> Setup:
    return Setup(MODEL, VariantConfig(), TrainConfig(epochs=1, max_tokens=60, device="cpu"), 30, 30, len(TRAIN),
                 tokenizer=tokenizer)


def saved_model(path, tokenizer: str = "") -> dict:
    torch.manual_seed(0)
    model = build_model(30, 30, MODEL, VariantConfig())
    save_checkpoint(path, {"setup": setup(tokenizer).as_dict(), "model": model.state_dict(), "epoch": 1})
    return model.state_dict()


class RunsCode:
    """Unpickled without weights_only, this writes `marker`: what a crafted checkpoint could do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('ran')",)


def crafted(path, marker) -> None:
    torch.save({"setup": RunsCode(marker), "model": {"w": torch.zeros(1)}, "fingerprint": RunsCode(marker)}, path)


def test_a_crafted_model_is_refused_without_running_its_code(tmp_path):
    marker = tmp_path / "marker"
    crafted(tmp_path / "model.pt", marker)
    with pytest.raises(UserError, match=r"model\.pt holds Python objects besides tensors and plain data \(.*\), so it "
                                        r"was not loaded; re-train it \(dvc repro train@<variant>\)"):
        load_model(tmp_path / "model.pt")
    assert not marker.exists()


def test_a_crafted_last_checkpoint_is_refused_by_the_resume(tmp_path):
    marker = tmp_path / "marker"
    crafted(tmp_path / "last.pt", marker)
    with pytest.raises(UserError, match=r"last\.pt holds Python objects .* delete it to start this run afresh"):
        train(setup(), TRAIN, DEV, tmp_path)
    assert not marker.exists()


def test_saved_weights_load_with_weights_only_and_their_digest(tmp_path):
    state = saved_model(tmp_path / "model.pt")
    blob = torch.load(tmp_path / "model.pt", weights_only=True)
    assert blob["weights_sha256"] == weights_digest(state)
    model, _ = load_model(tmp_path / "model.pt")
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())


def test_a_damaged_model_file_is_named(tmp_path):
    # a flipped bit in a tensor is read back without any error by torch (no CRC check): only the digest sees it
    state = saved_model(tmp_path / "model.pt")
    data = bytearray((tmp_path / "model.pt").read_bytes())
    largest = max(state.values(), key=torch.Tensor.numel)
    at = data.find(largest.numpy().tobytes()[:64])
    assert at > 0
    data[at + 40] ^= 0x04
    (tmp_path / "model.pt").write_bytes(bytes(data))
    assert torch.load(tmp_path / "model.pt", weights_only=True)  # torch itself notices nothing
    with pytest.raises(UserError, match=r"model\.pt is damaged: its weights do not match the sha256 stored with them"):
        load_model(tmp_path / "model.pt")


def test_a_model_without_a_digest_is_from_an_older_version(tmp_path):
    saved_model(tmp_path / "model.pt")
    blob = torch.load(tmp_path / "model.pt", weights_only=True)
    del blob["weights_sha256"]
    torch.save(blob, tmp_path / "model.pt")
    with pytest.raises(UserError, match=r"model\.pt has no digest of its weights \(it was written by an older version\); "
                                        r"re-train it"):
        load_model(tmp_path / "model.pt")


def test_the_digest_covers_names_shapes_and_values():
    state = {"a": torch.arange(6.0).reshape(2, 3), "b": torch.tensor(True)}
    base = weights_digest(state)
    assert weights_digest(dict(reversed(state.items()))) == base  # a fixed order, not the dict's
    assert weights_digest({**state, "a": state["a"].reshape(3, 2)}) != base
    assert weights_digest({"c": state["a"], "b": state["b"]}) != base
    assert weights_digest({**state, "a": state["a"] + 1e-6}) != base
    assert weights_digest({k: v.to(torch.bfloat16) for k, v in state.items()}) != base


def test_a_tokenizer_from_other_data_is_refused_naming_both(tmp_path):
    ours, other = tmp_path / "data" / "tokenizer", tmp_path / "other" / "tokenizer"
    for folder, content in ((ours, b"pieces of one corpus"), (other, b"pieces of another")):
        folder.mkdir(parents=True)
        (folder / "src.model").write_bytes(content)
        (folder / "tgt.model").write_bytes(content)
    saved_model(tmp_path / "model.pt", tokenizer=data_fingerprint([ours]))
    load_model(tmp_path / "model.pt", tokenizer=ours)
    with pytest.raises(UserError, match=rf"model\.pt was trained with another tokenizer than the one in {other}"):
        load_model(tmp_path / "model.pt", tokenizer=other)
