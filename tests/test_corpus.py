"""Corpus sources: the official EuroParl archive (over a loopback server), the bundled sample, local files."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from conftest import (BUNDLED, BUNDLED_EN, BUNDLED_FR, europarl_tgz, make_bundled, sha256_bytes,
                      write_text_lines)
from vae import UserError
from vae.config import DownloadConfig
from vae.corpus import cached_archive, download, europarl_pair, fetch, sha256_of


def archive_name(base: str) -> str:
    """The cache's name for the fr-en archive served under `base`."""
    return cached_archive(Path("."), f"{base}/fr-en.tgz", "fr-en").name


def lines_of(pairs, side):
    return "".join(p[side] + "\n" for p in pairs)


def europarl_cfg(url_base: str, **overrides) -> DownloadConfig:
    return DownloadConfig(source="europarl", europarl_url=url_base + "/{pair}.tgz", **overrides)


@pytest.fixture
def archive(http_server, tiny_pairs):
    """The tiny official-layout archive, served at /fr-en.tgz."""
    blob = europarl_tgz(tiny_pairs)
    http_server.files["/fr-en.tgz"] = blob
    return blob


# --- europarl -----------------------------------------------------------------------------


def test_europarl_download_success(tmp_path, http_server, archive, tiny_pairs):
    ARCHIVE = archive_name(http_server.base)
    out, cache = tmp_path / "raw", tmp_path / "cache"
    cfg = europarl_cfg(http_server.base, europarl_sha256=sha256_bytes(archive))
    manifest = fetch(cfg, out, cache)

    assert (out / "src.txt").read_text(encoding="utf-8") == lines_of(tiny_pairs, 0)  # fr
    assert (out / "tgt.txt").read_text(encoding="utf-8") == lines_of(tiny_pairs, 1)  # en
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == manifest
    assert manifest["source"] == "europarl"
    assert manifest["url"] == f"{http_server.base}/fr-en.tgz"
    assert manifest["files"] == {str(cache / ARCHIVE): sha256_bytes(archive)}
    assert (cache / ARCHIVE).read_bytes() == archive
    assert not (cache / (ARCHIVE + ".part")).exists()
    assert [r["path"] for r in http_server.requests] == ["/fr-en.tgz"]
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "src.txt", "tgt.txt"]  # no temp files


def test_europarl_swapped_direction_reads_the_right_members(tmp_path, http_server, archive, tiny_pairs):
    fetch(DownloadConfig(source="europarl", src_lang="en", tgt_lang="fr",
                         europarl_url=http_server.base + "/{pair}.tgz"), tmp_path / "raw", tmp_path / "cache")
    assert (tmp_path / "raw" / "src.txt").read_text(encoding="utf-8") == lines_of(tiny_pairs, 1)
    assert (tmp_path / "raw" / "tgt.txt").read_text(encoding="utf-8") == lines_of(tiny_pairs, 0)


def test_europarl_cached_archive_is_not_downloaded_again(tmp_path, http_server, archive):
    cfg = europarl_cfg(http_server.base)
    fetch(cfg, tmp_path / "raw1", tmp_path / "cache")
    fetch(cfg, tmp_path / "raw2", tmp_path / "cache")
    assert len(http_server.requests) == 1
    assert (tmp_path / "raw1" / "src.txt").read_bytes() == (tmp_path / "raw2" / "src.txt").read_bytes()


def test_europarl_checksum_mismatch(tmp_path, http_server, archive):
    out, cache = tmp_path / "raw", tmp_path / "cache"
    wrong = "0" * 64
    with pytest.raises(UserError) as info:
        fetch(europarl_cfg(http_server.base, europarl_sha256=wrong), out, cache)
    message = str(info.value)
    assert "checksum mismatch" in message
    assert wrong in message and sha256_bytes(archive) in message
    assert not (out / "src.txt").exists() and not (out / "tgt.txt").exists()
    assert not (out / "manifest.json").exists()
    assert list(cache.iterdir()) == []  # neither the archive nor a .part is kept


