"""Data roots: where corpus files are looked for, and checksum-verified download (file:// URLs only)."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest

from neuroscope.data import root as root_mod
from neuroscope.data.root import CorpusFile, data_roots, fetch, locate, sha256sum
from neuroscope.errors import DataError

RELPATH = "ud/tiny-ud-dev.conllu"
CONTENT = b"1\tHi\thi\tINTJ\tUH\t_\t0\troot\t_\t_\n\n"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """No $NEUROSCOPE_DATA, HOME and the default cache under tmp, and an empty working directory."""
    paths = {name: tmp_path / name for name in ("home", "cache", "cwd", "root", "env", "upstream")}
    for p in paths.values():
        p.mkdir()
    monkeypatch.delenv("NEUROSCOPE_DATA", raising=False)
    monkeypatch.setenv("HOME", str(paths["home"]))
    monkeypatch.setattr(root_mod, "DEFAULT_CACHE", paths["cache"])
    monkeypatch.chdir(paths["cwd"])  # relative corpus paths must not match files of the repo
    return paths


def put(folder: Path, relpath: str = RELPATH, content: bytes = CONTENT) -> Path:
    path = folder / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def upstream(isolated: dict[str, Path], content: bytes = CONTENT) -> tuple[str, str]:
    """A file:// URL serving `content`, and its sha256."""
    src = put(isolated["upstream"], "served.bin", content)
    return src.as_uri(), hashlib.sha256(content).hexdigest()


def all_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------- data_roots


