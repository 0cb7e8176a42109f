"""Build one store with many workers: its shards cut into contiguous ranges, each range extracted by
a worker that loads the model once (a Ray task, or a SLURM array task through submitit).

Batches never cross a shard, so a shard's bytes depend only on the model, its sentences, the batch
plan and the threads of the process that computed it: with the same `store.threads` every engine
writes the same bytes. Workers write each shard into `<shard>.tmp` and rename it when complete;
the caller (`extract`) checks every shard and writes the manifest last, so a killed worker leaves
whole shards that a re-run keeps.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from neuroscope.clusters import ray_result, start_ray
from neuroscope.errors import ConfigError, StoreError
from neuroscope.store.shards import fill_missing

if TYPE_CHECKING:
    from neuroscope.models.base import NeuronSource

ENGINES = ("local", "ray", "submitit")
POLL_SECONDS = 1.0


@dataclass(frozen=True)
class BuildPlan:
    """How a store's missing shards are computed (`store.engine`, `store.workers`, `store.threads`,
    `store.ray`, `store.submitit`)."""

    engine: str = "local"
    workers: int = 1
    threads: int | None = None  # torch threads per worker (and for a one-process build); None: torch's default
    ray: dict[str, Any] = field(default_factory=dict)
    submitit: dict[str, Any] = field(default_factory=dict)

    @property
    def parallel(self) -> bool:
        return self.engine != "local"


def build_plan(store_cfg: Mapping[str, Any]) -> BuildPlan:
    """The `store` config node's build settings, checked (a ConfigError names the key)."""
    engine = str(store_cfg.get("engine") or "local")
    if engine not in ENGINES:
        raise ConfigError(f"store.engine: expected one of {', '.join(ENGINES)}, got '{engine}'")
    workers = _positive(store_cfg.get("workers", 1), "store.workers")
    threads = store_cfg.get("threads")
    threads = None if threads is None else _positive(threads, "store.threads")
    if engine == "local" and workers != 1:
        raise ConfigError(f"store.workers={workers}: the local engine builds in this process; set "
                          "store.engine=ray or store.engine=submitit for several workers")
    sections = {}
    for key in ("ray", "submitit"):
        node = store_cfg.get(key) or {}
        if not isinstance(node, Mapping):
            raise ConfigError(f"store.{key}: expected a mapping of settings, got {node!r}")
        sections[key] = dict(node)
    return BuildPlan(engine, workers, threads, sections["ray"], sections["submitit"])


def _positive(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key}: expected a whole number >= 1, got {value!r}")
    return value


