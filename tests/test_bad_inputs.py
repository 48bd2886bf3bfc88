"""Bad inputs through the data stages, as a user meets them: one clear line, exit 1, nothing changed.

Each case runs `python -m stages.download` or `python -m stages.prepare` in a subprocess, after a
good run of both on a tiny corpus written here. It must exit 1 with one `error:` line that names the
problem, print no traceback, and leave the previous good outputs (data/raw, the download cache,
data/prepared, results/prepare.json) byte for byte as they were, with no temporary file beside them.
The last tests drive `vae.cli.run` with a fake `main` for what no input file provokes on demand:
Ctrl-C, a full disk, a denied permission, a bug.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import re
import socket
from pathlib import Path

import pytest
import yaml

from conftest import LoopbackServer, europarl_tgz, run_stage, synthetic_pairs, write_text_lines
from vae import UserError, cli

PAIRS = synthetic_pairs(60, seed=21)
SIZES = {"train_size": 40, "dev_size": 5, "test_size": 5}
HTML = b"<!DOCTYPE html>\n<html><head><title>Please log in</title></head><body>Wi-Fi</body></html>\n"


class Workspace:
    """A project folder with good outputs from both stages, the inputs of every bad case, and a server."""

    def __init__(self, root: Path, server: LoopbackServer, dead_port: int):
        self.root, self.server, self.dead_port = root, server, dead_port
        self.corpus = root / "data" / "local"  # where local corpora belong (a dependency of download)
        self.src = write_text_lines(self.corpus / "good.fr", [s for s, _ in PAIRS])
        self.tgt = write_text_lines(self.corpus / "good.en", [t for _, t in PAIRS])
        whole = gzip.compress(self.tgt.read_bytes(), mtime=0)
        (self.corpus / "truncated.en.gz").write_bytes(whole[: len(whole) // 2])
        (self.corpus / "corrupt.en.gz").write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 6 + b"this is not deflate")
        (self.corpus / "random.en.gz").write_bytes(hashlib.sha256(b"seed").digest() * 64)  # not gzip at all
        archive = europarl_tgz(PAIRS)
        server.files.update({"/html/fr-en.tgz": HTML, "/good/fr-en.tgz": archive,
                             "/cut/fr-en.tgz": archive[: len(archive) // 2]})
        (root / "data" / "downloads").mkdir(parents=True)
        (root / "blocker").write_text("a file where a folder is expected\n")

    def local(self, **download) -> dict:
        return {"download": {"source": "local", "local_src": str(self.src), "local_tgt": str(self.tgt)} | download,
                "prepare": SIZES}

    def europarl(self, path: str, **download) -> dict:
        return {"download": {"source": "europarl", "europarl_url": f"{self.server.base}/{path}/{{pair}}.tgz"}
                | download}

    def raw(self, name: str, src: bytes, tgt: bytes) -> Path:
        folder = self.root / "bad-raw" / name
        folder.mkdir(parents=True)
        (folder / "src.txt").write_bytes(src)
        (folder / "tgt.txt").write_bytes(tgt)
        return folder

    def params(self, name: str, content) -> Path:
        path = self.root / "params" / f"{name}.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content), encoding="utf-8")
        return path

    def download(self, params: Path):
        return run_stage("download", "--params", str(params), "--out", "data/raw", "--cache", "data/downloads",
                         cwd=self.root)

    def prepare(self, params: Path, raw: str | Path = "data/raw", out: str | Path = "data/prepared"):
        return run_stage("prepare", "--params", str(params), "--raw", str(raw), "--out", str(out),
                         "--metrics", "results/prepare.json", cwd=self.root)

    def outputs(self) -> dict[str, str]:
        """Every entry under data/ and results/ (hidden ones too) with the sha256 of each file."""
        return {p.relative_to(self.root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
                for top in ("data", "results") for p in sorted((self.root / top).rglob("*"))}


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    server = LoopbackServer()
    server.thread.start()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # bound, never listening: refused at once
    sock.bind(("127.0.0.1", 0))
    try:
        ws = Workspace(tmp_path_factory.mktemp("project"), server, sock.getsockname()[1])
        good = ws.params("good", ws.local())
        for result in (ws.download(good), ws.prepare(good)):
            assert result.returncode == 0, result.stderr
        assert (ws.root / "data/prepared/train.src").is_file() and (ws.root / "results/prepare.json").is_file()
        yield ws
    finally:
        sock.close()
        server.httpd.shutdown()
        server.httpd.server_close()


def with_line(text: bytes, index: int, line: bytes) -> bytes:
    lines = text.split(b"\n")
    lines[index] = line
    return b"\n".join(lines)


GOOD_SRC = "".join(s + "\n" for s, _ in PAIRS).encode()
GOOD_TGT = "".join(t + "\n" for _, t in PAIRS).encode()

# (case, stage, params (a mapping from the workspace, or YAML text), bad raw folder or None, what the message says)
CASES = [
    # --- download: the corpus ---
    ("missing-local-file", "download", lambda ws: ws.local(local_tgt=str(ws.corpus / "absent.en")), None,
     r"'download\.local_tgt': no such file: .*absent\.en"),
    ("local-file-not-set", "download", lambda ws: ws.local(local_src=""), None,
     r"'download\.local_src' must name a file"),
    ("truncated-gzip-local-file", "download", lambda ws: ws.local(local_tgt=str(ws.corpus / "truncated.en.gz")),
     None, r"'download\.local_tgt': .*truncated\.en\.gz is truncated or corrupt"),
    ("corrupt-gzip-local-file", "download", lambda ws: ws.local(local_tgt=str(ws.corpus / "corrupt.en.gz")),
     None, r"corrupt\.en\.gz is truncated or corrupt"),
    ("html-instead-of-archive", "download", lambda ws: ws.europarl("html"), None,
     r"received an HTML page .*Nothing was cached.*download\.source: bundled.*download\.source: local"),
    ("truncated-archive-download", "download", lambda ws: ws.europarl("cut"), None,
     r"received gzip data that is truncated"),
    ("bad-sha256", "download", lambda ws: ws.europarl("good", europarl_sha256="0" * 64), None,
     r"checksum mismatch .*expected 0{64}, got [0-9a-f]{64}"),
    ("http-404", "download", lambda ws: ws.europarl("nowhere"), None, r"HTTP 404"),
    ("server-unreachable", "download",
     lambda ws: {"download": {"source": "europarl", "europarl_url": f"http://127.0.0.1:{ws.dead_port}/{{pair}}.tgz"}},
     None, r"could not reach .*download\.source: bundled"),
    ("unknown-url-placeholder", "download",
     lambda ws: {"download": {"source": "europarl", "europarl_url": "https://www.statmt.org/europarl/v7/{pairr}.tgz"}},
     None, r"'download\.europarl_url' .*unknown placeholder \{pairr\}; the only placeholder is \{pair\}"),
    ("url-without-scheme", "download",
     lambda ws: {"download": {"source": "europarl", "europarl_url": "www.statmt.org/europarl/v7/{pair}.tgz"}},
     None, r"is not a URL"),
    ("pair-without-english", "download", lambda ws: ws.europarl("good", tgt_lang="de"), None, r"pairs each language with English"),
    ("random-bytes-named-gz", "download", lambda ws: ws.local(local_tgt=str(ws.corpus / "random.en.gz")), None,
     r"'download\.local_tgt': .*random\.en\.gz is not a gzip file \(its name ends in \.gz, but it starts with the "
     r"bytes 19 b2 58 56"),
    ("local-file-is-a-directory", "download", lambda ws: ws.local(local_src=str(ws.corpus)), None,
     r"'download\.local_src': .*data/local is a directory; name a file"),
    ("sha256-pin-not-a-digest", "download", lambda ws: ws.europarl("good", europarl_sha256="deadbeef"), None,
     r"'download\.europarl_sha256': must be a sha256 digest \(64 hexadecimal characters\) or empty, got 'deadbeef'"),
    ("bundled-dir-missing", "download", lambda ws: {"download": {"bundled_dir": str(ws.root / "nowhere")}},
     None, r"SHA256SUMS is missing"),
    # --- the parameters file (read by every stage) ---
    ("unknown-key", "download", lambda ws: {"download": {"sourc": "local"}}, None,
     r"unknown key 'download\.sourc' \(did you mean 'source'\?\)"),
    ("wrong-type", "download", lambda ws: {"download": {"europarl_url": 5}}, None,
     r"'download\.europarl_url' must be a string, got 5"),
    ("yaml-syntax-error", "download", lambda ws: "download:\n  source: local\n   local_src: x\n", None,
     r"line 3, column \d+: not valid YAML: mapping values are not allowed"),
    ("section-given-twice", "download",
     lambda ws: "download:\n  source: local\nprepare: {}\ndownload:\n  source: bundled\n", None, r"line 4, column 1: not valid YAML: the key 'download' appears twice in one mapping, on lines 1 and 4"),
    ("emptied-params-file", "download", lambda ws: "", None,
     r"params/emptied-params-file\.yaml: the parameters file is empty"),
    ("variant-name-with-a-dot", "download", lambda ws: {"variants": {"gumbel.v2": {"attention": "gumbel"}}}, None,
     r"'variants\.gumbel\.v2': a name may hold only letters, digits, '-' and '_'"),
    ("params-not-a-mapping", "download", lambda ws: "- download\n- prepare\n", None, r"expected a mapping, got list"),
    ("missing-params-file", "download", lambda ws: None, None, r"no such parameters file"),
    # --- prepare: the raw corpus ---
    ("misaligned-files", "prepare", lambda ws: {"prepare": SIZES},
     lambda ws: ws.raw("misaligned", GOOD_SRC, GOOD_TGT.split(b"\n", 3)[3]),
     r"not aligned: .*has 60 lines but .*has 57"),
    ("empty-file", "prepare", lambda ws: {"prepare": SIZES}, lambda ws: ws.raw("empty", GOOD_SRC, b""),
     r"tgt\.txt: the file is empty"),
    ("invalid-utf8", "prepare", lambda ws: {"prepare": SIZES},
     lambda ws: ws.raw("latin1", with_line(GOOD_SRC, 1, "d\u00e9bat".encode("latin-1")), GOOD_TGT),
     r"src\.txt, line 2: not valid UTF-8"),
    ("blank-only-corpus", "prepare", lambda ws: {"prepare": SIZES},
     lambda ws: ws.raw("blank", b"\n" * 60, b" \r\n" * 60),
     r"the corpus has no usable lines: each of its 60 pair\(s\) is blank"),
    ("cr-only-corpus", "prepare", lambda ws: {"prepare": SIZES}, lambda ws: ws.raw("cr", b"\r" * 60, b"\r" * 60),
     r"the corpus has no usable lines"),
    ("utf16-corpus", "prepare", lambda ws: {"prepare": SIZES},
     lambda ws: ws.raw("utf16", GOOD_SRC.decode().encode("utf-16"), GOOD_TGT),
     r"src\.txt: looks like UTF-16 \(it has a UTF-16 byte-order mark\), not UTF-8; convert it"),
    ("missing-raw-file", "prepare", lambda ws: {"prepare": SIZES}, lambda ws: ws.root / "bad-raw" / "absent",
     r"src\.txt: no such file"),
    ("split-larger-than-corpus", "prepare", lambda ws: {"prepare": SIZES | {"train_size": 1000}}, None,
     r"asks for 1010 pairs .*only 60 survive"),
    # 61 pairs, one a 100,000-character "word": it is dropped by characters, so 61 are too many
    ("spaceless-line-dropped", "prepare", lambda ws: {"prepare": SIZES | {"train_size": 51}},
     lambda ws: ws.raw("long", b"x" * 100_000 + b"\n" + GOOD_SRC, b"y\n" + GOOD_TGT),
     r"asks for 61 pairs .*only 60 survive"),
    ("wrong-type-in-prepare", "prepare", lambda ws: {"prepare": SIZES | {"train_size": "many"}}, None,
     r"'prepare\.train_size' must be an integer, got 'many'"),
    ("out-of-range", "prepare", lambda ws: {"prepare": SIZES | {"max_words": 0}}, None,
     r"'prepare\.max_words' must be >= 1, got 0"),
    ("unknown-unicode-form", "prepare", lambda ws: {"prepare": SIZES | {"unicode_form": "nfc"}}, None,
     r"'prepare\.unicode_form' must be one of \['NFC', 'NFKC', 'NFD', 'NFKD'\], got 'nfc'"),
    ("output-folder-under-a-file", "prepare", lambda ws: {"prepare": SIZES}, None, r"blocker: File exists \(EEXIST\)"),
]
MULTI_LINE: set[str] = set()  # cases allowed more than one error line


@pytest.mark.parametrize("case, stage, make_params, make_raw, expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_one_clear_error_and_changes_nothing(ws, case, stage, make_params, make_raw, expected,
                                                            no_traceback_variable):
    content = make_params(ws)
    params = ws.params(case, content) if content is not None else ws.root / "params" / "absent.yaml"
    raw = make_raw(ws) if make_raw else "data/raw"
    before = ws.outputs()

    if stage == "download":
        result = ws.download(params)
    else:
        out = ws.root / "blocker" / "prepared" if case == "output-folder-under-a-file" else "data/prepared"
        result = ws.prepare(params, raw, out)

    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[0].startswith("error: "), result.stderr
    assert sum(line.startswith("error:") for line in lines) == 1, result.stderr
    if case not in MULTI_LINE:
        assert len(lines) == 1, result.stderr
    assert re.search(expected, result.stderr, re.S), result.stderr
    assert ws.outputs() == before  # the previous good outputs, byte for byte, and nothing beside them


# --- vae.cli.run: one error path, driven by a fake `main` ---------------------------------


def run_fake(tmp_path, raising: BaseException, params: str = "{}\n") -> int:
    """cli.run with a `main` that raises `raising`; return the exit code."""
    path = tmp_path / "params.yaml"
    path.write_text(params, encoding="utf-8")

    def main(args, params):
        raise raising

    with pytest.raises(SystemExit) as info:
        cli.run(main, cli.parser("fake stage"), ["--params", str(path)])
    return info.value.code


def one_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    return lines[0]


@pytest.fixture
def no_traceback_variable(monkeypatch):
    monkeypatch.delenv(cli.TRACEBACK_VARIABLE, raising=False)


def test_user_error_is_one_line_and_exit_1(tmp_path, capsys, no_traceback_variable):
    assert run_fake(tmp_path, UserError("prepare: the split asks for [more] pairs")) == 1
    assert one_line(capsys) == "error: prepare: the split asks for [more] pairs"  # rich markup not eaten


def test_ctrl_c_is_interrupted_and_exit_130(tmp_path, capsys, no_traceback_variable):
    assert run_fake(tmp_path, KeyboardInterrupt()) == 130
    assert one_line(capsys) == "interrupted"


def test_full_disk_names_the_file(tmp_path, capsys, no_traceback_variable):
    target = str(tmp_path / "data" / "raw")
    assert run_fake(tmp_path, OSError(errno.ENOSPC, "No space left on device", target)) == 1
    line = one_line(capsys)
    assert line.startswith(f"error: {target}: No space left on device (ENOSPC)")
    assert "free some disk space" in line


def test_permission_denied_names_the_file(tmp_path, capsys, no_traceback_variable):
    target = str(tmp_path / "results" / "prepare.json")
    assert run_fake(tmp_path, PermissionError(errno.EACCES, "Permission denied", target)) == 1
    line = one_line(capsys)
    assert line.startswith(f"error: {target}: Permission denied (EACCES)") and "permissions" in line


def test_unexpected_exception_is_an_internal_error_with_a_hint(tmp_path, capsys, no_traceback_variable):
    assert run_fake(tmp_path, ValueError("boom\nsecond line")) == 1
    assert one_line(capsys) == ("internal error: ValueError: boom second line "
                                "(set VAE_TRACEBACK=1 to see the traceback)")


def test_traceback_variable_re_raises(tmp_path, monkeypatch):
    monkeypatch.setenv(cli.TRACEBACK_VARIABLE, "1")
    path = tmp_path / "params.yaml"
    path.write_text("{}\n", encoding="utf-8")
    for raising in (ValueError("boom"), OSError(errno.ENOSPC, "No space left on device", "x"), UserError("bad")):
        def main(args, params, raising=raising):
            raise raising

        with pytest.raises(type(raising)):
            cli.run(main, cli.parser("fake stage"), ["--params", str(path)])


def test_traceback_variable_set_to_0_keeps_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(cli.TRACEBACK_VARIABLE, "0")
    assert run_fake(tmp_path, RuntimeError("boom")) == 1
    assert one_line(capsys).startswith("internal error: RuntimeError: boom")


def test_yaml_syntax_error_is_one_line(tmp_path, capsys, no_traceback_variable):
    assert run_fake(tmp_path, AssertionError("main must not run"), params="download:\n  a: 1\n   b: 2\n") == 1
    assert "line 3" in one_line(capsys)
