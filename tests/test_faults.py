"""Faults: writes under a legacy locale, failing writes, a full or read-only disk, NaN/inf from the
model and float16 overflow, parallel builds, a killed sweep, a truncated results.json and an
interrupted training. Unit tests on a fake neuron source, then each fault through the real CLI
(`python analyze.py ...` / `python train.py ...` on the tiny BERT and tiny CoNLL-U of conftest),
each ending in one `error:` line (exit 2, no traceback) with nothing lost or half-written.

Faults the OS would cause are injected by a `sitecustomize.py` that the test puts on the
subprocess's PYTHONPATH (wrapping an OS call), never by production code reading an env var.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from neuroscope.errors import StoreError, WriteError
from neuroscope.files import atomic_path, atomic_write
from neuroscope.store import extract
from tests.conftest import REPO, TINY_CONLLU
from tests.fakes import HashNeurons

SENTENCES = [["the", "cats", "sleep"], ["a", "dog", "runs", "."], ["hello", "world"]] * 4
# Python turns on its UTF-8 mode by itself in the C locale; PYTHONUTF8=0 gives the locale's ASCII,
# as on a machine whose locale is C / POSIX without that mode (e.g. a minimal container, cron)
LEGACY_LOCALE = {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}


# ------------------------------------------------------------------ atomic writes (unit)

def test_atomic_write_is_utf8_under_a_legacy_locale(tmp_path: Path) -> None:
    """Text is written as UTF-8 whatever the locale (the reporting writer used the locale's codec)."""
    code = textwrap.dedent("""
        import sys
        from pathlib import Path
        from neuroscope.reporting.results import atomic_write
        from neuroscope.files import atomic_json, read_json
        atomic_write(Path(sys.argv[1]) / "page.html", "caf\\u00e9 \\u03bb \\u00b7")
        atomic_json(Path(sys.argv[1]) / "words.json", {"word": "caf\\u00e9"})
        assert read_json(Path(sys.argv[1]) / "words.json") == {"word": "caf\\u00e9"}
    """)
    env = {**os.environ, **LEGACY_LOCALE}
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "page.html").read_bytes() == "café λ ·".encode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page.html", "words.json"]