def split_ranges(shards: list[dict[str, int]], workers: int) -> list[list[dict[str, int]]]:
    """At most `workers` contiguous groups of whole shards with about equal word counts (each group
    non-empty): group g ends at the first shard whose end reaches g+1 workers' share of the words."""
    if not shards:
        return []
    first = shards[0]["start"]
    total = shards[-1]["end"] - first
    groups: list[list[dict[str, int]]] = [[]]
    for i, shard in enumerate(shards):
        groups[-1].append(shard)
        left = len(shards) - i - 1
        target = (shard["end"] - first) * workers
        if left and len(groups) < workers and (target >= len(groups) * total or left <= workers - len(groups)):
            groups.append([])
    return groups


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with `threads` intra-op torch threads (None: leave torch's setting)."""
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class _NoBar:
    """A progress sink for workers (the driver reports progress from the finished shards)."""

    def update(self, n: int) -> None:
        pass


def build_range(make_source: Callable[[], NeuronSource], sentences: list[list[str]], shards: list[dict[str, int]],
                path: str, dtype: str, batch_tokens: int, threads: int | None,
                plugin_dirs: list[str]) -> dict[str, Any]:
    """One worker: load the model once, compute each shard of `shards` that is not on disk yet into
    `<dir>.tmp` and rename it; returns what the driver checks (fingerprint, sites, units, stats)."""
    from neuroscope.registry import set_plugin_dirs

    set_plugin_dirs(plugin_dirs)  # a worker process registers the same plugin models as the driver
    with torch_threads(threads):
        source = make_source()
        fill_missing(source, sentences, shards, Path(path), dtype, batch_tokens, _NoBar())
        stats = source.stats() if hasattr(source, "stats") else {}
        return {"fingerprint": source.fingerprint(), "sites": list(source.sites), "units": dict(source.units),
                "stats": dict(stats), "shards": [s["dir"] for s in shards]}


def run_ranges(plan: BuildPlan, make_source: Callable[[], NeuronSource], sentences: list[list[str]],
               shards: list[dict[str, int]], path: Path, dtype: str, batch_tokens: int,
               bar: Any) -> list[dict[str, Any]]:
    """Compute the missing `shards` of `path` on the plan's engine, `plan.workers` ranges at a time;
    returns every worker's report (see `build_range`). `bar` advances as shards land on disk."""
    from neuroscope.registry import plugin_dirs

    ranges = split_ranges(shards, plan.workers)
    if not ranges:
        return []
    args = [(make_source, sentences, r, str(path), dtype, batch_tokens, plan.threads,
             [str(d) for d in plugin_dirs()]) for r in ranges]
    run = _run_ray if plan.engine == "ray" else _run_submitit
    return run(plan, args, _Progress(path, shards, bar))


class _Progress:
    """Advance the driver's bar by the words of shards found finished on disk."""

    def __init__(self, path: Path, shards: list[dict[str, int]], bar: Any) -> None:
        self.path, self.pending, self.bar = path, list(shards), bar

    def poll(self) -> None:
        done = [s for s in self.pending if (self.path / s["dir"]).exists()]
        for s in done:
            self.bar.update(s["end"] - s["start"])
            self.pending.remove(s)


def _run_ray(plan: BuildPlan, args: list[tuple], progress: _Progress) -> list[dict[str, Any]]:
    """Each range as a Ray task (`ray.init()` local unless `store.ray.address`)."""
    settings = {k: v for k, v in plan.ray.items() if v is not None}
    ray = start_ray(settings, "store.engine")
    task = ray.remote(num_cpus=plan.threads or 1, max_retries=int(settings.get("max_retries", 1)))(build_range)
    shared = ray.put(args[0][1])  # the sentences once in the object store, not once per task
    futures = [task.remote(a[0], shared, *a[2:]) for a in args]
    pending = list(futures)
    try:
        while pending:
            _, pending = ray.wait(pending, num_returns=len(pending), timeout=POLL_SECONDS)
            progress.poll()
        return [ray_result(ray, f) for f in futures]
    except ray.exceptions.RayTaskError as exc:
        raise StoreError(f"store.engine=ray: a worker failed: {str(exc).strip().splitlines()[-1]}; finished "
                         f"shards are kept in {progress.path}, re-run to compute the rest") from exc


def _run_submitit(plan: BuildPlan, args: list[tuple], progress: _Progress) -> list[dict[str, Any]]:
    """Each range as one task of a job array through submitit: SLURM where it runs (`store.submitit.
    cluster`: null/slurm), or `local` subprocesses (tests, one machine)."""
    try:
        import submitit
    except ImportError as exc:
        raise ConfigError("store.engine=submitit: submitit is not installed; pip install submitit") from exc
    settings = {k: v for k, v in plan.submitit.items() if v is not None}
    folder = Path(settings.pop("folder", None) or progress.path.parent / ".submitit" / progress.path.name)
    cluster = settings.pop("cluster", None)
    if cluster not in (None, "slurm", "local", "debug"):
        raise ConfigError(f"store.submitit.cluster: expected slurm, local or debug (null: detect), got '{cluster}'")
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    settings.setdefault("cpus_per_task", plan.threads or 1)
    settings.setdefault("timeout_min", 60)
    try:
        executor.update_parameters(**settings)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"store.submitit: {exc}") from exc
    jobs = executor.map_array(build_range, *zip(*args, strict=True))
    try:
        while not all(job.done() for job in jobs):
            time.sleep(POLL_SECONDS)
            progress.poll()
        progress.poll()
        return [job.result() for job in jobs]
    except Exception as exc:  # submitit's FailedJobError carries the worker's traceback as text
        if isinstance(exc, (StoreError, ConfigError)):
            raise
        lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
        raise StoreError(f"store.engine=submitit: a task failed: {lines[-1] if lines else exc}; its logs are in "
                         f"{folder}; finished shards are kept in {progress.path}, re-run to compute the rest") from exc


def merge_reports(reports: list[dict[str, Any]], source: NeuronSource) -> dict[str, int]:
    """Check that every worker loaded the driver's model (same fingerprint, sites and units) and
    return their summed extraction stats."""
    stats: dict[str, int] = {}
    driver = (source.fingerprint(), list(source.sites), dict(source.units))  # hashes the model files: once
    for i, rep in enumerate(reports):
        if (rep["fingerprint"], rep["sites"], rep["units"]) != driver:
            raise StoreError(f"store worker {i} (shards {rep['shards'][0]}..{rep['shards'][-1]}) loaded another "
                             "model than the driver (fingerprint, sites or units differ); are the model files "
                             "the same on every node?")
        for key, value in rep["stats"].items():
            stats[key] = stats.get(key, 0) + int(value)
    return stats
