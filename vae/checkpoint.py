"""Loading a trained model: the checkpoint holds the settings that built it, so it rebuilds itself
(as nanoGPT's sampling does) without the trainer."""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from vae import UserError
from vae.config import ModelConfig, VariantConfig, parse
from vae.model import Seq2SeqVAE, build_model


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


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[Seq2SeqVAE, dict]:
    """Rebuild a trained model from a checkpoint written by training; returns it (in eval mode) and the blob."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such model; train it first (dvc repro train@<variant>)")
    try:
        blob = torch.load(path, map_location=device, weights_only=False)
        setup = blob["setup"]
        model = build_model(setup["src_vocab"], setup["tgt_vocab"], parse(ModelConfig, setup["model"], "model"),
                            parse(VariantConfig, setup["variant"], "variant"))
        model.load_state_dict(blob["model"])
    except UserError:
        raise
    except Exception as err:  # a truncated file, another format, weights of other shapes
        raise UserError(f"{path}: not a usable model checkpoint ({type(err).__name__}: {str(err)[:200]}); "
                        "re-train it (dvc repro train@<variant>)") from None
    return model.to(device).eval(), blob
