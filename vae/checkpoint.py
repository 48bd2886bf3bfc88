"""Checkpoints: how training writes them and how every later stage reads them back.

A checkpoint holds tensors and plain data only (dicts, lists, str, int, float, bool, None) and is read
with `weights_only=True`, so a file pulled from a shared DVC remote cannot run code when it is loaded.
It carries the sha256 of its weights, so a damaged file (a corrupted cache object that `dvc checkout`
restored without a word) is caught on load, and the settings that built the model, so the model
rebuilds itself (as nanoGPT's sampling does) without the trainer. The fingerprints of the data and
of the tokenizer it was trained on tell whether a run may resume and whether a tokenizer fits it.
"""

from __future__ import annotations

import hashlib
import pickle
import platform
from pathlib import Path

import torch

from vae import UserError
from vae.config import ModelConfig, VariantConfig, parse
from vae.io import save_torch
from vae.model import Seq2SeqVAE, build_model

RETRAIN = "re-train it (dvc repro train@<variant>)"


def data_fingerprint(paths: list[Path]) -> str:
    """sha256 over the names and bytes of the files under `paths` (in order): what a checkpoint was
    trained on (the encoded split, the tokenizer)."""
    digest = hashlib.sha256()
    for path in paths:
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if file.is_file():
                digest.update(file.name.encode())
                digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def weights_digest(state: dict[str, torch.Tensor]) -> str:
    """sha256 over a state dict's tensors in sorted key order: each one's name, dtype, shape and bytes."""
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().cpu().contiguous().reshape(-1)
        digest.update(f"{key} {tensor.dtype} {tuple(state[key].shape)}\n".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_checkpoint(path: Path, blob: dict) -> None:
    """Write `blob` (its weights under "model") atomically, with the digest of those weights."""
    save_torch(path, {**blob, "weights_sha256": weights_digest(blob["model"])})


def read_checkpoint(path: Path, device, advice: str) -> dict:
    """A checkpoint's contents, its weights verified; anything else is one UserError naming `path`,
    ending with `advice` (what to do about it)."""
    try:
        blob = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError:  # weights_only met a Python object: it would run code to rebuild it
        raise UserError(f"{path} holds Python objects besides tensors and plain data (it was written by an "
                        f"older version, or crafted), so it was not loaded; {advice}") from None
    except Exception as err:  # a truncated file, another format
        raise UserError(f"{path} cannot be read: the file is damaged or not a checkpoint ({type(err).__name__}: "
                        f"{' '.join(str(err).split())[:160]}); {advice}") from None
    if not isinstance(blob, dict) or not isinstance(blob.get("model"), dict):
        raise UserError(f"{path} is not a checkpoint written by training (it holds no weights); {advice}")
    if "weights_sha256" not in blob:
        raise UserError(f"{path} has no digest of its weights (it was written by an older version); {advice}")
    if weights_digest(blob["model"]) != blob["weights_sha256"]:
        raise UserError(f"{path} is damaged: its weights do not match the sha256 stored with them (a corrupted "
                        f"copy or DVC cache object); {advice}")
    return blob


def resolve_device(name: str) -> torch.device:
    """'auto' is CUDA when present, else the CPU; a device that is not there is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device '{name}'; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise UserError(f"device '{name}' is not available on this machine; use device: auto or cpu")
    return device


def device_name(device: torch.device) -> str:
    """The processor behind `device`, for labelling a result: the GPU's name, or the CPU's model name
    (from /proc/cpuinfo where there is one) and the threads torch uses."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {torch.get_num_threads()} threads"


def load_model(path: str | Path, device: str | torch.device = "cpu",
               tokenizer: str | Path | None = None) -> tuple[Seq2SeqVAE, dict]:
    """Rebuild a trained model from a checkpoint written by training; returns it (in eval mode) and the blob.

    With `tokenizer` (a tokenizer folder) the model must have been trained with that very tokenizer:
    one of the same size from other data would map the same ids to other words, without an error.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such model; train it first (dvc repro train@<variant>)")
    blob = read_checkpoint(path, device, RETRAIN)
    try:
        setup = blob["setup"]
        model = build_model(setup["src_vocab"], setup["tgt_vocab"], parse(ModelConfig, setup["model"], "model"),
                            parse(VariantConfig, setup["variant"], "variant"))
        model.load_state_dict(blob["model"])
    except UserError:
        raise
    except Exception as err:  # settings or weights of another shape
        raise UserError(f"{path}: not a usable model checkpoint ({type(err).__name__}: {str(err)[:200]}); "
                        f"{RETRAIN}") from None
    if tokenizer is not None and not Path(tokenizer).is_dir():
        raise UserError(f"{tokenizer}: no such tokenizer; run the tokenize stage first (dvc repro tokenize)")
    if tokenizer is not None and blob["setup"].get("tokenizer") != data_fingerprint([Path(tokenizer)]):
        raise UserError(f"{path} was trained with another tokenizer than the one in {tokenizer}; run `dvc repro` "
                        "so that the model and the tokenizer come from one run")
    return model.to(device).eval(), blob
