"""Stores never serve stale, mixed or damaged activations, and a warm study loads no model."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from neuroscope.hashing import cached_sha256, file_sha256
from neuroscope.store import ActivationStore, extract, open_or_build
from tests.conftest import REPO
from tests.fakes import HashNeurons
from tests.fixture_corpus import distinct_conllu
from tests.test_store import SENTENCES, expected


class FileNeurons(HashNeurons):
    """A fake source that names one file its activations depend on (like a checkpoint)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def input_files(self) -> dict[str, str]:
        return {str(self.path.resolve()): cached_sha256(self.path)}

    def fingerprint(self) -> dict:
        return {**super().fingerprint(), "sha256": cached_sha256(self.path)}


def test_shard_size_is_part_of_the_key(tmp_path: Path) -> None:
    a, _ = extract(HashNeurons(), SENTENCES, tmp_path, shard_tokens=40, progress=False)
    b, reused = extract(HashNeurons(), SENTENCES, tmp_path, shard_tokens=64, progress=False)
    assert not reused and a.path != b.path  # a resumed build cannot mix two layouts
    assert a.manifest["layout"] == {"shard_tokens": 40} and len(a.shards) != len(b.shards)
    np.testing.assert_array_equal(a.read(), b.read())


def test_cached_hash_follows_content_changes_of_the_same_size(tmp_path: Path) -> None:
    f = tmp_path / "weights.bin"
    f.write_bytes(b"\x00" * 1000)
    first = cached_sha256(f)
    f.write_bytes(b"\x01" * 1000)  # same size, new content (and a new mtime)
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 1_000_000))
    assert cached_sha256(f) == file_sha256(f) != first


def test_model_fine_tuned_in_place_gets_a_new_store(tmp_path: Path, tiny_bert: Path) -> None:
    """Same folder, same file sizes, new weights: the store key follows the content."""
    import torch
    from transformers import BertModel

    from neuroscope.models.transformer import TransformerNeurons

    folder = tmp_path / "model"
    shutil.copytree(tiny_bert, folder)
    words = [["the", "cats", "sleep"], ["a", "dog", "runs", "."]]
    first, _ = extract(TransformerNeurons(str(folder)), words, tmp_path / "stores", progress=False)
    model = BertModel.from_pretrained(folder)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5)
    sizes = {p.name: p.stat().st_size for p in folder.iterdir()}
    model.save_pretrained(folder)
    assert sizes == {p.name: p.stat().st_size for p in folder.iterdir()}
    second, reused = extract(TransformerNeurons(str(folder)), words, tmp_path / "stores", progress=False)
    assert not reused and second.path != first.path
    assert not np.allclose(first.read(), second.read())


def test_index_finds_the_store_without_building_the_model(tmp_path: Path) -> None:
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"v1")
    built = []

    def make() -> FileNeurons:
        built.append(1)
        return FileNeurons(weights)

    cfg = {"name": "fake", "path": str(weights)}
    store, reused, source = open_or_build(make, cfg, SENTENCES, tmp_path, progress=False)
    assert (reused, len(built)) == (False, 1) and source is not None
    again, reused, source = open_or_build(make, cfg, SENTENCES, tmp_path, progress=False)
    assert (reused, len(built), source) == (True, 1, None) and again.path == store.path
    weights.write_bytes(b"v2")  # the model changed: the index entry is stale, the model is built
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 1_000_000))
    third, reused, _ = open_or_build(make, cfg, SENTENCES, tmp_path, progress=False)
    assert not reused and len(built) == 2 and third.path != store.path


def test_source_without_files_is_always_built(tmp_path: Path) -> None:
    built = []

    def make() -> HashNeurons:
        built.append(1)
        return HashNeurons()

    for _ in range(2):
        _, _, source = open_or_build(make, {"name": "hash"}, SENTENCES, tmp_path, progress=False)
        assert source is not None
    assert len(built) == 2 and not (tmp_path / "index").exists()


