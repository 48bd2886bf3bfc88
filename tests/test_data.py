"""Reading, cleaning, filtering and splitting an aligned corpus (the prepare stage)."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from conftest import run_stage, synthetic_pairs, write_pair_files, write_text_lines
from vae import UserError
from vae.config import PrepareConfig
from vae.data import CHARS_PER_WORD, SPLITS, copied_from, normalise, prepare, read_aligned, read_lines


def cfg(**overrides) -> PrepareConfig:
    base = dict(train_size=60, dev_size=10, test_size=10, seed=1)
    return PrepareConfig(**(base | overrides))


def run_prepare_cli(tmp_path, raw, out, metrics, **prepare):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"prepare": prepare}), encoding="utf-8")
    return run_stage("prepare", "--params", str(params), "--raw", str(raw), "--out", str(out),
                     "--metrics", str(metrics), cwd=tmp_path)


# --- reading ------------------------------------------------------------------------------


def test_misaligned_input_names_both_counts(tmp_path):
    src = write_text_lines(tmp_path / "src.txt", ["a", "b", "c", "d", "e"])
    tgt = write_text_lines(tmp_path / "tgt.txt", ["A", "B", "C"])
    with pytest.raises(UserError) as info:
        read_aligned(src, tgt)
    message = str(info.value)
    assert "not aligned" in message
    assert f"{src} has 5 lines" in message and f"{tgt} has 3" in message


def test_misaligned_input_through_cli(tmp_path):
    raw = tmp_path / "raw"
    pairs = synthetic_pairs(100, seed=1)
    write_text_lines(raw / "src.txt", [s for s, _ in pairs])
    write_text_lines(raw / "tgt.txt", [t for _, t in pairs[:-7]])
    out, metrics = tmp_path / "prepared", tmp_path / "results" / "prepare.json"
    result = run_prepare_cli(tmp_path, raw, out, metrics, train_size=50, dev_size=10, test_size=10)
    assert result.returncode == 1
    assert "100 lines" in result.stderr and "93" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()
    assert not metrics.exists()


def test_empty_file_is_a_clear_error(tmp_path):
    src = write_text_lines(tmp_path / "src.txt", ["a"])
    tgt = tmp_path / "tgt.txt"
    tgt.write_bytes(b"")
    with pytest.raises(UserError, match=re.escape(f"{tgt}: the file is empty")):
        read_aligned(src, tgt)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        read_lines(tmp_path / "absent.txt")


def test_bad_utf8_names_the_line(tmp_path):
    path = tmp_path / "src.txt"
    path.write_bytes("première\ndeuxième\n".encode() + b"troisi\xe8me\n" + b"quatre\n")  # latin-1 on line 3
    with pytest.raises(UserError) as info:
        read_lines(path)
    assert f"{path}, line 3" in str(info.value)
    assert "UTF-8" in str(info.value)


@pytest.mark.parametrize("head, mark", [(b"\xff\xfe", "a UTF-16 byte-order mark"),
                                        (b"\xfe\xff", "a UTF-16 byte-order mark"), (b"", "many NUL bytes")])
def test_utf16_is_named_with_a_hint(tmp_path, head, mark):
    path = tmp_path / "src.txt"
    text = "le chat\nle chien\n"  # ASCII: as UTF-16 without a mark, valid UTF-8 full of NULs
    path.write_bytes(head + text.encode("utf-16-be" if head == b"\xfe\xff" else "utf-16-le"))
    with pytest.raises(UserError, match=rf"src\.txt: looks like UTF-16 \(it has {mark}\), not UTF-8; convert it"):
        read_lines(path)


def test_lines_ending_in_cr_alone_are_named(tmp_path):
    path = tmp_path / "src.txt"
    path.write_bytes(b"le chat\rle chien\rla maison\r")
    with pytest.raises(UserError, match=r"src\.txt: its lines end in CR alone .* reads as 1 line"):
        read_lines(path)
    path.write_bytes(b"one\r\ntwo with a stray \r inside\r\nthree\n")  # one stray CR is kept as it was
    assert len(read_lines(path)) == 3


@pytest.mark.parametrize("blank", [b"\n", b" \t\n", b"\r\n", b"\r\r\r\n"])
def test_a_blank_only_corpus_has_no_usable_lines(tmp_path, blank):
    src = tmp_path / "src.txt"
    src.write_bytes(blank * 50)
    tgt = write_text_lines(tmp_path / "tgt.txt", [t for _, t in synthetic_pairs(50, seed=2)])
    with pytest.raises(UserError, match=r"the corpus has no usable lines: each of its 50 pair\(s\) is blank") as info:
        prepare(read_aligned(src, tgt), cfg(train_size=10))
    assert "lower the sizes" not in str(info.value)


def test_errors_name_the_users_file_not_the_copy(tmp_path):
    from vae.config import DownloadConfig
    from vae.corpus import fetch

    pairs = synthetic_pairs(30, seed=4)
    src = write_text_lines(tmp_path / "mine" / "corpus.fr", [s for s, _ in pairs])
    tgt = tmp_path / "mine" / "corpus.en"
    tgt.write_bytes("".join(t + "\n" for _, t in pairs).encode() + "r\u00e9sum\u00e9\n".encode("latin-1"))
    fetch(DownloadConfig(source="local", local_src=str(src), local_tgt=str(tgt)), tmp_path / "raw", tmp_path / "c")
    result = run_prepare_cli(tmp_path, tmp_path / "raw", tmp_path / "out", tmp_path / "m.json", train_size=10)
    assert result.returncode == 1
    assert f"error: {tgt} (copied to {tmp_path / 'raw' / 'tgt.txt'}), line 31: not valid UTF-8" in result.stderr
    src.write_bytes(src.read_bytes()[:-1] + b"\nextra\n")
    tgt.write_bytes(tgt.read_bytes().rsplit(b"\n", 2)[0] + b"\n")
    fetch(DownloadConfig(source="local", local_src=str(src), local_tgt=str(tgt)), tmp_path / "raw", tmp_path / "c")
    with pytest.raises(UserError, match=rf"{re.escape(str(src))} has 31 lines but {re.escape(str(tgt))} has 30"):
        read_aligned(tmp_path / "raw" / "src.txt", tmp_path / "raw" / "tgt.txt", copied_from(tmp_path / "raw"))


def test_crlf_and_missing_final_newline(tmp_path):
    path = tmp_path / "src.txt"
    path.write_bytes(b"one\r\ntwo\r\nthree")
    assert read_lines(path) == ["one", "two", "three"]


# --- cleaning -----------------------------------------------------------------------------


def test_normalise_unicode_and_whitespace():
    decomposed = "e\u0301te\u0301"  # 'été' as e + combining acute
    assert normalise(decomposed, "NFC") == "\u00e9t\u00e9"
    assert normalise("\u00e9t\u00e9", "NFD") == decomposed
    assert normalise("  le\tchat\u00a0 noir \u2003 ", "NFC") == "le chat noir"  # tab, NBSP, em space
    assert normalise("\ufb01n", "NFKC") == "fin"  # ligature folded by NFKC only
    assert normalise("\ufb01n", "NFC") == "\ufb01n"
    assert normalise(" \t\u00a0", "NFC") == ""


def test_prepare_normalises_the_output():
    pairs = [(f"le  chat\u00a0n{i}\t", f" the cat  n{i}") for i in range(5)] + [("e\u0301te\u0301", "summer")]
    result = prepare(pairs, cfg(train_size=4, dev_size=1, test_size=1))
    everything = [p for name in SPLITS for p in result.splits[name]]
    assert sorted(everything) == sorted([(f"le chat n{i}", f"the cat n{i}") for i in range(5)] + [("été", "summer")])


def test_per_filter_counts():
    good = synthetic_pairs(30, seed=5, max_words=6)
    pairs = list(good)
    pairs += [("", "the cat"), ("le chat", "   "), ("\u00a0", "x")]            # 3 empty on one side
    pairs += [(" ".join(["mot"] * 12), " ".join(["word"] * 12)),               # 2 longer than max_words
              ("court", " ".join(["word"] * 11))]
    pairs += [("x" * 201, "one"), ("un", "http://" + "y" * 200)]                # 2 over 10 × 20 characters
    pairs += [("un", "one two three four five"), ("un deux trois", "one")]    # 2 ratio > 2.0
    pairs += [good[0], good[1], (good[2][0] + "  ", "\t" + good[2][1])]       # 3 duplicates (one after cleanup)
    result = prepare(pairs, cfg(max_words=10, max_length_ratio=2.0, train_size=20, dev_size=5, test_size=5))
    assert result.counts == {
        "input": 42, "after_empty": 39, "after_length": 37, "after_chars": 35, "after_ratio": 33,
        "after_dedup": 30, "train": 20, "dev": 5, "test": 5,
    }
    assert list(result.counts) == ["input", "after_empty", "after_length", "after_chars", "after_ratio",
                                   "after_dedup", "train", "dev", "test"]  # the filter order
    assert {len(v) for v in result.splits.values()} == {20, 5}


def test_a_long_line_without_spaces_is_dropped_by_characters():
    # one "word" of 5 MB passes the word filter; it must not reach the tokenizer and training
    pairs = synthetic_pairs(10, seed=6) + [("a" * 5_000_000, "b")]
    result = prepare(pairs, cfg(max_words=50, max_length_ratio=1e9, train_size=8, dev_size=1, test_size=1))
    assert (result.counts["after_length"], result.counts["after_chars"]) == (11, 10)
    assert all(len(s) < 1000 for name in SPLITS for s, _ in result.splits[name])


def test_character_bound_follows_max_words_and_keeps_its_boundary():
    limit = 4 * CHARS_PER_WORD
    pairs = [("a" * limit, "b" * limit), ("a" * (limit + 1), "b")] + synthetic_pairs(4, seed=2, max_words=4)
    result = prepare(pairs, cfg(max_words=4, max_length_ratio=1e9, train_size=3, dev_size=1, test_size=1))
    assert result.counts["after_chars"] == 5  # exactly max_words × CHARS_PER_WORD characters is kept


def test_ratio_boundary_is_kept():
    pairs = [("a b", "one two three four")] + synthetic_pairs(4, seed=2)  # ratio exactly 2.0
    result = prepare(pairs, cfg(max_length_ratio=2.0, max_words=50, train_size=3, dev_size=1, test_size=1))
    assert result.counts["after_ratio"] == 5


def test_deduplicate_off_keeps_duplicates():
    pairs = synthetic_pairs(10, seed=4) * 2
    assert prepare(pairs, cfg(deduplicate=False, train_size=16, dev_size=2, test_size=2)).counts["after_dedup"] == 20
    assert prepare(pairs, cfg(deduplicate=True, train_size=6, dev_size=2, test_size=2)).counts["after_dedup"] == 10


# --- splitting ----------------------------------------------------------------------------


def test_split_is_disjoint_and_sized():
    pairs = synthetic_pairs(100, seed=7)
    result = prepare(pairs, cfg(train_size=70, dev_size=10, test_size=15))
    train, dev, test = (set(result.splits[n]) for n in SPLITS)
    assert (len(train), len(dev), len(test)) == (70, 10, 15)
    assert not train & test and not train & dev and not dev & test
    assert (train | dev | test) <= set(pairs)


def test_split_same_seed_same_result_different_seed_different_result():
    pairs = synthetic_pairs(100, seed=7)
    a = prepare(pairs, cfg(seed=1)).splits
    b = prepare(list(pairs), cfg(seed=1)).splits
    c = prepare(pairs, cfg(seed=2)).splits
    assert a == b
    assert a["test"] != c["test"] and a["train"] != c["train"]


def test_growing_train_never_moves_test_pairs():
    pairs = synthetic_pairs(100, seed=8)
    small = prepare(pairs, cfg(train_size=20)).splits
    large = prepare(pairs, cfg(train_size=80)).splits
    assert small["test"] == large["test"] and small["dev"] == large["dev"]
    assert set(small["train"]) <= set(large["train"])


def test_too_few_pairs_is_a_user_error():
    pairs = synthetic_pairs(50, seed=9) + [("", "x")] * 5
    with pytest.raises(UserError) as info:
        prepare(pairs, cfg(train_size=40, dev_size=5, test_size=10))
    assert "asks for 55 pairs" in str(info.value) and "only 50 survive" in str(info.value)


def test_cli_split_is_deterministic_and_test_is_not_in_train(tmp_path):
    raw = tmp_path / "raw"
    pairs = synthetic_pairs(120, seed=11)
    # a duplicate must not end up on both sides of the split
    write_pair_files(raw, pairs + pairs[:20])
    sizes = dict(train_size=80, dev_size=15, test_size=20, seed=3)
    outputs = []
    for run in ("a", "b"):
        out, metrics = tmp_path / run / "prepared", tmp_path / run / "prepare.json"
        result = run_prepare_cli(tmp_path, raw, out, metrics, **sizes)
        assert result.returncode == 0, result.stderr
        outputs.append((out, metrics))
    (out_a, metrics_a), (out_b, metrics_b) = outputs
    for name in SPLITS:
        for side in ("src", "tgt"):
            assert (out_a / f"{name}.{side}").read_bytes() == (out_b / f"{name}.{side}").read_bytes()
    assert metrics_a.read_bytes() == metrics_b.read_bytes()
    counts = json.loads(metrics_a.read_text())
    assert counts["input"] == 140 and counts["after_dedup"] == 120
    assert (counts["train"], counts["dev"], counts["test"]) == (80, 15, 20)

    split = {name: read_aligned(out_a / f"{name}.src", out_a / f"{name}.tgt") for name in SPLITS}
    assert len(split["train"]) == 80 and len(split["test"]) == 20
    assert not set(split["test"]) & set(split["train"])
    assert not set(split["dev"]) & set(split["train"])
    assert set(split["train"]) | set(split["test"]) <= set(pairs)

    # another seed, another split
    out_c = tmp_path / "c" / "prepared"
    result = run_prepare_cli(tmp_path, raw, out_c, tmp_path / "c" / "prepare.json", **(sizes | {"seed": 4}))
    assert result.returncode == 0, result.stderr
    assert (out_c / "test.src").read_bytes() != (out_a / "test.src").read_bytes()


def test_cli_too_few_pairs_exits_cleanly(tmp_path):
    raw = tmp_path / "raw"
    write_pair_files(raw, synthetic_pairs(30, seed=12))
    out, metrics = tmp_path / "prepared", tmp_path / "prepare.json"
    result = run_prepare_cli(tmp_path, raw, out, metrics, train_size=30, dev_size=5, test_size=5)
    assert result.returncode == 1
    assert "only 30 survive" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists() and not metrics.exists()
