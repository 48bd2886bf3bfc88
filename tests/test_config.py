"""params.yaml → typed, frozen config: unknown keys, wrong types and bad ranges name the dotted key."""

from __future__ import annotations

import dataclasses
import re

import pytest
import yaml

from conftest import REPO, run_stage
from vae import UserError
from vae.config import ConfigError, Params, PrepareConfig, VariantConfig, load_params, load_point


def write_params(tmp_path, data, name="params.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False) if not isinstance(data, str) else data, encoding="utf-8")
    return path


def test_repo_params_load():
    params = load_params(REPO / "params.yaml")
    raw = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    assert isinstance(params, Params)
    # every value written in the file arrives in the typed object, not a default
    for section in ("download", "prepare", "tokenize"):
        for key, value in raw[section].items():
            assert getattr(getattr(params, section), key) == value, f"{section}.{key}"
    assert set(params.variants) == set(raw.get("variants") or {})
    assert params.download.source in {"bundled", "europarl", "local"}
    assert params.prepare.train_size + params.prepare.dev_size + params.prepare.test_size <= 100_000


def test_params_are_frozen(tmp_path):
    params = load_params(write_params(tmp_path, {"prepare": {"train_size": 5}}))
    assert params.prepare.train_size == 5
    assert params.prepare.dev_size == PrepareConfig().dev_size  # unspecified: the default
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.prepare.train_size = 6


def test_an_empty_mapping_gives_defaults(tmp_path):
    assert load_params(write_params(tmp_path, "{}\n")) == Params()


@pytest.mark.parametrize("content", ["", "\n\n", "# every section deleted\n"])
def test_an_emptied_file_is_refused(tmp_path, content):
    # run by hand, an emptied params.yaml used to mean "all defaults" without a word
    with pytest.raises(ConfigError, match=r"params\.yaml: the parameters file is empty"):
        load_params(write_params(tmp_path, content))


def test_a_section_given_twice_is_refused_with_both_lines(tmp_path):
    # PyYAML keeps the last `train:`; DVC rejects the file; so must we, or a run trains on defaults
    text = "train:\n  epochs: 3\n  learning_rate: 0.01\nvariants:\n  gumbel: {attention: gumbel}\ntrain:\n  epochs: 4\n"
    with pytest.raises(ConfigError, match=r"line 6, column 1: .*the key 'train' appears twice .* lines 1 and 6"):
        load_params(write_params(tmp_path, text))


def test_a_key_repeated_deeper_is_refused(tmp_path):
    text = "train:\n  kl:\n    schedule: linear\n    warmup_steps: 10\n    schedule: constant\n"
    with pytest.raises(ConfigError, match=r"the key 'schedule' appears twice .* lines 3 and 5"):
        load_params(write_params(tmp_path, text))


def test_a_repeated_key_in_an_override_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"the key 'a' appears twice"):
        load_params(write_params(tmp_path, "{}\n"), ["variants={a: {latent_z: true}, a: {latent_z: false}}"])


@pytest.mark.parametrize("name", ["gumbel.v2", "gumbel v2", "gumbel@2"])
def test_a_name_dvc_cannot_take_is_refused(tmp_path, name):
    raw = {"variants": {"gumbel": {"attention": "gumbel"}, name: {"attention": "gumbel"}}}
    with pytest.raises(ConfigError, match=rf"'variants\.{re.escape(name)}': a name may hold only letters, digits, '-' and '_'"):
        load_params(write_params(tmp_path, raw))


def test_names_with_dashes_and_underscores_are_accepted(tmp_path):
    params = load_params(write_params(tmp_path, {"variants": {"gumbel_v-2": {"attention": "gumbel"}}}))
    assert "gumbel_v-2" in params.variants


@pytest.mark.parametrize("pin", ["deadbeef", "g" * 64, "0" * 63, " " + "0" * 64])
def test_a_sha256_pin_that_is_not_a_digest_is_refused(tmp_path, pin):
    # used to reach the download and blame the archive ("checksum mismatch")
    with pytest.raises(ConfigError, match=r"'download\.europarl_sha256': must be a sha256 digest \(64 hexadecimal"):
        load_params(write_params(tmp_path, {"download": {"europarl_sha256": pin}}))
    assert load_params(write_params(tmp_path, {"download": {"europarl_sha256": "aB" * 32}}))


