"""`method.engine=ray`: the correlation statistics' map step as Ray tasks over groups of whole shards.

Each task opens the stores by path (an ActivationStore per model, in the worker), streams its
tokens block by block into a `Partial` (methods/moments.py) and returns it; the driver merges the
partials exactly, in shard order, as a balanced tree (deterministic for a given task split).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from neuroscope.clusters import ray_result, start_ray
from neuroscope.errors import ConfigError
from neuroscope.methods.moments import Partial, accumulate, merge_all, products_backend
from neuroscope.progress import stage

RAY_KEYS = ("address", "num_cpus", "tasks")


def source_spec(source: Any) -> tuple[Any, ...]:
    """A small picklable description a worker reopens: a store by path and sites; a wrapper of a store
    (a sentence-shifted source, methods/floors.py) as itself around its inner source's spec; anything
    else (in-memory arrays: tests, small studies) travels pickled as it is."""
    from neuroscope.store import ActivationStore

    if isinstance(source, ActivationStore):
        return ("store", str(source.path), list(source.sites))
    inner = getattr(source, "source", None)
    if inner is not None:
        shell = copy.copy(source)
        shell.source = None
        return ("wrapped", shell, source_spec(inner))
    return ("object", source)


def open_spec(spec: tuple[Any, ...]) -> Any:
    """The Source a `source_spec` describes, opened here (in a Ray worker)."""
    from neuroscope.store import ActivationStore

    kind = spec[0]
    if kind == "store":
        store = ActivationStore(spec[1])
        return store.view(spec[2]) if spec[2] != store.sites else store
    if kind == "wrapped":
        shell = copy.copy(spec[1])
        shell.source = open_spec(spec[2])
        return shell
    return spec[1]


def shard_bounds(source: Any, block_rows: int) -> np.ndarray:
    """[k + 1] token boundaries of the studied model's shards (a store's manifest), or of runs of
    `block_rows` tokens for a source without shards."""
    shards = getattr(source, "shards", None)
    if shards:
        return np.asarray([s["start"] for s in shards] + [shards[-1]["end"]], dtype=np.int64)
    return np.r_[np.arange(0, source.n_tokens, block_rows), source.n_tokens].astype(np.int64)


def token_groups(tokens: np.ndarray, bounds: np.ndarray, tasks: int) -> list[np.ndarray]:
    """`tokens` (sorted) cut into at most `tasks` runs of whole shards with about equal token counts;
    empty runs dropped."""
    cuts = np.searchsorted(tokens, bounds)  # token position of each shard boundary
    total = max(len(tokens), 1)
    group = np.minimum(cuts[:-1] * tasks // total, tasks - 1)  # each shard's task: by tokens before it
    edges = np.r_[0, np.flatnonzero(np.diff(group)) + 1, len(group)]
    groups = [tokens[cuts[a]:cuts[b]] for a, b in zip(edges[:-1], edges[1:], strict=True)]
    return [g for g in groups if len(g)]


def check_ray(settings: dict[str, Any] | None) -> dict[str, Any]:
    """`method.ray` checked: address (null: a local Ray), num_cpus (local only), tasks (null: one per
    shard, at most 4 per CPU)."""
    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(RAY_KEYS))
    if unknown:
        raise ConfigError(f"method.ray: unknown key(s) {unknown}; known: {list(RAY_KEYS)}")
    for key in ("num_cpus", "tasks"):
        value = settings.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"method.ray.{key}: expected a whole number >= 1 or null, got {value!r}")
    return settings


def check_pass(engine: str, ray: dict[str, Any] | None, products: str, device: str) -> None:
    """`method.engine`, `method.ray`, `method.products` and `method.device` checked (ConfigError naming the key)."""
    if engine not in ("local", "ray"):
        raise ConfigError(f"method.engine: expected local or ray, got '{engine}'")
    check_ray(ray)
    products_backend(products, device)


def remote_task(ray: Any, fn: Any, device: str) -> Any:
    """`fn` as a Ray remote function; one GPU per task when the products run on CUDA."""
    gpu = str(device).removeprefix("torch:").startswith("cuda")
    return ray.remote(num_gpus=1)(fn) if gpu else ray.remote(fn)


def as_finished(ray: Any, fn: Any, device: str, calls: list[tuple[Any, tuple[Any, ...]]]) -> Iterator[tuple[Any, Any]]:
    """Submit `fn(*args)` as a Ray task for each (key, args) of `calls`; yield (key, result) in the
    order the tasks finish (a worker's error raised as itself, `ray_result`)."""
    remote = remote_task(ray, fn, device)
    refs = {remote.remote(*args): key for key, args in calls}
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        yield refs[done[0]], ray_result(ray, done[0])


def map_task(specs: list[tuple[Any, ...]], tokens: np.ndarray, block_rows: int, products: str,
             device: str) -> Partial:
    """One Ray task: open the sources, stream `tokens`, return the partial sums."""
    return accumulate([open_spec(s) for s in specs], tokens, block_rows, products_backend(products, device))


def ray_partial(sources: Sequence[Any], tokens: np.ndarray, block_rows: int, products: str, device: str,
                settings: dict[str, Any], label: str = "correlation pass") -> Partial:
    """The merged partial of `tokens` over all sources, mapped as Ray tasks over groups of shards."""
    settings = check_ray(settings)
    products_backend(products, device)  # a bad products/device is a ConfigError here, not in a worker
    specs = [source_spec(s) for s in sources]
    ray = start_ray(settings, "method.engine")
    bounds = shard_bounds(sources[0], block_rows)
    tasks = settings.get("tasks") or max(1, min(len(bounds) - 1, 4 * int(ray.cluster_resources().get("CPU", 1))))
    groups = token_groups(tokens, bounds, tasks)
    shared = ray.put(specs)
    parts: list[Partial | None] = [None] * len(groups)
    with stage(f"{label} (ray, {len(groups)} tasks)", total=len(groups)) as step:
        calls = [(i, (shared, g, block_rows, products, device)) for i, g in enumerate(groups)]
        for i, part in as_finished(ray, map_task, device, calls):
            parts[i] = part
            step()
    return merge_all([p for p in parts if p is not None])