def test_europarl_unreachable_points_to_bundled(tmp_path, dead_port):
    ARCHIVE = archive_name(f"http://127.0.0.1:{dead_port}")
    out, cache = tmp_path / "raw", tmp_path / "cache"
    cfg = DownloadConfig(source="europarl", europarl_url=f"http://127.0.0.1:{dead_port}/{{pair}}.tgz")
    with pytest.raises(UserError) as info:
        fetch(cfg, out, cache)
    message = str(info.value)
    assert f"127.0.0.1:{dead_port}/fr-en.tgz" in message
    assert "bundled" in message
    assert not out.exists() or list(out.iterdir()) == []
    assert not (cache / ARCHIVE).exists()


def test_another_url_is_fetched_not_answered_from_the_cache(tmp_path, http_server, archive):
    # the cache used to be keyed by the language pair: a moved (here: 404) URL exited 0 on the old
    # archive, while the manifest recorded the new URL
    cache = tmp_path / "cache"
    fetch(europarl_cfg(http_server.base), tmp_path / "raw", cache)
    with pytest.raises(UserError, match=r"download of .*/moved/fr-en\.tgz failed: HTTP 404"):
        fetch(europarl_cfg(http_server.base + "/moved"), tmp_path / "raw", cache)
    assert [r["path"] for r in http_server.requests] == ["/fr-en.tgz", "/moved/fr-en.tgz"]
    http_server.files["/moved/fr-en.tgz"] = archive
    manifest = fetch(europarl_cfg(http_server.base + "/moved"), tmp_path / "raw", cache)
    assert manifest["url"] == f"{http_server.base}/moved/fr-en.tgz"
    assert len(list(cache.iterdir())) == 2  # one archive per URL


def test_a_pin_in_capitals_matches(tmp_path, http_server, archive):
    fetch(europarl_cfg(http_server.base, europarl_sha256=sha256_bytes(archive).upper()), tmp_path / "raw",
          tmp_path / "cache")


def test_europarl_http_error_is_reported(tmp_path, http_server):
    with pytest.raises(UserError, match="HTTP 404"):
        fetch(europarl_cfg(http_server.base), tmp_path / "raw", tmp_path / "cache")
    assert not (tmp_path / "raw" / "src.txt").exists()


def test_europarl_resumes_partial_download_with_range(tmp_path, http_server, archive, tiny_pairs):
    ARCHIVE = archive_name(http_server.base)
    cache = tmp_path / "cache"
    cache.mkdir()
    half = len(archive) // 2
    (cache / (ARCHIVE + ".part")).write_bytes(archive[:half])

    fetch(europarl_cfg(http_server.base, europarl_sha256=sha256_bytes(archive)), tmp_path / "raw", cache)

    assert http_server.requests == [{"path": "/fr-en.tgz", "range": f"bytes={half}-"}]
    assert http_server.responses == [206]
    assert (cache / ARCHIVE).read_bytes() == archive
    assert not (cache / (ARCHIVE + ".part")).exists()
    assert (tmp_path / "raw" / "src.txt").read_text(encoding="utf-8") == lines_of(tiny_pairs, 0)