def test_unknown_key_is_named_with_suggestion(tmp_path):
    path = write_params(tmp_path, {"prepare": {"train_szie": 100}})
    with pytest.raises(ConfigError) as info:
        load_params(path)
    message = str(info.value)
    assert "prepare.train_szie" in message
    assert "did you mean 'train_size'" in message
    assert isinstance(info.value, UserError)


def test_unknown_section_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"tokenise.*did you mean 'tokenize'"):
        load_params(write_params(tmp_path, {"tokenise": {"vocab_size": 100}}))


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        ("prepare", "train_size", "100", "must be an integer"),
        ("prepare", "train_size", True, "must be an integer"),  # bool is an int in Python; not here
        ("prepare", "seed", 1.5, "must be an integer"),
        ("prepare", "deduplicate", "yes please", "must be true or false"),
        ("prepare", "max_length_ratio", "3", "must be a finite number"),
        ("prepare", "max_length_ratio", float("nan"), "must be a finite number"),
        ("tokenize", "joint", 1, "must be true or false"),
        ("tokenize", "model_type", "bpe2", "must be one of"),
        ("download", "bundled_dir", 7, "must be a string"),
    ],
)
def test_wrong_type_names_the_key(tmp_path, section, key, value, expected):
    with pytest.raises(ConfigError) as info:
        load_params(write_params(tmp_path, {section: {key: value}}))
    assert f"'{section}.{key}'" in str(info.value)
    assert expected in str(info.value)


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        ("prepare", "train_size", 0, ">= 1"),
        ("prepare", "max_words", -3, ">= 1"),
        ("prepare", "max_length_ratio", 0.5, ">= 1.0"),
        ("tokenize", "vocab_size", 8, ">= 16"),
        ("tokenize", "character_coverage", 1.5, "<= 1.0"),
        ("model", "dropout", 0.95, "<= 0.9"),
    ],
)
def test_out_of_range_names_the_key(tmp_path, section, key, value, expected):
    with pytest.raises(ConfigError) as info:
        load_params(write_params(tmp_path, {section: {key: value}}))
    assert f"'{section}.{key}'" in str(info.value)
    assert expected in str(info.value)


def test_boundary_values_are_accepted(tmp_path):
    params = load_params(write_params(tmp_path, {
        "prepare": {"train_size": 1, "max_length_ratio": 1},  # an int where a float is wanted is fine
        "tokenize": {"vocab_size": 16, "character_coverage": 0.9},
    }))
    assert params.prepare.train_size == 1
    assert params.prepare.max_length_ratio == 1.0 and isinstance(params.prepare.max_length_ratio, float)
    assert params.tokenize.vocab_size == 16


def test_variants_are_typed(tmp_path):
    params = load_params(write_params(tmp_path, {"variants": {
        "vae_det": {"latent_z": True, "attention": "deterministic"},
        "vae_gauss": {"attention": "gaussian", "gamma_a": 0.5},
    }}))
    assert set(params.variants) == {"vae_det", "vae_gauss"}
    assert all(isinstance(v, VariantConfig) for v in params.variants.values())
    assert params.variants["vae_gauss"].gamma_a == 0.5


def test_unknown_variant_key_is_named(tmp_path):
    path = write_params(tmp_path, {"variants": {"vae_det": {"attenton": "gaussian"}}})
    with pytest.raises(ConfigError) as info:
        load_params(path)
    assert "variants.vae_det.attenton" in str(info.value)
    assert "did you mean 'attention'" in str(info.value)


def test_bad_variant_value_and_cross_field_check(tmp_path):
    with pytest.raises(ConfigError, match=r"'variants\.v\.attention' must be one of"):
        load_params(write_params(tmp_path, {"variants": {"v": {"attention": "soft"}}}))
    with pytest.raises(ConfigError, match=r"'variants\.v\.gumbel_tau_min'"):
        load_params(write_params(tmp_path, {"variants": {"v": {"gumbel_tau0": 0.5, "gumbel_tau_min": 1.0}}}))
    # neither z nor attention is the plain encoder-decoder without attention: allowed
    assert load_params(write_params(tmp_path, {"variants": {"v": {"latent_z": False, "attention": "none"}}}))