def test_a_failing_write_leaves_no_temp_file_and_the_old_content(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from neuroscope.reporting.results import atomic_write as reporting_write

    target = tmp_path / "results.json"
    target.write_text("old")

    def full(*_: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(WriteError, match=f"cannot write {target}: the disk is full"):
        reporting_write(target, "new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_an_error_inside_atomic_path_removes_the_temp_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="half"), atomic_path(tmp_path / "a.npy", suffix=".npy") as tmp:
        np.save(tmp, np.arange(3))
        raise ValueError("half done")
    assert list(tmp_path.iterdir()) == []
    atomic_write(tmp_path / "b.bin", b"\x00\xff")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\xff" and len(list(tmp_path.iterdir())) == 1


# ------------------------------------------------------ store faults on a fake source (unit)

class BadUnit(HashNeurons):
    """HashNeurons with `value` at one site and unit for every occurrence of one word."""

    def __init__(self, site: str, unit: int, word: str, value: float) -> None:
        super().__init__(units=6)
        self.bad = (site, unit, word, value)

    def extract(self, sentences: list[list[str]]) -> dict[str, torch.Tensor]:
        acts = super().extract(sentences)
        site, unit, word, value = self.bad
        rows = [i for i, w in enumerate(w for s in sentences for w in s) if w == word]
        acts[site][rows, unit] = value
        return acts


def leftovers(root: Path) -> list[str]:
    """Temp files or folders and manifests under a store root."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if ".tmp" in p.name or p.name == "manifest.json")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_nan_or_inf_from_the_model_stops_extraction_naming_site_unit_and_word(tmp_path: Path, value: float) -> None:
    src = BadUnit("layer1", 2, "dog", value)
    with pytest.raises(StoreError) as info:
        extract(src, SENTENCES, tmp_path, shard_tokens=9, batch_tokens=8, progress=False)
    msg = str(info.value)
    assert f"the model emitted {value}" in msg and "site layer1, unit 2 (neuron 'layer1:2')" in msg
    assert "word 'dog' of sentence 2" in msg and "model.path" in msg
    assert leftovers(tmp_path) == []  # no manifest, no half shard: the finished shards stay for a resume


def test_float16_overflow_is_an_error_suggesting_float32(tmp_path: Path) -> None:
    src = BadUnit("embeddings", 4, "hello", 1e5)  # finite in float32, inf in float16 (max 65504)
    with pytest.raises(StoreError) as info:
        extract(src, SENTENCES, tmp_path, dtype="float16", shard_tokens=9, progress=False)
    msg = str(info.value)
    assert msg.startswith("store.dtype=float16: the activation 100000 at site embeddings, unit 4")
    assert "word 'hello' of sentence 3" in msg and "Set store.dtype=float32" in msg
    assert leftovers(tmp_path) == []
    store, _ = extract(src, SENTENCES, tmp_path, dtype="float32", shard_tokens=9, progress=False)
    assert store.read(["embeddings:4"])[7, 0] == 1e5  # "hello", the first word of sentence 3


def test_a_full_disk_during_a_build_names_store_root_and_resumes(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    real, calls = os.posix_fallocate, []

    def fallocate(fd: int, offset: int, length: int) -> None:
        calls.append(length)
        if len(calls) > 4:  # two shards of two sites fit
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd, offset, length)

    monkeypatch.setattr(os, "posix_fallocate", fallocate)
    with pytest.raises(WriteError, match=r"store.root: cannot write .*shard-00002.tmp/embeddings.npy: the disk is "
                                         r"full \(no space left on device\); free some space there or set store.root"):
        extract(HashNeurons(), SENTENCES, tmp_path / "a", shard_tokens=9, progress=False)
    assert leftovers(tmp_path) == []
    monkeypatch.setattr(os, "posix_fallocate", real)
    src = HashNeurons()
    store, reused = extract(src, SENTENCES, tmp_path / "a", shard_tokens=9, progress=False)
    assert not reused and src.calls == len(store.shards) - 2  # the two finished shards were kept
    fresh, _ = extract(HashNeurons(), SENTENCES, tmp_path / "b", shard_tokens=9, progress=False)
    np.testing.assert_array_equal(store.read(), fresh.read())


# ------------------------------------------------------------------ through the real CLI

HOOKS = {
    # the disk fills: reserving a file's blocks fails with ENOSPC after FAULT_ALLOCATIONS_OK reservations
    "full_disk": """
        import errno, os
        _limit, _real, _count = int(os.environ["FAULT_ALLOCATIONS_OK"]), os.posix_fallocate, [0]
        def posix_fallocate(fd, offset, length):
            _count[0] += 1
            if _count[0] > _limit:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return _real(fd, offset, length)
        os.posix_fallocate = posix_fallocate
    """,
    # the run hangs in the middle of a store build (after FAULT_ALLOCATIONS_OK reservations), so the
    # test can kill it there: it writes FAULT_MARKER, then sleeps
    "hang": """
        import os, time
        _limit, _real, _count = int(os.environ["FAULT_ALLOCATIONS_OK"]), os.posix_fallocate, [0]
        def posix_fallocate(fd, offset, length):
            _count[0] += 1
            if _count[0] > _limit:
                open(os.environ["FAULT_MARKER"], "w").close()
                time.sleep(600)
            return _real(fd, offset, length)
        os.posix_fallocate = posix_fallocate
    """,
    # FAULT_READONLY is read-only: every write under it (open for writing, mkdir, rename, unlink)
    # fails with EACCES, as the kernel does for a user without write permission
    "read_only": """
        import builtins, errno, io, os
        _ro = os.path.realpath(os.environ["FAULT_READONLY"])
        def _inside(path):
            if isinstance(path, int):
                return False
            path = os.path.realpath(os.fsdecode(os.fspath(path)))
            return path == _ro or path.startswith(_ro + os.sep)
        def _deny(path):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(os.fspath(path)))
        _open = io.open
        def open(file, mode="r", *args, **kwargs):
            if any(c in mode for c in "wax+") and _inside(file):
                _deny(file)
            return _open(file, mode, *args, **kwargs)
        builtins.open = io.open = open
        _os_open = os.open
        def os_open(path, flags, *args, **kwargs):
            if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and _inside(path):
                _deny(path)
            return _os_open(path, flags, *args, **kwargs)
        os.open = os_open
        def _guard(real):
            def guarded(path, *args, **kwargs):
                if _inside(path):
                    _deny(path)
                return real(path, *args, **kwargs)
            return guarded
        for _name in ("mkdir", "rename", "replace", "remove", "unlink", "rmdir"):
            setattr(os, _name, _guard(getattr(os, _name)))
    """,
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny CoNLL-U of conftest (100 words) with a non-ASCII word."""
    path = tmp_path_factory.mktemp("corpus") / "cafe.conllu"
    path.write_text(TINY_CONLLU.replace("\tcats\tcat\t", "\tcafé\tcafé\t") * 10, encoding="utf-8")
    return path


def hook(tmp: Path, name: str) -> Path:
    """A folder holding the sitecustomize.py of one fault, for a subprocess's PYTHONPATH."""
    folder = tmp / f"hook_{name}"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(textwrap.dedent(HOOKS[name]))
    return folder


def cli_env(cache: Path, hook_dir: Path | None = None, **extra: str) -> dict[str, str]:
    """The test's environment for a CLI subprocess: its own cache, a fault hook if given."""
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "NEUROSCOPE_CACHE": str(cache), **extra}
    env.pop("NEUROSCOPE_TRACEBACK", None)
    if hook_dir is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(hook_dir), env.get("PYTHONPATH")) if p)
    return env