def test_europarl_restarts_when_server_ignores_range(tmp_path, http_server, archive):
    ARCHIVE = archive_name(http_server.base)
    http_server.honour_range = False
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / (ARCHIVE + ".part")).write_bytes(archive[: len(archive) // 2])

    fetch(europarl_cfg(http_server.base, europarl_sha256=sha256_bytes(archive)), tmp_path / "raw", cache)

    assert http_server.requests[0]["range"] is not None and http_server.responses == [200]
    assert (cache / ARCHIVE).read_bytes() == archive  # not the half glued to the whole


def test_europarl_pair_naming():
    assert europarl_pair("fr", "en") == "fr-en"
    assert europarl_pair("en", "de") == "de-en"
    with pytest.raises(UserError, match="English"):
        europarl_pair("fr", "de")


# --- bundled ------------------------------------------------------------------------------


def test_repo_bundled_sample_verifies(tmp_path):
    manifest = fetch(DownloadConfig(source="bundled", bundled_dir=str(BUNDLED)), tmp_path / "raw", tmp_path / "c")
    assert manifest["source"] == "bundled"
    assert set(manifest["files"].values()) == {sha256_of(BUNDLED_FR), sha256_of(BUNDLED_EN)}
    with open(tmp_path / "raw" / "src.txt", "rb") as f:
        n_src = sum(1 for _ in f)
    with open(tmp_path / "raw" / "tgt.txt", "rb") as f:
        n_tgt = sum(1 for _ in f)
    assert n_src == n_tgt == 100_000
    with gzip.open(BUNDLED_FR, "rt", encoding="utf-8") as f:
        first_fr = f.readline()
    with open(tmp_path / "raw" / "src.txt", encoding="utf-8") as f:
        assert f.readline() == first_fr  # src is French


def test_bundled_tiny_copy(tmp_path, tiny_pairs):
    root = make_bundled(tmp_path / "bundle", tiny_pairs)
    out = tmp_path / "raw"
    manifest = fetch(DownloadConfig(source="bundled", bundled_dir=str(root)), out, tmp_path / "cache")
    assert (out / "src.txt").read_text(encoding="utf-8") == lines_of(tiny_pairs, 0)
    assert (out / "tgt.txt").read_text(encoding="utf-8") == lines_of(tiny_pairs, 1)
    assert json.loads((out / "manifest.json").read_text()) == manifest
    fr = root / "europarl-v7.fr-en.tiny.fr.gz"
    assert manifest["files"][str(fr)] == sha256_of(fr)
    assert not (tmp_path / "cache").exists()  # no network, no cache


def test_bundled_tampered_file_is_named(tmp_path, tiny_pairs):
    root = make_bundled(tmp_path / "bundle", tiny_pairs)
    victim = root / "europarl-v7.fr-en.tiny.en.gz"
    data = gzip.decompress(victim.read_bytes()).replace(b"the", b"teh", 1)
    victim.write_bytes(gzip.compress(data))
    out = tmp_path / "raw"
    with pytest.raises(UserError) as info:
        fetch(DownloadConfig(source="bundled", bundled_dir=str(root)), out, tmp_path / "cache")
    assert str(victim) in str(info.value)
    assert "checksum mismatch" in str(info.value)
    assert not (out / "src.txt").exists() and not (out / "tgt.txt").exists()


def test_bundled_missing_file_and_sums(tmp_path, tiny_pairs):
    root = make_bundled(tmp_path / "bundle", tiny_pairs)
    (root / "europarl-v7.fr-en.tiny.fr.gz").unlink()
    with pytest.raises(UserError, match=r"europarl-v7\.fr-en\.tiny\.fr\.gz.*missing"):
        fetch(DownloadConfig(bundled_dir=str(root)), tmp_path / "raw", tmp_path / "cache")
    (root / "SHA256SUMS").unlink()
    with pytest.raises(UserError, match="SHA256SUMS is missing"):
        fetch(DownloadConfig(bundled_dir=str(root)), tmp_path / "raw", tmp_path / "cache")


def test_bundled_language_not_present(tmp_path, tiny_pairs):
    root = make_bundled(tmp_path / "bundle", tiny_pairs)
    with pytest.raises(UserError, match="language 'de'"):
        fetch(DownloadConfig(bundled_dir=str(root), src_lang="de"), tmp_path / "raw", tmp_path / "cache")


def test_bundled_copy_of_repo_layout(tmp_path):
    # the repo's SHA256SUMS format (two spaces, bare names) parses; copying keeps it valid
    root = tmp_path / "copy"
    shutil.copytree(BUNDLED, root)
    (root / BUNDLED_FR.name).write_bytes(b"\x1f\x8b not really")
    with pytest.raises(UserError) as info:
        fetch(DownloadConfig(bundled_dir=str(root)), tmp_path / "raw", tmp_path / "cache")
    assert BUNDLED_FR.name in str(info.value)


# --- local --------------------------------------------------------------------------------


def test_local_plain_and_gzipped(tmp_path, tiny_pairs):
    src = write_text_lines(tmp_path / "in" / "corpus.fr", [s for s, _ in tiny_pairs])
    tgt = write_text_lines(tmp_path / "in" / "corpus.en.gz", [t for _, t in tiny_pairs], gz=True)
    out = tmp_path / "raw"
    manifest = fetch(DownloadConfig(source="local", local_src=str(src), local_tgt=str(tgt)), out, tmp_path / "cache")
    assert (out / "src.txt").read_text(encoding="utf-8") == lines_of(tiny_pairs, 0)
    assert (out / "tgt.txt").read_text(encoding="utf-8") == lines_of(tiny_pairs, 1)  # decompressed
    assert manifest["source"] == "local"
    assert manifest["files"] == {str(src): sha256_of(src), str(tgt): sha256_of(tgt)}


def test_local_requires_existing_files(tmp_path, tiny_pairs):
    src = write_text_lines(tmp_path / "corpus.fr", [s for s, _ in tiny_pairs])
    with pytest.raises(UserError, match=r"'download\.local_tgt' must name a file"):
        fetch(DownloadConfig(source="local", local_src=str(src)), tmp_path / "raw", tmp_path / "cache")
    with pytest.raises(UserError, match=r"'download\.local_tgt': no such file"):
        fetch(DownloadConfig(source="local", local_src=str(src), local_tgt=str(tmp_path / "nope.en")),
              tmp_path / "raw", tmp_path / "cache")


def test_local_directory_is_named_as_such(tmp_path, tiny_pairs):
    src = write_text_lines(tmp_path / "corpus.fr", [s for s, _ in tiny_pairs])
    (tmp_path / "folder.en").mkdir()
    with pytest.raises(UserError, match=r"'download\.local_tgt': .*folder\.en is a directory; name a file"):
        fetch(DownloadConfig(source="local", local_src=str(src), local_tgt=str(tmp_path / "folder.en")),
              tmp_path / "raw", tmp_path / "cache")


def test_local_gz_that_is_not_gzip_is_named_as_such(tmp_path, tiny_pairs):
    # random bytes named .gz used to be copied as text and then reported as bad UTF-8 by prepare
    src = write_text_lines(tmp_path / "corpus.fr", [s for s, _ in tiny_pairs])
    tgt = tmp_path / "corpus.en.gz"
    tgt.write_bytes(bytes(range(200, 256)) * 10)
    with pytest.raises(UserError, match=r"'download\.local_tgt': .*corpus\.en\.gz is not a gzip file .*c8 c9 ca"):
        fetch(DownloadConfig(source="local", local_src=str(src), local_tgt=str(tgt)), tmp_path / "raw", tmp_path / "c")
    assert not (tmp_path / "raw").exists()


# --- wrong or damaged bodies are never cached, data/raw is replaced as a whole ------------

HTML = b"<!DOCTYPE html>\n<html><head><title>Captive portal</title></head><body>Log in</body></html>\n"


def snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def good_raw(tmp_path, tiny_pairs):
    """A previous good data/raw, from the bundled source."""
    out = tmp_path / "raw"
    fetch(DownloadConfig(bundled_dir=str(make_bundled(tmp_path / "bundle", tiny_pairs))), out, tmp_path / "cache")
    return out, snapshot(out)


def assert_untouched(good_raw):
    out, before = good_raw
    assert snapshot(out) == before
    assert sorted(p.name for p in out.parent.iterdir() if p.name.startswith(".raw")) == []  # no temp folders


def test_html_instead_of_archive_is_not_cached(tmp_path, http_server, good_raw):
    http_server.files["/fr-en.tgz"] = HTML
    cache = tmp_path / "cache"
    with pytest.raises(UserError) as info:
        fetch(europarl_cfg(http_server.base), good_raw[0], cache)
    message = str(info.value)
    assert "received an HTML page" in message and f"{len(HTML)} bytes" in message and "<!DOCTYPE html>" in message
    assert "download.source: bundled" in message and "download.source: local" in message
    assert "\n" not in message
    assert not cache.exists() or list(cache.iterdir()) == []  # neither the archive nor a .part
    assert_untouched(good_raw)
    # the next run downloads again (nothing wrong was cached) and succeeds once the server is right
    http_server.files["/fr-en.tgz"] = europarl_tgz([("un", "one")])
    fetch(europarl_cfg(http_server.base), good_raw[0], cache)
    assert (good_raw[0] / "src.txt").read_text(encoding="utf-8") == "un\n"
    assert len(http_server.requests) == 2


def test_truncated_archive_is_not_cached(tmp_path, http_server, archive, good_raw):
    http_server.files["/fr-en.tgz"] = archive[: len(archive) // 2]  # complete transfer of a cut file
    cache = tmp_path / "cache"
    with pytest.raises(UserError, match="gzip data that is truncated"):
        fetch(europarl_cfg(http_server.base), good_raw[0], cache)
    assert list(cache.iterdir()) == []
    assert_untouched(good_raw)


def test_archive_without_the_pair_is_not_cached(tmp_path, http_server, tiny_pairs, good_raw):
    http_server.files["/fr-en.tgz"] = europarl_tgz(tiny_pairs, pair="de-en")
    cache = tmp_path / "cache"
    with pytest.raises(UserError) as info:
        fetch(europarl_cfg(http_server.base), good_raw[0], cache)
    assert "no member europarl-v7.fr-en.fr or europarl-v7.fr-en.en" in str(info.value)
    assert "europarl-v7.de-en.fr" in str(info.value)  # says what it holds instead
    assert list(cache.iterdir()) == []
    assert_untouched(good_raw)


def test_damaged_archive_already_in_the_cache_is_deleted(tmp_path, good_raw):
    ARCHIVE = archive_name("http://127.0.0.1:9")
    # an older version cached whatever came back; such a file must not fail every run after it
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / ARCHIVE).write_bytes(HTML)
    with pytest.raises(UserError) as info:
        fetch(DownloadConfig(source="europarl", europarl_url="http://127.0.0.1:9/{pair}.tgz"), good_raw[0], cache)
    assert f"cached archive {cache / ARCHIVE} is truncated or corrupt" in str(info.value)
    assert "run the stage again" in str(info.value)
    assert not (cache / ARCHIVE).exists()
    assert_untouched(good_raw)


def test_ctrl_c_while_checking_keeps_the_download_for_the_next_run(tmp_path, http_server, archive):
    ARCHIVE = archive_name(http_server.base)
    def interrupted(part):
        raise KeyboardInterrupt

    dest = tmp_path / "cache" / ARCHIVE
    with pytest.raises(KeyboardInterrupt):
        download(f"{http_server.base}/fr-en.tgz", dest, validate=interrupted)
    assert not dest.exists()
    assert (tmp_path / "cache" / (ARCHIVE + ".part")).read_bytes() == archive  # only a rejected body is deleted


@pytest.mark.parametrize("template, problem", [
    ("http://example.org/{pairr}.tgz", "unknown placeholder {pairr}"),
    ("http://example.org/{}.tgz", "not a valid template"),
    ("http://example.org/{pair.tgz", "not a valid template"),
    ("example.org/{pair}.tgz", "is not a URL"),
])
def test_bad_url_template_is_a_clear_error(tmp_path, template, problem):
    with pytest.raises(UserError) as info:
        fetch(DownloadConfig(source="europarl", europarl_url=template), tmp_path / "raw", tmp_path / "cache")
    assert problem in str(info.value) and "'download.europarl_url'" in str(info.value)
    assert not (tmp_path / "raw").exists() and not (tmp_path / "cache").exists()


def test_truncated_local_gzip_is_a_clear_error(tmp_path, tiny_pairs):
    src = write_text_lines(tmp_path / "in" / "corpus.fr", [s for s, _ in tiny_pairs])
    whole = write_text_lines(tmp_path / "in" / "corpus.en.gz", [t for _, t in tiny_pairs], gz=True).read_bytes()
    tgt = tmp_path / "in" / "corpus.en.gz"
    tgt.write_bytes(whole[: len(whole) - 12])  # the end of the deflate stream and the trailer are gone
    with pytest.raises(UserError) as info:
        fetch(DownloadConfig(source="local", local_src=str(src), local_tgt=str(tgt)), tmp_path / "raw", tmp_path / "c")
    assert f"'download.local_tgt': {tgt} is truncated or corrupt" in str(info.value)
    assert not (tmp_path / "raw").exists()


def test_a_failure_on_the_target_side_keeps_the_previous_raw_whole(tmp_path, tiny_pairs, good_raw):
    # the source side reads fine and would be new; the target side is damaged: nothing may change
    new = [(s + " encore", t + " again") for s, t in tiny_pairs]
    src = write_text_lines(tmp_path / "in" / "new.fr", [s for s, _ in new])
    tgt = tmp_path / "in" / "new.en.gz"
    tgt.write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 6 + b"not deflate at all")
    with pytest.raises(UserError, match="truncated or corrupt"):
        fetch(DownloadConfig(source="local", local_src=str(src), local_tgt=str(tgt)), good_raw[0], tmp_path / "c")
    assert_untouched(good_raw)