@pytest.mark.parametrize("variant, key", [
    ({"attention": "deterministic", "kl_a_free_nats": 0.5}, "kl_a_free_nats"),
    ({"attention": "gumbel", "attention_kl_price": 0.1}, "attention_kl_price"),
    ({"attention": "none", "attention_kl_price": 0.1}, "attention_kl_price"),
])
def test_a_price_the_attention_cannot_pay_is_refused(tmp_path, variant, key):
    with pytest.raises(ConfigError, match=rf"'variants\.v\.{key}'"):
        load_params(write_params(tmp_path, {"variants": {"v": variant}}))


def test_section_must_be_a_mapping(tmp_path):
    with pytest.raises(ConfigError, match=r"prepare: expected a mapping"):
        load_params(write_params(tmp_path, "prepare: 3\n"))


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="no such parameters file"):
        load_params(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(write_params(tmp_path, "prepare: [1, 2\n"))


def test_cli_reports_bad_key_without_traceback(tmp_path):
    bad = write_params(tmp_path, {"prepare": {"train_szie": 100}}, name="bad.yaml")
    result = run_stage("prepare", "--params", str(bad), cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "prepare.train_szie" in result.stderr
    assert "train_size" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "results").exists()


def test_cli_message_with_markup_like_text_is_printed_verbatim(tmp_path):
    # the error names a path containing '[/]'; it must be shown as-is, not parsed as rich markup
    bad = write_params(tmp_path, {"download": {"source": "local", "local_src": "x[/]y.txt", "local_tgt": "t.txt"}})
    result = run_stage("download", "--params", str(bad), "--out", str(tmp_path / "raw"),
                       "--cache", str(tmp_path / "cache"), cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "x[/]y.txt" in result.stderr
    assert "Traceback" not in result.stderr


def points_file(tmp_path, points):
    return write_params(tmp_path, {"points": points}, name="points.yaml")


def test_a_study_point_is_its_variant_with_settings_changed(tmp_path):
    params = write_params(tmp_path, {"variants": {"gumbel": {"attention": "gumbel", "gamma_a": 0.05}},
                                     "train": {"seed": 1}})
    point = load_point(points_file(tmp_path, {"s2-g": {"study": "seeds", "variant": "gumbel",
                                                         "set": {"train.seed": 2, "variants.gumbel.gamma_a": 0.5}}}),
                       "s2-g")
    changed = load_params(params, point.set)
    assert (changed.train.seed, changed.variants["gumbel"].gamma_a) == (2, 0.5)
    assert load_params(params).train.seed == 1  # the file itself is untouched


@pytest.mark.parametrize("points, name, expected", [
    ({"p": {"study": "seeds", "variant": "gumbel", "set": {"train.sed": 2}}}, "p", r"unknown key 'train\.sed'.*'seed'"),
    ({"p": {"study": "seeds", "variant": "gumbel", "set": {"train.seed": "two"}}}, "p", r"'train\.seed' must be an integer"),
    ({"p": {"study": "seeds", "variant": "softmax"}}, "p", r"'points\.p\.variant' names no variant .*'softmax'"),
    ({"p": {"variant": "gumbel"}}, "p", r"'points\.p'.*study"),
    ({"p": {"study": "seeds", "variant": "gumbel", "sett": {}}}, "p", r"unknown key 'points\.p\.sett'"),
    ({"p": {"study": "seeds", "variant": "gumbel"}}, "q", r"no point 'q' in .*points: p"),
    ({"p.1": {"study": "seeds", "variant": "gumbel"}}, "p.1", r"'points\.p\.1': a name may hold only"),
])
def test_a_bad_study_point_is_one_clear_line(tmp_path, points, name, expected):
    params = write_params(tmp_path, {"variants": {"gumbel": {"attention": "gumbel"}}})
    result = run_stage("train", "--point", name, "--points", str(points_file(tmp_path, points)),
                       "--params", str(params), cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert re.search(expected, result.stderr), result.stderr


def test_a_variant_name_dvc_cannot_take_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"'variants\.gumbel v2': a name may hold only"):
        load_params(write_params(tmp_path, {"variants": {"gumbel v2": {"attention": "gumbel"}}}))


def test_a_dotless_exponent_is_a_number(tmp_path):
    path = tmp_path / "hand.yaml"
    path.write_text("train:\n  learning_rate: 1e-3\n", encoding="utf-8")  # YAML 1.1 reads this as a string
    assert load_params(path).train.learning_rate == 0.001
    path.write_text("train:\n  learning_rate: fast\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"'train\.learning_rate' must be a finite number, got 'fast'"):
        load_params(path)
