"""Typed, frozen configuration loaded from params.yaml, validated before any work starts.

Each params.yaml section maps onto one frozen dataclass. `load_params` rejects an unknown
key (suggesting a close match), a value of the wrong type, or a value outside its range,
always naming the full dotted key, e.g. ``prepare.train_size``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from vae import UserError


class ConfigError(UserError):
    pass


def _range(lo=None, hi=None, *, lo_open=False):
    """Field metadata: the allowed closed range [lo, hi] (or (lo, hi] with lo_open)."""
    return {"range": (lo, hi, lo_open)}


@dataclass(frozen=True)
class DownloadConfig:
    """Where the parallel corpus comes from (§ 'download' in the README)."""

    source: Literal["bundled", "europarl", "local"] = "bundled"
    src_lang: str = "fr"
    tgt_lang: str = "en"
    bundled_dir: str = "data/europarl-v7-fr-en-sample100k"
    europarl_url: str = "https://www.statmt.org/europarl/v7/{pair}.tgz"
    europarl_sha256: str = ""  # empty: record the digest, do not check it
    local_src: str = ""
    local_tgt: str = ""

    def problems(self) -> list[tuple[str, str]]:
        # checked here, not against the archive: a mistyped pin would otherwise read as a damaged download
        if self.europarl_sha256 and not re.fullmatch(r"[0-9a-fA-F]{64}", self.europarl_sha256):
            return [("europarl_sha256", f"must be a sha256 digest (64 hexadecimal characters) or empty, "
                                        f"got {self.europarl_sha256!r}")]
        return []


@dataclass(frozen=True)
class PrepareConfig:
    """Cleaning filters and the seeded train/dev/test split."""

    unicode_form: Literal["NFC", "NFKC", "NFD", "NFKD"] = "NFC"
    max_words: int = field(default=50, metadata=_range(1))
    max_length_ratio: float = field(default=3.0, metadata=_range(1.0))
    deduplicate: bool = True
    seed: int = 1
    train_size: int = field(default=80_000, metadata=_range(1))
    dev_size: int = field(default=2_000, metadata=_range(1))
    test_size: int = field(default=10_000, metadata=_range(1))


@dataclass(frozen=True)
class TokenizeConfig:
    """SentencePiece subword model, trained on the training split only."""

    model_type: Literal["unigram", "bpe", "char", "word"] = "bpe"
    vocab_size: int = field(default=8000, metadata=_range(16))
    joint: bool = True
    character_coverage: float = field(default=1.0, metadata=_range(0.9, 1.0))
    seed: int = 1


@dataclass(frozen=True)
class ModelConfig:
    """Sizes shared by every variant, so that only the attention/latent part differs."""

    embedding_dim: int = field(default=256, metadata=_range(1))
    hidden_size: int = field(default=256, metadata=_range(1))  # per encoder direction; decoder too
    z_dim: int = field(default=64, metadata=_range(1))
    dropout: float = field(default=0.2, metadata=_range(0.0, 0.9))
    init: Literal["pytorch", "xavier"] = "pytorch"  # xavier: Glorot-uniform weights, zero biases, LSTM forget bias 1
    tie_output: bool = False  # the output layer reuses the target embeddings (Press & Wolf, 2017)

    def problems(self) -> list[tuple[str, str]]:
        if self.tie_output and self.embedding_dim != self.hidden_size:
            return [("tie_output", f"needs embedding_dim == hidden_size, got {self.embedding_dim} and {self.hidden_size}")]
        return []


@dataclass(frozen=True)
class VariantConfig:
    """What makes one variant: whether z exists and what kind of attention it has."""

    latent_z: bool = True
    attention: Literal["none", "deterministic", "gaussian", "gumbel"] = "deterministic"
    gamma_a: float = field(default=1.0, metadata=_range(0.0))
    gaussian_prior: Literal["standard", "encoder_mean"] = "standard"
    gaussian_init_logvar: float = 0.0  # initial log σ² of q(a_j|X); very negative starts a nearly noiseless a
    gumbel_tau0: float = field(default=1.0, metadata=_range(0.0, lo_open=True))
    gumbel_tau_min: float = field(default=0.5, metadata=_range(0.0, lo_open=True))
    gumbel_anneal_rate: float = field(default=0.0, metadata=_range(0.0))
    gumbel_hard: bool = False
    # δ, nats per target token: Σ_j KL_a is priced as max(Σ_j KL_a, δ·T) per sentence, so a may
    # carry δ nats per step for free ("free bits", Kingma et al., 2016, §C.8)
    kl_a_free_nats: float = field(default=0.0, metadata=_range(0.0))
    # β: the price per nat of Σ_j KL[α_j || uniform] = Σ_j (log n − H(α_j)) of the attention weights
    # of an ordinary or Gaussian attention: the Gumbel a's KL term without its noise, an entropy
    # bonus that spreads the weights early in training (results/BENCHMARKS.md)
    attention_kl_price: float = field(default=0.0, metadata=_range(0.0))

    def problems(self) -> list[tuple[str, str]]:
        """Cross-field checks, as (key, message) pairs."""
        found = []
        if self.gumbel_tau_min > self.gumbel_tau0:
            found.append(("gumbel_tau_min", "must not exceed gumbel_tau0"))
        if self.kl_a_free_nats > 0 and self.attention not in ("gaussian", "gumbel"):
            found.append(("kl_a_free_nats", "needs a latent attention (gaussian or gumbel)"))
        if self.attention_kl_price > 0 and self.attention not in ("deterministic", "gaussian"):
            found.append(("attention_kl_price", "needs deterministic or gaussian attention "
                          "(the gumbel's γ_a already prices KL[α || uniform])"))
        return found


@dataclass(frozen=True)
class KLScheduleConfig:
    """λ_KL(t): linear warm-up, sigmoid, cyclical (Fu et al., 2019) or the authors' tanh; a function
    of the step alone, so training longer extends a run instead of changing its past."""

    schedule: Literal["constant", "linear", "sigmoid", "cyclical", "tanh"] = "linear"
    max_weight: float = field(default=1.0, metadata=_range(0.0))
    warmup_steps: int = field(default=5000, metadata=_range(1))
    cycle_steps: int = field(default=10000, metadata=_range(1))
    ratio: float = field(default=0.5, metadata=_range(0.0, 1.0, lo_open=True))
    tanh_centre: int = field(default=4500, metadata=_range(0))  # tanh: the step where λ is half max_weight
    tanh_width: int = field(default=1000, metadata=_range(1))  # tanh: steps per unit of tanh's argument
    freeze_step: int = field(default=0, metadata=_range(0))  # > 0: λ holds its value from this step on


@dataclass(frozen=True)
class PricingConfig:
    """How the objective prices its terms (vae.objective): the unit of the reconstruction and of
    Σ_j KL_a (per sentence, or per target token as the authors' code), and whether KL(a)'s weight
    is γ_a or γ_a·λ_KL(t) (the authors')."""

    unit: Literal["sentence", "token"] = "sentence"
    kl_a_weight: Literal["constant", "annealed"] = "constant"
    kl_a_steps: Literal["all", "last"] = "all"  # Σ_j KL_a over every target step, or the last step's alone (the authors' code as it runs)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = field(default=10, metadata=_range(1))
    max_tokens: int = field(default=4000, metadata=_range(1))  # target tokens per batch
    max_pairs: int = field(default=0, metadata=_range(0))  # 0: the whole training split
    learning_rate: float = field(default=1e-3, metadata=_range(0.0, lo_open=True))
    clip_norm: float = field(default=5.0, metadata=_range(0.0, lo_open=True))
    word_dropout: float = field(default=0.0, metadata=_range(0.0, 1.0))
    label_smoothing: float = field(default=0.0, metadata=_range(0.0, 0.5))  # training only; dev NLL stays the true one
    weight_average: float = field(default=0.0, metadata=_range(0.0, 0.99999))  # EMA decay of the weights; 0: off
    kl: KLScheduleConfig = KLScheduleConfig()
    pricing: PricingConfig = PricingConfig()
    max_minutes: float = field(default=0.0, metadata=_range(0.0))  # > 0: stop at the first step past this much training time
    seed: int = 1
    device: str = "auto"
    precision: Literal["fp32", "bf16"] = "fp32"
    processes: int = field(default=1, metadata=_range(1))  # data-parallel ranks (torchrun); same result, faster
    log_every: int = field(default=25, metadata=_range(1))  # optimiser steps per line of the DVCLive log


@dataclass(frozen=True)
class DecodeConfig:
    """Beam search on the test split (beam_size 1 is greedy)."""

    beam_size: int = field(default=5, metadata=_range(1))
    length_penalty: float = field(default=1.0, metadata=_range(0.0))
    max_length_ratio: float = field(default=1.5, metadata=_range(0.0, lo_open=True))
    max_length_slack: int = field(default=10, metadata=_range(0))
    max_sentences: int = field(default=0, metadata=_range(0))  # 0: the whole test split
    max_tokens: int = field(default=6000, metadata=_range(1))  # source tokens × beam per batch
    device: str = "auto"
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16: autocast matrix products (the output layer dominates)


@dataclass(frozen=True)
class DiagnoseConfig:
    """Latent-use evidence on the first `max_sentences` test pairs."""

    max_sentences: int = field(default=1000, metadata=_range(1))
    samples: int = field(default=5, metadata=_range(1))  # draws of (z, a) per source for diversity
    sample_sentences: int = field(default=200, metadata=_range(1))
    seed: int = 1


@dataclass(frozen=True)
class EvaluateConfig:
    bootstrap_samples: int = field(default=1000, metadata=_range(1))
    baselines: tuple[str, ...] = ("none", "deterministic")


@dataclass(frozen=True)
class ClaimConfig:
    """The rules by which the seed's three claims are judged (vae.claim), in nats per target token on
    the diagnose stage's test pairs: here so that `dvc params diff` shows a changed rule."""

    bypass_ratio: float = field(default=0.25, metadata=_range(0.0, lo_open=True))  # (i): attention's ΔNLL(z=0) < this × no attention's
    keeps_z_ratio: float = field(default=2.0, metadata=_range(0.0))  # (ii): ΔNLL(z=0) ≥ this × ordinary attention's …
    z_in_use: float = field(default=0.01, metadata=_range(0.0))  # … and ≥ this: removing z must cost something
    a_kl_in_use: float = field(default=0.1, metadata=_range(0.0))  # (ii): a alive: KL_a ≥ this …
    a_read: float = field(default=0.05, metadata=_range(0.0))  # … and ΔNLL(a → prior) ≥ this: the decoder reads a
    bleu_share: float = field(default=0.95, metadata=_range(0.0))  # the price curve: "translates" at ≥ this × ordinary attention's BLEU


NAME = re.compile(r"[A-Za-z0-9_-]+")  # what DVC can take in a stage name (`train@<name>`) and a file name


@dataclass(frozen=True)
class Params:
    download: DownloadConfig = DownloadConfig()
    prepare: PrepareConfig = PrepareConfig()
    tokenize: TokenizeConfig = TokenizeConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    variants: dict[str, VariantConfig] = field(default_factory=dict)
    decode: DecodeConfig = DecodeConfig()
    diagnose: DiagnoseConfig = DiagnoseConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    claim: ClaimConfig = ClaimConfig()

    def problems(self) -> list[tuple[str, str]]:
        # DVC makes stage names of these (train@<variant>) and reads '.' as nesting: a name it cannot
        # take fails there with a message about missing parameters, so it is refused here.
        for name in self.variants:
            if not isinstance(name, str) or not NAME.fullmatch(name):
                return [(f"variants.{name}", "a name may hold only letters, digits, '-' and '_' "
                                             "(DVC makes a stage name of it); write 0.1 as 0p1")]
        return []


@dataclass(frozen=True)
class StudyPoint:
    """One model of the studies pipeline (studies/params.yaml `points`): a variant of params.yaml trained,
    decoded and diagnosed by the main stages with some settings changed, e.g.
    ``seed2-gumbel: {study: seeds, variant: gumbel, set: {train.seed: 2}}``."""

    study: str
    variant: str
    set: dict = field(default_factory=dict)  # dotted params.yaml key → value, as `dvc exp run -S`


def load_point(path: str | Path, name: str) -> StudyPoint:
    """Point `name` of a studies params file, checked for its shape (its settings are checked when
    applied to params.yaml by load_params)."""
    points = read_yaml(Path(path)).get("points") or {}
    if name not in points:
        known = ", ".join(points) or "none"
        raise ConfigError(f"no point '{name}' in {path} (points: {known})")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ConfigError(f"'points.{name}': a name may hold only letters, digits, '-' and '_' "
                          "(DVC makes a stage name of it); write 0.1 as 0p1")
    return parse(StudyPoint, points[name], f"points.{name}")


class ParamsLoader(yaml.SafeLoader):
    """YAML as DVC reads params.yaml: 1.2's floats, so `1e-3` is a number (PyYAML's 1.1 rules need
    `1.0e-3` and would hand the training a string), and a key repeated in one mapping is an error
    (PyYAML would keep the last one: a second `train:` section would silently replace the first)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key '{key}' appears twice in one mapping, on lines {seen[key]} and {line}; "
                    "keep one", key_node.start_mark)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


ParamsLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d[\d_]*)?\.?\d*[eE][-+]?\d+$|^[-+]?(?:\d[\d_]*)?\.\d+$|^[-+]?\d[\d_]*\.\d*$"),
    list("-+0123456789."))


def read_yaml(path: Path) -> dict:
    """A YAML mapping file as DVC reads it; a missing file or bad YAML is a ConfigError naming where."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such parameters file") from None
    raw = _yaml(text, str(path))
    if raw is None:  # an emptied file is a mistake, not a wish for every default (`{}` says that)
        raise ConfigError(f"{path}: the parameters file is empty; restore it (e.g. git checkout -- {path.name}), "
                          "or write {} for all defaults")
    return raw


def load_params(path: str | Path = "params.yaml", overrides: list[str] | dict[str, Any] = ()) -> Params:
    """Read and validate params.yaml with overrides applied first, either `dvc exp run -S` strings
    ("train.epochs=2", the value read as YAML) or a mapping of dotted keys to values (a study point's
    `set`); raise ConfigError naming the offending key."""
    raw = read_yaml(Path(path))
    if not isinstance(overrides, dict):
        parsed = {}
        for override in overrides:
            key, sep, value = override.partition("=")
            if not sep or not key:
                raise ConfigError(f"override {override!r} must look like section.key=value")
            parsed[key] = _yaml(value, f"override {override!r}")
        overrides = parsed
    for key, value in overrides.items():
        *parents, leaf = str(key).split(".")
        node = raw
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {key!r}: '{part}' is not a section")
        node[leaf] = value
    return parse(Params, raw, "")


def _yaml(text: str, where: str) -> Any:
    """`text` read by ParamsLoader; a syntax error or a repeated key names `where` and the line."""
    try:
        return yaml.load(text, Loader=ParamsLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{where}, line {mark.line + 1}, column {mark.column + 1}" if mark else where
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None


def parse(cls, raw: Any, where: str):
    """Build dataclass `cls` from a mapping, checking keys, types and ranges."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where or 'params'}: expected a mapping, got {_kind(raw)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in raw.items():
        dotted = f"{where}.{key}" if where else str(key)
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            known = ", ".join(fields)
            raise ConfigError(f"unknown key '{dotted}'{hint}; known keys here: {known}")
        values[key] = _coerce(hints[key], value, dotted, fields[key].metadata)
    required = [name for name, f in fields.items() if name not in values and
                f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if required:
        raise ConfigError(f"'{where or 'params'}': missing key '{required[0]}'")
    obj = cls(**values)
    for key, message in getattr(obj, "problems", list)():
        raise ConfigError(f"'{where}.{key}': {message}" if where else f"'{key}': {message}")
    return obj


def _coerce(hint, value, dotted: str, metadata) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return parse(hint, value, dotted)
    if origin is dict:
        _, value_type = typing.get_args(hint)
        if not isinstance(value, dict):
            raise ConfigError(f"'{dotted}' must be a mapping, got {_kind(value)}")
        return {k: _coerce(value_type, v, f"{dotted}.{k}", {}) for k, v in value.items()}
    if hint is dict:  # free-form (a study run): checked against its schema by Params.problems()
        if not isinstance(value, dict):
            raise ConfigError(f"'{dotted}' must be a mapping, got {_kind(value)}")
        return value
    if origin is tuple:
        item = typing.get_args(hint)[0]
        if not isinstance(value, list):
            raise ConfigError(f"'{dotted}' must be a list, got {_kind(value)}")
        return tuple(_coerce(item, v, f"{dotted}[{i}]", {}) for i, v in enumerate(value))
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ConfigError(f"'{dotted}' must be one of {list(choices)}, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"'{dotted}' must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"'{dotted}' must be an integer, got {value!r}")
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"'{dotted}' must be a finite number, got {value!r}")
        value = float(value)
    elif hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"'{dotted}' must be a string, got {value!r}")
    _check_range(value, dotted, metadata)
    return value


def _check_range(value, dotted, metadata) -> None:
    if "range" not in metadata:
        return
    lo, hi, lo_open = metadata["range"]
    if lo is not None and (value <= lo if lo_open else value < lo):
        raise ConfigError(f"'{dotted}' must be {'>' if lo_open else '>='} {lo}, got {value!r}")
    if hi is not None and value > hi:
        raise ConfigError(f"'{dotted}' must be <= {hi}, got {value!r}")


def _kind(value) -> str:
    return type(value).__name__ if value is not None else "nothing"