def tiny_args(bert: Path, corpus: Path, *more: str) -> list[str]:
    """analyze.py on the tiny BERT and corpus: extraction only, no logger, no report, 5 shards."""
    return [str(REPO / "analyze.py"), "model=transformer", f"model.path={bert}", f"task.file={corpus}",
            "logger=none", "store.progress=false", "report=none", "method=none", "store.shard_tokens=20", *more]


def run_cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def one_clear_error(proc: subprocess.CompletedProcess) -> str:
    """The single `error:` line of a run that failed as a user error should (exit 2, no traceback)."""
    err = proc.stderr
    assert proc.returncode == 2, f"exit {proc.returncode}\n{err[-3000:]}"
    assert "Traceback" not in err, err[-3000:]
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and err.count("error: ") == 1, err[-3000:]
    return lines[0]


def the_store(root: Path) -> Path:
    stores = [p for p in root.iterdir() if p.is_dir() and p.name != "index"]
    assert len(stores) == 1, stores
    return stores[0]


def store_files(root: Path) -> dict[str, bytes]:
    """Every file of the one store under `root` by relative path; the manifest without its timing."""
    store, out = the_store(root), {}
    for p in sorted(store.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            if p.name == "manifest.json":
                manifest = json.loads(data)
                manifest.pop("extract_seconds")
                data = json.dumps(manifest, sort_keys=True).encode()
            out[str(p.relative_to(store))] = data
    return out


def temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp") or ".tmp." in p.name]


def test_cli_under_a_legacy_locale_writes_utf8_results_and_report(tmp_path: Path, tiny_bert: Path,
                                                                  corpus: Path) -> None:
    """A whole study with the report under LC_ALL=C: the report (`·`, the word café), the tables and
    the terminal summary (`λ`) used to end in UnicodeEncodeError, leaving a temp file behind."""
    run = tmp_path / "run"
    args = [a for a in tiny_args(tiny_bert, corpus, f"hydra.run.dir={run}", f"store.root={tmp_path / 'stores'}")
            if a not in ("report=none", "method=none")]
    proc = run_cli(args, cli_env(tmp_path / "cache", **LEGACY_LOCALE), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "café" in (run / "report.html").read_bytes().decode("utf-8")
    assert "\\u03bb" in proc.stdout  # the terminal cannot show λ: escaped, not a crash
    assert temp_files(tmp_path) == []


def test_cli_disk_full_during_a_store_build_then_a_rerun_completes_byte_identical(
        tmp_path: Path, tiny_bert: Path, corpus: Path) -> None:
    """The disk fills while the third of five shards is written (3 sites a shard): a clear error
    naming the file and store.root; the two finished shards are kept, nothing half-written; a rerun
    with space finishes the store, byte for byte what a build that never failed writes."""
    cache, stores = tmp_path / "cache", tmp_path / "stores"
    full = run_cli(tiny_args(tiny_bert, corpus, f"hydra.run.dir={tmp_path / 'run1'}", f"store.root={stores}"),
                   cli_env(cache, hook(tmp_path, "full_disk"), FAULT_ALLOCATIONS_OK="6"), tmp_path)
    line = one_clear_error(full)
    assert line.startswith(f"error: store.root: cannot write {the_store(stores)}/shard-00002.tmp/embeddings.npy: "
                           "the disk is full (no space left on device); free some space there or set store.root"), line
    assert sorted(p.name for p in the_store(stores).iterdir()) == ["shard-00000", "shard-00001"]
    assert temp_files(tmp_path) == [] and not list(tmp_path.rglob("results.json"))
    again = run_cli(tiny_args(tiny_bert, corpus, f"hydra.run.dir={tmp_path / 'run2'}", f"store.root={stores}"),
                    cli_env(cache), tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "2 of 5 shards kept from an interrupted build" in (tmp_path / "run2" / "analyze.log").read_text()
    fresh = run_cli(tiny_args(tiny_bert, corpus, f"hydra.run.dir={tmp_path / 'run3'}",
                              f"store.root={tmp_path / 'fresh'}"), cli_env(cache), tmp_path)
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    assert store_files(stores) == store_files(tmp_path / "fresh")


def test_cli_read_only_cache_folder_is_a_clear_error_naming_store_root(tmp_path: Path, tiny_bert: Path,
                                                                       corpus: Path) -> None:
    """The cache folder (NEUROSCOPE_CACHE; store.root lies under it by default) is read-only. Root
    ignores permissions, so as root a sitecustomize hook denies every write under it with EACCES as
    the kernel would for another user; as another user the folder is made read-only with chmod (then
    the config check, before any work, finds it)."""
    cache = tmp_path / "cache"
    cache.mkdir()
    if os.geteuid() == 0:
        env = cli_env(cache, hook(tmp_path, "read_only"), FAULT_READONLY=str(cache))
    else:
        cache.chmod(0o555)
        env = cli_env(cache)
    try:
        proc = run_cli(tiny_args(tiny_bert, corpus, f"hydra.run.dir={tmp_path / 'run'}"), env, tmp_path)
    finally:
        cache.chmod(0o755)
    line = one_clear_error(proc)
    assert line.startswith("error: store.root: cannot write") and str(cache) in line, line
    assert "permission denied" in line and list(cache.iterdir()) == []


def test_cli_four_processes_build_and_read_one_store(tmp_path: Path, tiny_bert: Path, corpus: Path) -> None:
    """Four studies over the same model and corpus at once: the store lock lets one build while
    the others wait and then read it; all four finish with the same results."""
    stores, env = tmp_path / "stores", cli_env(tmp_path / "cache")
    args = [tiny_args(tiny_bert, corpus, f"hydra.run.dir={tmp_path / f'run{i}'}", f"store.root={stores}")
            for i in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        procs = list(pool.map(lambda a: run_cli(a, env, tmp_path, timeout=600), args))
    for proc in procs:
        assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads((tmp_path / f"run{i}" / "results.json").read_text()) for i in range(4)]
    assert sorted(r["store"]["reused"] for r in results) == [False, True, True, True]
    assert len({r["store"]["path"] for r in results}) == 1 and the_store(stores) == Path(results[0]["store"]["path"])
    for r in results:  # the same results, but for the reuse and the timings
        for key in ("reused", "extract_seconds"):
            r["store"].pop(key)
        r.pop("timings", None)
    assert all(r == results[0] for r in results[1:]) and results[0]["store"]["n_tokens"] == 100
    from neuroscope.store import ActivationStore

    assert ActivationStore(the_store(stores)).damaged() == [] and temp_files(tmp_path) == []


def test_cli_sweep_killed_while_extracting_resumes_on_rerun(tmp_path: Path, tiny_bert: Path, corpus: Path) -> None:
    """`analyze.py --multirun` (basic launcher) killed with SIGTERM while job 0 builds its store's
    third shard: the rerun of the same sweep keeps the two finished shards (same files, not
    recomputed), says so in job 0's log, and both jobs finish."""
    stores, sweep, marker = tmp_path / "stores", tmp_path / "sweep", tmp_path / "hanging"
    script, *overrides = tiny_args(tiny_bert, corpus, f"store.root={stores}", f"hydra.sweep.dir={sweep}",
                                   "hydra/launcher=basic", "seed=0,1")
    args = [script, "--multirun", *overrides]
    env = cli_env(tmp_path / "cache", hook(tmp_path, "hang"), FAULT_ALLOCATIONS_OK="6", FAULT_MARKER=str(marker))
    with open(tmp_path / "killed.err", "w") as err:
        proc = subprocess.Popen([sys.executable, *args], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.monotonic() + 300
            while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            assert marker.exists(), (tmp_path / "killed.err").read_text()[-3000:]
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == -signal.SIGTERM
        finally:
            if proc.poll() is None:
                proc.kill()
    store = the_store(stores)
    assert not (store / "manifest.json").exists() and not list(sweep.rglob("results.json"))
    kept = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for d in ("shard-00000", "shard-00001")
            for p in sorted((store / d).iterdir())}
    assert len(kept) == 6
    again = run_cli(args, cli_env(tmp_path / "cache"), tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming activation store" in (sweep / "0" / "analyze.log").read_text()
    assert "2 of 5 shards kept from an interrupted build" in (sweep / "0" / "analyze.log").read_text()
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in kept} == kept
    jobs = [json.loads((sweep / j / "results.json").read_text()) for j in ("0", "1")]
    assert [j["store"]["reused"] for j in jobs] == [False, True] and jobs[0]["store"]["path"] == str(store)
    assert temp_files(stores) == []


def broken_bert(src: Path, dst: Path, param: str, unit: int, value: float) -> Path:
    """A copy of the tiny BERT with one entry of one parameter set to `value`."""
    from transformers import BertModel

    shutil.copytree(src, dst)
    model = BertModel.from_pretrained(dst)
    with torch.no_grad():
        model.get_parameter(param)[unit] = value
    model.save_pretrained(dst)
    return dst


def test_cli_nan_from_the_model_and_float16_overflow_stop_extraction(tmp_path: Path, tiny_bert: Path,
                                                                     corpus: Path) -> None:
    """A model whose last LayerNorm emits NaN at unit 3 of layer2, and one whose unit 5 there is
    scaled by 1e6 (finite in float32, beyond float16's range): each run stops at extraction naming
    site and unit (and what to do), with no manifest and no half shard left."""
    last_norm = "encoder.layer.1.output.LayerNorm"
    nan = broken_bert(tiny_bert, tmp_path / "nan_bert", f"{last_norm}.bias", 3, float("nan"))
    huge = broken_bert(tiny_bert, tmp_path / "huge_bert", f"{last_norm}.weight", 5, 1e6)
    cases = {"nan": tiny_args(nan, corpus, f"hydra.run.dir={tmp_path / 'run_nan'}", f"store.root={tmp_path / 's1'}"),
             "fp16": tiny_args(huge, corpus, f"hydra.run.dir={tmp_path / 'run_fp16'}", f"store.root={tmp_path / 's2'}",
                               "store.dtype=float16")}
    with ThreadPoolExecutor(max_workers=2) as pool:
        procs = dict(zip(cases, pool.map(lambda a: run_cli(a, cli_env(tmp_path / "cache"), tmp_path), cases.values()),
                         strict=True))
    line = one_clear_error(procs["nan"])
    assert "the model emitted nan at site layer2, unit 3 (neuron 'layer2:3'), word '" in line
    assert "check model.path / model.checkpoint" in line
    line = one_clear_error(procs["fp16"])
    assert line.startswith("error: store.dtype=float16: the activation ") and "at site layer2, unit 5" in line
    assert "Set store.dtype=float32" in line
    for root in (tmp_path / "s1", tmp_path / "s2"):
        assert not list(root.rglob("manifest.json")) and temp_files(root) == []
    assert not list(tmp_path.rglob("results.json"))


def test_cli_sweep_report_lists_a_truncated_results_json_as_failed(tmp_path: Path) -> None:
    """A sweep folder where one job's results.json was cut short (a full disk, a copy interrupted):
    the report over it lists that job as failed and reports the other."""
    sweep = tmp_path / "sweep"
    good = {"model": "transformer", "task": "upos", "method": "lca", "seed": 0, "oracle": {"accuracy": 0.9},
            "subsets": {"top": {"5": {"accuracy": 0.8}}, "random": {"5": {"accuracy": 0.6}}},
            "ranking": ["layer1:0", "layer2:1"]}
    text = json.dumps(good, indent=2)
    for job, content in (("0", text), ("1", text[: len(text) // 2])):
        (sweep / job).mkdir(parents=True)
        (sweep / job / "results.json").write_text(content)
    proc = run_cli([str(REPO / "analyze.py"), f"report.input=[{sweep}]", "logger=none",
                    f"hydra.run.dir={tmp_path / 'rep'}"], cli_env(tmp_path / "cache"), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "1 runs, 1 without results" in proc.stdout
    summary = json.loads((tmp_path / "rep" / "results.json").read_text())
    assert summary["runs"] == [str(sweep / "0")]
    assert [f["run"] for f in summary["failed"]] == [str(sweep / "1")]
    assert summary["failed"][0]["problem"].startswith("results.json unreadable")


def test_cli_interrupted_training_resumes_from_last_ckpt_to_the_same_metrics(tmp_path: Path) -> None:
    """train.py stopped after epoch 1 (max_epochs=1) and resumed from its last.ckpt to epoch 2 ends
    with the metrics of a straight 2-epoch run (tiny nlm_lstm, trainer=debug, toy Multi30k)."""
    from tests.test_multi30k import tiny_multi30k

    root = tiny_multi30k(tmp_path / "data")
    common = [str(REPO / "train.py"), "model=nlm_lstm", "data=multi30k", f"data.root={root}", "data.download=false",
              "data.min_freq=1", "model.emb_dim=16", "model.hidden=16", "trainer=debug", "logger=none"]
    env, straight, resumed = cli_env(tmp_path / "cache"), tmp_path / "straight", tmp_path / "resumed"
    runs = [[*common, "trainer.max_epochs=2", f"hydra.run.dir={straight}"],
            [*common, "trainer.max_epochs=1", f"hydra.run.dir={resumed}"],
            [*common, "trainer.max_epochs=2", f"hydra.run.dir={resumed}",
             f"ckpt_path={resumed / 'checkpoints' / 'last.ckpt'}"]]
    with ThreadPoolExecutor(max_workers=2) as pool:
        first = [pool.submit(run_cli, args, env, tmp_path) for args in runs[:2]]
        for proc in (f.result() for f in first):
            assert proc.returncode == 0, proc.stderr[-3000:]
    proc = run_cli(runs[2], env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = (json.loads((d / "results.json").read_text()) for d in (straight, resumed))
    assert a["val"].keys() == b["val"].keys() and a["test"].keys() == b["test"].keys() == {"loss", "perplexity"}
    for split in ("val", "test"):
        for key in a[split]:
            assert b[split][key] == pytest.approx(a[split][key], abs=1e-6), (split, key)


def test_atomic_files_get_the_mode_a_plain_open_gives(tmp_path: Path) -> None:
    """A writer that creates its temp file 0600 (safetensors does) still leaves a file readable as
    any other the run writes (0666 less the umask)."""
    from neuroscope.files import FILE_MODE, atomic_path

    target = tmp_path / "weights.bin"
    with atomic_path(target) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"x")
        os.close(fd)
    assert target.stat().st_mode & 0o777 == FILE_MODE
    plain = tmp_path / "plain.txt"
    plain.write_text("y")
    assert plain.stat().st_mode & 0o777 == FILE_MODE
