"""A store built by many workers (store.engine=ray | submitit) holds the same bytes as a one-process
build with the same batch plan and threads, resumes like it, and names a failed worker."""

from __future__ import annotations

import functools
import json
import random
from pathlib import Path

import pytest

from neuroscope.errors import ConfigError, StoreError
from neuroscope.models.transformer import TransformerNeurons
from neuroscope.store import extract
from neuroscope.store.extract import plan_shards
from neuroscope.store.parallel import BuildPlan, build_plan, split_ranges

WORDS = "the a cats cat dog dogs sleep run runs can not . , hello world".split()
_rng = random.Random(3)
SENTENCES = [[_rng.choice(WORDS) for _ in range(_rng.randint(1, 12))] for _ in range(70)]
LAYOUT = {"shard_tokens": 40, "batch_tokens": 48}


class FailingNeurons(TransformerNeurons):
    """The tiny model, failing on a sentence that starts with 'hello' (a worker that dies mid-range)."""

    def extract_batches(self, batches):  # noqa: ANN001, ANN201 - as the parent (what the store builder calls)
        for sentences in batches:
            if any(s[0] == "hello" for s in sentences):
                raise RuntimeError("worker killed")
            yield from super().extract_batches([sentences])


def _build(model: Path, root: Path, plan: BuildPlan, cls: type = TransformerNeurons):
    make = functools.partial(cls, str(model))
    store, _ = extract(TransformerNeurons(str(model)), SENTENCES, root, progress=False, plan=plan,
                       make_source=make, **LAYOUT)
    return store


def _bytes(folder: Path) -> dict[str, bytes]:
    """Every file of a store but its manifest, by relative path."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "manifest.json"}


def _same_store(a: Path, b: Path) -> None:
    assert _bytes(a) == _bytes(b)
    ma, mb = (json.loads((p / "manifest.json").read_text()) for p in (a, b))
    for m in (ma, mb):
        m.pop("extract_seconds"), m.pop("build")
    assert ma == mb


def test_ranges_are_contiguous_whole_shards_of_about_equal_words() -> None:
    shards = plan_shards([len(s) for s in SENTENCES], 40)
    for workers in (1, 2, 3, 5, len(shards), len(shards) + 4):
        groups = split_ranges(shards, workers)
        assert [s for g in groups for s in g] == shards  # each shard once, in order
        assert all(groups) and len(groups) == min(workers, len(shards))
    words = [g[-1]["end"] - g[0]["start"] for g in split_ranges(shards, 2)]
    assert abs(words[0] - words[1]) <= 2 * max(s["end"] - s["start"] for s in shards)
    assert split_ranges([], 3) == []


@pytest.mark.parametrize("node, key", [
    ({"engine": "spark"}, "store.engine"), ({"engine": "ray", "workers": 0}, "store.workers"),
    ({"engine": "local", "workers": 2}, "store.workers"), ({"threads": 1.5}, "store.threads"),
    ({"engine": "ray", "ray": "localhost"}, "store.ray"),
])
def test_bad_build_settings_name_their_key(node: dict, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_plan(node)
    assert str(info.value).startswith(key) and "\n" not in str(info.value)


@pytest.fixture(scope="module")
def one_process(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference: a one-process build with one torch thread."""
    return _build(tiny_bert, tmp_path_factory.mktemp("one"), BuildPlan(threads=1)).path


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_two_ray_workers_write_the_one_process_bytes_and_resume(tiny_bert: Path, one_process: Path,
                                                                  ray_local, tmp_path: Path) -> None:
    plan = BuildPlan("ray", 2, 1)
    store = _build(tiny_bert, tmp_path, plan)
    assert len(store.shards) >= 4 and store.manifest["build"] == {"engine": "ray", "workers": 2, "threads": 1}
    _same_store(one_process, store.path)
    # a killed worker: its range half done (a whole shard missing, a temp folder left), no manifest
    victim = store.path / store.shards[-1]["dir"]
    kept = store.path / store.shards[0]["dir"]
    before = {p: p.stat().st_mtime_ns for p in kept.iterdir()}
    for p in victim.iterdir():
        p.unlink()
    victim.rename(victim.with_name(victim.name + ".tmp"))
    (store.path / "manifest.json").unlink()
    again = _build(tiny_bert, tmp_path, plan)
    _same_store(one_process, again.path)
    assert {p: p.stat().st_mtime_ns for p in kept.iterdir()} == before  # finished shards were kept


def test_a_failed_ray_worker_is_a_store_error_and_leaves_whole_shards(tiny_bert: Path, ray_local,
                                                                      tmp_path: Path) -> None:
    with pytest.raises(StoreError) as info:
        _build(tiny_bert, tmp_path, BuildPlan("ray", 2, 1), FailingNeurons)
    assert "worker killed" in str(info.value) and "re-run" in str(info.value)
    folder = next(tmp_path.glob("*-*"))
    assert not (folder / "manifest.json").exists() and not list(folder.glob("*.tmp"))


def test_a_submitit_job_array_writes_the_one_process_bytes(tiny_bert: Path, one_process: Path,
                                                           tmp_path: Path) -> None:
    pytest.importorskip("submitit")
    plan = BuildPlan("submitit", 2, 1, submitit={"cluster": "local", "folder": str(tmp_path / "jobs"),
                                                  "timeout_min": 5})
    store = _build(tiny_bert, tmp_path / "root", plan)
    _same_store(one_process, store.path)
    assert len(list((tmp_path / "jobs").glob("*_result.pkl"))) == 2  # one task per range


def test_different_threads_stay_within_float32_rounding(tiny_bert: Path, one_process: Path, tmp_path: Path) -> None:
    """Threads change the order of float sums, so bytes may differ; values agree to rounding."""
    import numpy as np

    from neuroscope.store import ActivationStore

    other = _build(tiny_bert, tmp_path, BuildPlan(threads=2))
    a, b = ActivationStore(one_process).read(), other.read()
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * float(np.abs(a).max()))
