"""Corpus sources: the official EuroParl archive (over a loopback server), the bundled sample, local files."""

from __future__ import annotations

import gzip
import json
import shutil

import pytest

from conftest import (BUNDLED, BUNDLED_EN, BUNDLED_FR, europarl_tgz, make_bundled, sha256_bytes,
                      write_text_lines)
from vae import UserError
from vae.config import DownloadConfig
from vae.corpus import europarl_pair, fetch, sha256_of

ARCHIVE = "europarl-v7.fr-en.tgz"


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
    out, cache = tmp_path / "raw", tmp_path / "cache"
    cfg = DownloadConfig(source="europarl", europarl_url=f"http://127.0.0.1:{dead_port}/{{pair}}.tgz")
    with pytest.raises(UserError) as info:
        fetch(cfg, out, cache)
    message = str(info.value)
    assert f"127.0.0.1:{dead_port}/fr-en.tgz" in message
    assert "bundled" in message
    assert not out.exists() or list(out.iterdir()) == []
    assert not (cache / ARCHIVE).exists()


def test_europarl_http_error_is_reported(tmp_path, http_server):
    with pytest.raises(UserError, match="HTTP 404"):
        fetch(europarl_cfg(http_server.base), tmp_path / "raw", tmp_path / "cache")
    assert not (tmp_path / "raw" / "src.txt").exists()


def test_europarl_resumes_partial_download_with_range(tmp_path, http_server, archive, tiny_pairs):
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