def test_data_roots_order_and_dedup(isolated: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    assert data_roots() == [isolated["cache"].resolve()]
    assert data_roots(isolated["root"]) == [isolated["root"].resolve(), isolated["cache"].resolve()]
    monkeypatch.setenv("NEUROSCOPE_DATA", str(isolated["env"]))
    assert data_roots(str(isolated["root"])) == [p.resolve() for p in
                                                 (isolated["root"], isolated["env"], isolated["cache"])]
    assert data_roots(None) == [isolated["env"].resolve(), isolated["cache"].resolve()]
    # the same folder given twice is searched once
    assert data_roots(isolated["env"]) == [isolated["env"].resolve(), isolated["cache"].resolve()]
    monkeypatch.setenv("NEUROSCOPE_DATA", "")  # empty = unset
    assert data_roots() == [isolated["cache"].resolve()]


def test_default_cache_is_under_home(isolated: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(root_mod, "DEFAULT_CACHE", Path("~/.cache/neuroscope/data"))
    assert data_roots() == [(isolated["home"] / ".cache" / "neuroscope" / "data").resolve()]
    assert data_roots("~/corpora") == [(isolated["home"] / "corpora").resolve(),
                                       (isolated["home"] / ".cache" / "neuroscope" / "data").resolve()]


def test_sha256sum_known_value(tmp_path: Path) -> None:
    path = tmp_path / "abc.txt"
    path.write_bytes(b"abc")
    assert sha256sum(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert sha256sum(path, chunk=1) == sha256sum(path)


# ------------------------------------------------------------------------------------ locate


def test_locate_under_root_argument(isolated: dict[str, Path]) -> None:
    expected = put(isolated["root"])
    assert locate(RELPATH, isolated["root"]) == expected.resolve()
    assert locate(CorpusFile(RELPATH), str(isolated["root"])) == expected.resolve()


def test_locate_under_env_var(isolated: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    expected = put(isolated["env"])
    monkeypatch.setenv("NEUROSCOPE_DATA", str(isolated["env"]))
    assert locate(RELPATH) == expected.resolve()
    # a root argument without the file falls through to the environment variable
    assert locate(RELPATH, isolated["root"]) == expected.resolve()


def test_locate_root_argument_wins_over_env_var(isolated: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    in_root = put(isolated["root"], content=b"root")
    put(isolated["env"], content=b"env")
    monkeypatch.setenv("NEUROSCOPE_DATA", str(isolated["env"]))
    found = locate(RELPATH, isolated["root"])
    assert found == in_root.resolve() and found.read_bytes() == b"root"


def test_locate_in_default_cache(isolated: dict[str, Path]) -> None:
    expected = put(isolated["cache"])
    assert locate(RELPATH, isolated["root"]) == expected.resolve()


def test_locate_absolute_path_as_is(isolated: dict[str, Path], tmp_path: Path) -> None:
    elsewhere = put(tmp_path / "elsewhere", "my.conllu")
    assert locate(str(elsewhere), isolated["root"]) == elsewhere.resolve()
    assert locate(CorpusFile(str(elsewhere), url="file:///nowhere")) == elsewhere.resolve()


def test_locate_missing_absolute_path(isolated: dict[str, Path], tmp_path: Path) -> None:
    missing = tmp_path / "elsewhere" / "gone.conllu"
    with pytest.raises(DataError) as err:
        locate(str(missing), isolated["root"])
    assert str(err.value) == f"corpus file {missing} does not exist"


def test_locate_relative_to_working_directory(isolated: dict[str, Path]) -> None:
    here = put(isolated["cwd"], "local.conllu")
    assert locate("local.conllu", isolated["root"]) == here.resolve()


def test_missing_without_url_lists_paths_and_how_to_provide(isolated: dict[str, Path],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEUROSCOPE_DATA", str(isolated["env"]))
    with pytest.raises(DataError) as err:
        locate(RELPATH, isolated["root"])
    msg = str(err.value)
    assert msg.startswith(f"corpus file '{RELPATH}' not found. Paths tried:")
    for folder in ("root", "env", "cache"):
        assert f"  - {isolated[folder].resolve() / RELPATH}" in msg
    assert "data.root=<folder>" in msg and "NEUROSCOPE_DATA" in msg
    assert "download" not in msg  # no URL known: nothing to download
    assert all_files(isolated["root"]) == [] and all_files(isolated["cache"]) == []


def test_download_disabled_does_not_fetch(isolated: dict[str, Path]) -> None:
    url, sha = upstream(isolated)
    with pytest.raises(DataError) as err:
        locate(CorpusFile(RELPATH, url, sha), isolated["root"], download=False)
    assert f"download it from {url}" in str(err.value)
    assert not (isolated["root"] / RELPATH).exists()


# ---------------------------------------------------------------------------------- download


def test_download_with_correct_checksum(isolated: dict[str, Path]) -> None:
    url, sha = upstream(isolated)
    got = locate(CorpusFile(RELPATH, url, sha), isolated["root"])
    assert got == isolated["root"].resolve() / RELPATH
    assert got.read_bytes() == CONTENT and sha256sum(got) == sha
    assert all_files(isolated["root"]) == [got]  # no temp file left
    assert all_files(isolated["cache"]) == []
    # a second look-up finds the file without downloading (upstream gone)
    (isolated["upstream"] / "served.bin").unlink()
    assert locate(CorpusFile(RELPATH, url, sha), isolated["root"]) == got


def test_download_goes_to_env_root_without_root_argument(isolated: dict[str, Path],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    url, sha = upstream(isolated)
    monkeypatch.setenv("NEUROSCOPE_DATA", str(isolated["env"]))
    got = locate(CorpusFile(RELPATH, url, sha))
    assert got == isolated["env"].resolve() / RELPATH and got.read_bytes() == CONTENT


def test_download_goes_to_default_cache_without_other_roots(isolated: dict[str, Path]) -> None:
    url, sha = upstream(isolated)
    got = locate(CorpusFile(RELPATH, url, sha))
    assert got == isolated["cache"].resolve() / RELPATH and got.read_bytes() == CONTENT
    assert all_files(isolated["home"]) == []


def test_download_with_wrong_checksum_leaves_nothing(isolated: dict[str, Path]) -> None:
    url, sha = upstream(isolated)
    wrong = "0" * 64
    with pytest.raises(DataError) as err:
        locate(CorpusFile(RELPATH, url, wrong), isolated["root"])
    msg = str(err.value)
    assert f"checksum mismatch for {url}: expected sha256 {wrong}, got {sha}" in msg
    assert str(isolated["root"].resolve() / RELPATH) in msg  # where to place a verified copy
    assert not (isolated["root"] / RELPATH).exists()
    assert all_files(isolated["root"]) == []  # no temp file either


def test_unreachable_url_names_corpus_and_paths(isolated: dict[str, Path]) -> None:
    url = (isolated["upstream"] / "does-not-exist.conllu").as_uri()
    with pytest.raises(DataError) as err:
        locate(CorpusFile(RELPATH, url, "0" * 64), isolated["root"])
    msg = str(err.value)
    assert f"corpus file '{RELPATH}' not found" in msg
    assert f"  - {isolated['root'].resolve() / RELPATH}" in msg
    assert f"  - {isolated['cache'].resolve() / RELPATH}" in msg
    assert f"download from {url} failed" in msg
    assert f"download it from {url}" in msg
    assert isinstance(err.value.__cause__, OSError)
    assert all_files(isolated["root"]) == []


def test_fetch_without_checksum_warns_and_writes(isolated: dict[str, Path], caplog: pytest.LogCaptureFixture) -> None:
    url, sha = upstream(isolated, b"no checksum known")
    target = isolated["root"] / "new" / "dir" / "file.txt"
    with caplog.at_level(logging.WARNING, logger="neuroscope.data.root"):
        assert fetch(CorpusFile("x", url), target) == target
    assert target.read_bytes() == b"no checksum known"
    assert any(sha in r.getMessage() and "no known checksum" in r.getMessage() for r in caplog.records)
    assert all_files(isolated["root"]) == [target]


def test_fetch_replaces_an_existing_target(isolated: dict[str, Path]) -> None:
    url, sha = upstream(isolated, b"fresh")
    target = put(isolated["root"], "f.txt", b"stale")
    fetch(CorpusFile("f.txt", url, sha), target)
    assert target.read_bytes() == b"fresh"
    assert all_files(isolated["root"]) == [target]