@pytest.mark.parametrize("damage", ["truncate", "delete_shard_file", "delete_manifest", "garble_manifest"])
def test_damaged_store_is_detected_and_rebuilt(tmp_path: Path, damage: str) -> None:
    src = HashNeurons()
    store, _ = extract(src, SENTENCES, tmp_path, shard_tokens=40, progress=False)
    victim = store.path / store.shards[1]["dir"] / "layer1.npy"
    untouched = store.path / store.shards[0]["dir"] / "layer1.npy"
    mtime = untouched.stat().st_mtime_ns
    if damage == "truncate":
        victim.write_bytes(victim.read_bytes()[:-17])
    elif damage == "delete_shard_file":
        victim.unlink()
    elif damage == "delete_manifest":
        (store.path / "manifest.json").unlink()
    else:
        (store.path / "manifest.json").write_text("{not json")
    if damage.endswith("shard_file") or damage == "truncate":
        assert ActivationStore(store.path).damaged()
    again, reused = extract(src, SENTENCES, tmp_path, shard_tokens=40, progress=False)
    assert not reused and again.path == store.path and again.damaged() == []
    np.testing.assert_array_equal(again.read(), expected(SENTENCES, src))
    if damage in ("truncate", "delete_shard_file"):
        assert untouched.stat().st_mtime_ns == mtime  # only the damaged shard was recomputed


CONCURRENT = textwrap.dedent("""
    import sys
    from pathlib import Path
    if sys.argv[2] == "no-flock":  # a shared file system without flock (Lustre without -o flock)
        import errno, fcntl
        def refuse(*args):
            raise OSError(errno.ENOSYS, "Function not implemented")
        fcntl.flock = refuse
    from tests.fakes import HashNeurons
    from tests.test_store import SENTENCES
    from neuroscope.store import extract
    store, reused = extract(HashNeurons(units=3, delay=0.02), SENTENCES * 2, Path(sys.argv[1]),
                            shard_tokens=40, batch_tokens=16, progress=False)
    print(store.path, reused)
""")


@pytest.mark.parametrize("locks", ["flock", "no-flock"])
def test_two_runs_at_once_share_one_intact_store(tmp_path: Path, locks: str) -> None:
    """Two processes build one store: one builds, the other waits and reuses it, with OS locks or,
    where the file system has none, filelock's lock files."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT, str(tmp_path), locks], env=env, cwd=REPO,
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=180)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outs[0][0] == outs[1][0] and sorted(o[1] for o in outs) == ["False", "True"]  # built once
    store = ActivationStore(outs[0][0])
    assert store.damaged() == []
    np.testing.assert_array_equal(store.read(), expected(SENTENCES * 2, HashNeurons(units=3)))


WARM = textwrap.dedent("""
    import json, sys
    from hydra import compose, initialize_config_dir
    from neuroscope.analysis import analyze
    with initialize_config_dir(config_dir=sys.argv[1], version_base="1.3"):
        cfg = compose(config_name="analyze", overrides=json.loads(sys.argv[2]))
    res = analyze(cfg)
    heavy = sorted(m for m in ("torch", "pytorch_lightning", "lightning", "transformers", "torchmetrics")
                   if m in sys.modules)
    print(json.dumps({"reused": res["store"]["reused"], "heavy": heavy}))
""")


def test_warm_study_never_imports_torch_lightning_or_transformers(tmp_path: Path, tiny_bert: Path) -> None:
    corpus = distinct_conllu(tmp_path / "tiny.conllu")
    base = ["model=transformer", f"model.path={tiny_bert}", f"task.file={corpus}", "store.progress=false",
            f"store.root={tmp_path / 'stores'}", "probe.epochs=2", "probe.selection.enabled=false",
            "evaluation.percents=[50]", "evaluation.layer_probes=false", "evaluation.random_draws=2"]
    env = dict(os.environ, PYTHONPATH=str(REPO), WANDB_MODE="offline", HF_HUB_OFFLINE="1")

    def run(extra: list[str], out: str) -> dict:
        args = json.dumps(base + extra + [f"output_dir={tmp_path / out}"])
        proc = subprocess.run([sys.executable, "-c", WARM, str(REPO / "conf"), args], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    cold = run(["method=none", "logger=none"], "cold")
    assert cold["reused"] is False and "torch" in cold["heavy"]
    for logger in ("wandb", "csv"):
        warm = run(["method=lca", f"logger={logger}"], f"warm_{logger}")
        assert warm == {"reused": True, "heavy": []}, warm
    assert list((tmp_path / "warm_wandb" / "wandb").glob("offline-run-*"))
    assert list((tmp_path / "warm_csv" / "csv").rglob("metrics.csv"))
    proc = subprocess.run([sys.executable, "-c", "import sys, neuroscope, neuroscope.analysis; "
                           "print(sorted(m for m in ('torch', 'transformers', 'pytorch_lightning') if m in sys.modules))"],
                          env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr
