"""Activation store: exact contents, subset reads, dtypes, reuse, atomic kill-and-resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from neuroscope.errors import ConfigError, StoreError
from neuroscope.store import ActivationStore, extract
from neuroscope.store.extract import plan_shards
from tests.fakes import HashNeurons, word_vector

SENTENCES = [[f"w{i}_{j}" for j in range(1 + (i * 7) % 11)] for i in range(40)]


def expected(sentences: list[list[str]], source: HashNeurons) -> np.ndarray:
    """[tokens, neurons] the fake source must produce, in store order."""
    rows = []
    for s in sentences:
        for i, w in enumerate(s):
            rows.append(np.concatenate([word_vector(w, i, source.units[site], k).numpy()
                                        for k, site in enumerate(source.sites)]))
    return np.stack(rows)


def test_plan_shards_covers_every_sentence_once() -> None:
    shards = plan_shards([3, 4, 5, 1, 9], shard_tokens=7)
    # a shard closes once it holds at least shard_tokens words; the last takes the rest
    assert [(s["first_sentence"], s["last_sentence"]) for s in shards] == [(0, 2), (2, 5)]
    assert [(s["start"], s["end"]) for s in shards] == [(0, 7), (7, 22)]


def test_store_holds_exact_activations_in_corpus_order(tmp_path: Path) -> None:
    src = HashNeurons(units=5)
    store, reused = extract(src, SENTENCES, tmp_path, shard_tokens=37, batch_tokens=20, progress=False)
    want = expected(SENTENCES, src)
    assert not reused and len(store.shards) > 3
    assert store.n_tokens == len(want) and store.n_neurons == 10
    assert store.neurons[:2] == ["embeddings:0", "embeddings:1"] and store.neurons[-1] == "layer1:4"
    np.testing.assert_allclose(store.read(), want, rtol=0, atol=0)
    assert store.offsets[-1] == store.n_tokens and list(store.offsets[:3]) == [0, 1, 9]


def test_subset_reads_by_id_site_index_and_token_mask(tmp_path: Path) -> None:
    src = HashNeurons(units=4)
    store, _ = extract(src, SENTENCES, tmp_path, shard_tokens=25, progress=False)
    want = expected(SENTENCES, src)
    cols = store.neuron_index(["layer1:3", "embeddings:0", "layer1:1"])
    assert cols.tolist() == [7, 0, 5]
    tokens = np.array([5, 0, store.n_tokens - 1, 30])
    np.testing.assert_array_equal(store.read(["layer1:3", "embeddings:0", "layer1:1"], tokens), want[np.ix_(tokens, cols)])
    repeated = np.array([30, 5, 30, 5, 0])  # repeats and any order, across shards
    np.testing.assert_array_equal(store.read(["layer1:3", "embeddings:0"], repeated), want[np.ix_(repeated, cols[:2])])
    mask = np.zeros(store.n_tokens, bool)
    mask[::3] = True
    np.testing.assert_array_equal(store.read(["layer1"], mask), want[mask][:, 4:])
    block = np.arange(20, 61)  # sorted without repeats, across shard boundaries: read straight into place
    np.testing.assert_array_equal(store.read(None, block), want[block])
    np.testing.assert_array_equal(store.read(), want)
    np.testing.assert_array_equal(store.read([3, 1], block, dtype=np.float64), want[block][:, [3, 1]])
    buf = np.full((len(block), want.shape[1]), np.nan, dtype=np.float32)  # a reused buffer: filled in place
    assert store.read(None, block, out=buf) is buf
    np.testing.assert_array_equal(buf, want[block])
    shuffled = block[::-1].copy()  # the scatter path fills `out` too
    np.testing.assert_array_equal(store.read(None, shuffled, out=buf), want[shuffled])
    with pytest.raises(StoreError, match=r"read: out must be a C-contiguous float32 array of shape \(41, 8\)"):
        store.read(None, block, out=buf[:, :4])
    chunks = list(store.iter_shards([2, 6]))
    np.testing.assert_array_equal(np.concatenate([c for _, c in chunks]), want[:, [2, 6]])
    with pytest.raises(StoreError, match="unknown site 'layer9'"):
        store.read(["layer9:0"])
    with pytest.raises(StoreError, match="unit must be 0..3"):
        store.read(["layer1:4"])


def test_float16_store_halves_bytes(tmp_path: Path) -> None:
    src = HashNeurons(units=8)
    s32, _ = extract(src, SENTENCES, tmp_path / "a", progress=False)
    s16, _ = extract(src, SENTENCES, tmp_path / "b", dtype="float16", progress=False)
    assert s16.dtype == np.float16 and s16.read().dtype == np.float32
    np.testing.assert_allclose(s16.read(), s32.read(), atol=1e-2, rtol=1e-3)
    size = lambda p: sum(f.stat().st_size for f in p.rglob("shard-*/*.npy"))  # noqa: E731
    assert size(s16.path) < 0.55 * size(s32.path)
    with pytest.raises(ConfigError, match="store.dtype"):
        extract(src, SENTENCES, tmp_path / "c", dtype="int8", progress=False)


def test_same_config_and_data_reuses_the_store(tmp_path: Path) -> None:
    src = HashNeurons()
    first, reused1 = extract(src, SENTENCES, tmp_path, progress=False)
    calls = src.calls
    second, reused2 = extract(src, SENTENCES, tmp_path, progress=False)
    assert (reused1, reused2) == (False, True) and src.calls == calls and second.path == first.path
    third, reused3 = extract(src, SENTENCES[:-1], tmp_path, progress=False)  # other data: new store
    assert not reused3 and third.path != first.path


def test_labels_live_beside_the_activations(tmp_path: Path) -> None:
    store, _ = extract(HashNeurons(), SENTENCES, tmp_path, progress=False)
    labels = np.arange(store.n_tokens) % 3
    split = np.zeros(store.n_tokens, np.int8)
    store.save_labels("upos-abc", labels, split, ["A", "B", "C"])
    got = ActivationStore(store.path).load_labels("upos-abc")
    np.testing.assert_array_equal(got[0], labels)
    assert got[2] == ["A", "B", "C"]
    entry = ActivationStore(store.path).manifest["labels"]["upos-abc"]
    assert entry == {"file": "labels/upos-abc.npz", "classes": ["A", "B", "C"], "labelled_tokens": store.n_tokens}
    with pytest.raises(StoreError, match="labels for a store of"):
        store.save_labels("bad", labels[:-1], split[:-1], ["A"])


def test_incomplete_folder_is_not_a_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not a complete activation store"):
        ActivationStore(tmp_path)


KILLABLE = textwrap.dedent("""
    import sys
    from pathlib import Path
    from tests.fakes import HashNeurons
    from tests.test_store import SENTENCES
    from neuroscope.store import extract
    delay = float(sys.argv[2])
    extract(HashNeurons(units=3, delay=delay), SENTENCES * 3, Path(sys.argv[1]),
            shard_tokens=40, batch_tokens=16, progress=False)
""")


def _run(root: Path, delay: float) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    return subprocess.Popen([sys.executable, "-c", KILLABLE, str(root), str(delay)], env=env,
                            cwd=Path(__file__).resolve().parents[1], start_new_session=True)


def test_killed_extraction_resumes_to_an_identical_store(tmp_path: Path) -> None:
    clean = tmp_path / "clean"
    assert _run(clean, 0.0).wait(timeout=120) == 0
    killed = tmp_path / "killed"
    proc = _run(killed, 0.05)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(killed.glob("*/shard-*[0-9]"))) < 2:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    (folder,) = [p for p in killed.iterdir() if p.is_dir()]
    done_before = {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.glob("shard-*[0-9]/*.npy")}
    assert not (folder / "manifest.json").exists() and len(done_before) >= 2
    assert _run(killed, 0.0).wait(timeout=120) == 0
    (ref,) = [p for p in clean.iterdir() if p.is_dir()]
    assert ref.name == folder.name  # same cache key
    files = sorted(p.relative_to(ref) for p in ref.rglob("*.npy"))
    assert files == sorted(p.relative_to(folder) for p in folder.rglob("*.npy"))
    for f in files:
        assert (ref / f).read_bytes() == (folder / f).read_bytes(), f
    assert not list(folder.glob("*.tmp"))
    for name, mtime in done_before.items():  # finished shards were kept, not recomputed
        assert (folder / name).stat().st_mtime_ns == mtime, name


def test_windowed_sentences_are_counted_in_the_manifest(tmp_path: Path, tiny_bert: Path, caplog: pytest.LogCaptureFixture) -> None:
    from neuroscope.models.transformer import TransformerNeurons

    src = TransformerNeurons(str(tiny_bert), max_length=8)
    with caplog.at_level("WARNING"):
        store, _ = extract(src, [["the", "cats", "sleep", "."] * 3, ["a", "dog", "\u200b"]], tmp_path, progress=False)
    assert store.manifest["extraction_stats"] == {"windowed_sentences": 1, "replaced_words": 1}
    assert "windowed_sentences = 1" in caplog.text
    assert store.n_tokens == 15


def test_reading_leaves_no_shard_mapped(tmp_path: Path) -> None:
    """Streamed reads copy out of a shard and unmap it, so RSS stays bounded by one shard."""
    store, _ = extract(HashNeurons(), SENTENCES, tmp_path, shard_tokens=30, progress=False)
    total = sum(block.shape[0] for _, block in store.iter_shards())
    assert total == store.n_tokens
    store.read(["layer1:2"], tokens=np.arange(0, store.n_tokens, 7))
    maps = Path("/proc/self/maps").read_text()
    assert str(store.path) not in maps


def test_a_source_that_streams_batches_is_read_through_extract_batches(tmp_path: Path) -> None:
    """`extract_batches` (sources that overlap copies with the next forward) replaces per-batch
    `extract` calls and gives the same store."""

    class Streaming(HashNeurons):
        calls = 0

        def extract_batches(self, batches):  # noqa: ANN001, ANN202 - the NeuronSource hook
            type(self).calls += 1
            for words in batches:
                yield self.extract(words)

    src = Streaming(units=3)
    store, _ = extract(src, SENTENCES, tmp_path, shard_tokens=37, batch_tokens=20, progress=False)
    assert Streaming.calls == len(store.shards)  # one stream per shard
    np.testing.assert_array_equal(store.read(), expected(SENTENCES, src))
