"""`method.tile`: maxcorr / mincorr for neuron counts whose Σ_XY does not fit in memory.

For each other model Y and each row of tiles (X neurons i0..i1, `tile` of them) one streamed pass
reads X's tile columns and all of Y block by block and accumulates the float64 co-moments
Σ (x - s)(y - t)ᵀ of that row ([tile, ny]) with the means and variances; the row is then cut into
[tile, tile] covariance tiles, each written to disk (temp + rename) in a temp folder, the row freed,
and the best partner of every X neuron (max |ρ| and its argmax) updated tile by tile from disk.
Never an [nx, ny] matrix in memory: a pass holds one tile row and one block, the reduction one
tile. The folder is removed at the end. docs/scale/statistics.md says why a pass per tile row.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neuroscope.clusters import ray_result, start_ray
from neuroscope.errors import ConfigError
from neuroscope.files import atomic_path
from neuroscope.methods.base import NeuronRanking
from neuroscope.methods.correlation import DEAD, aggregate
from neuroscope.methods.mapreduce import (
    check_ray,
    open_spec,
    remote_task,
    source_spec,
)
from neuroscope.methods.moments import Products, products_backend
from neuroscope.progress import stage

Row = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[Path]]  # mean, std of the X tile and of Y; tiles
BLOCK_BYTES = 256 * 2**20  # a pass's float64 block of [rows, tile + ny] stays under this
FULL_MATRIX_METHODS = ("regcorr", "cca", "svcca")


@dataclass
class TiledPair:
    """What a tiled pass leaves of X against one other model Y: moments and each X neuron's best partner."""

    n: int
    mean_x: np.ndarray  # [nx]
    mean_y: np.ndarray  # [ny]
    std_x: np.ndarray  # [nx]
    std_y: np.ndarray  # [ny]
    best: np.ndarray  # [nx] max_j |ρ(x_i, y_j)|
    partner: np.ndarray  # [nx] the j reaching it
    tile: int
    y_neurons: list[str] = field(default_factory=list)
    model: str = ""
    store: str = ""
    heldout: None = None  # no held-out statistics in tiled mode (they need whole matrices)

    def alive_x(self) -> np.ndarray:
        return self.std_x > DEAD * (1 + np.abs(self.mean_x))

    def alive_y(self) -> np.ndarray:
        return self.std_y > DEAD * (1 + np.abs(self.mean_y))


def check_tile(tile: Any, method: str, baseline: Any = False) -> int | None:
    """`method.tile` as neurons per tile (None: off); a ConfigError for a bad value, or for a method or
    setting that needs whole covariance matrices."""
    if tile is None:
        return None
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 1:
        raise ConfigError(f"method.tile: expected a whole number of neurons per tile >= 1, or null, got {tile!r}")
    if method in FULL_MATRIX_METHODS:
        raise ConfigError(f"method.tile: {method} needs the full matrices Σ_YY and Σ_XX (a linear map or "
                          "canonical directions over all neurons), which tiling never forms; tiled statistics "
                          "serve maxcorr and mincorr only: unset method.tile")
    if baseline:
        raise ConfigError("method.baseline: the rotation baseline rotates the whole Σ_YY and Σ_XY, which "
                          "tiling never forms; with method.tile set use method.baseline=false")
    return tile


def tiled_ranking(pairs: list[TiledPair], how: str, seed: int = 0) -> NeuronRanking:
    """maxcorr (`how`=max) or mincorr (min) over the other models from the tiled best partners."""
    scores = aggregate([p.best for p in pairs], how)
    return NeuronRanking.from_scores(scores, seed=seed, correlation=tiled_detail(pairs))


def tiled_pairs(x: Any, others: Sequence[Any], tokens: np.ndarray | None, tile: int, block_rows: int = 8192,
                products: str = "float64", device: str = "cpu", folder: str | Path | None = None,
                engine: str = "local", ray: dict[str, Any] | None = None) -> list[TiledPair]:
    """Best partners of every X neuron in each other model, Σ_XY computed tile row by tile row
    (module docstring); tiles written under `folder` (default: a temp folder beside X's store).
    `engine`=ray: each tile row's pass is a Ray task writing its tiles (`folder` must then be
    reachable by the workers: on a cluster, a shared file system like the stores')."""
    for y in others:
        if y.n_tokens != x.n_tokens:
            raise ConfigError(f"method.others: a model's store has {y.n_tokens} tokens, the studied model's "
                              f"{x.n_tokens}; every model must see the same words")
    backend = products_backend(products, device)
    idx = np.arange(x.n_tokens) if tokens is None else np.asarray(tokens, dtype=np.int64)
    if len(idx) < 2:
        raise ConfigError("correlation needs at least 2 tokens")
    root = Path(folder) if folder is not None else _temp_root(x)
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="neuroscope-tiles-", dir=root))
    nx = x.n_neurons
    jobs = [(m, np.arange(i0, min(i0 + tile, nx))) for m in range(len(others)) for i0 in range(0, nx, tile)]
    out = [TiledPair(len(idx), np.zeros(nx), np.zeros(y.n_neurons), np.zeros(nx), np.zeros(y.n_neurons),
                     np.zeros(nx), np.zeros(nx, dtype=np.int64), tile) for y in others]
    try:
        for m in range(len(others)):
            (work / f"model-{m + 1}").mkdir()
        if engine == "ray":
            rows = _ray_rows(x, others, idx, tile, block_rows, products, device, work, jobs, ray or {})
        else:
            rows = _local_rows(x, others, idx, tile, block_rows, backend, work, jobs)
        with stage(f"tiled correlation ({len(jobs)} tile rows)", total=len(jobs)) as step:
            for m, cols, (mx, sx, my, sy, paths) in rows:  # each row reduced tile by tile as it is done
                p = out[m]
                p.mean_x[cols], p.std_x[cols], p.mean_y, p.std_y = mx, sx, my, sy
                p.best[cols], p.partner[cols] = _reduce_row(paths, sx, mx, sy, my)
                step()
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _temp_root(x: Any) -> Path:
    """The store root's tmp folder for a store, else the system temp folder."""
    path = getattr(x, "path", None)
    return Path(path).parent / "tmp" if path is not None else Path(tempfile.gettempdir())


def _block_rows(tile: int, nx: int, ny: int, block_rows: int) -> int:
    """Rows per block so that a [rows, tile + ny] float64 block stays under BLOCK_BYTES."""
    return max(16, min(block_rows, BLOCK_BYTES // ((min(tile, nx) + ny) * 8)))


def _local_rows(x: Any, others: Sequence[Any], idx: np.ndarray, tile: int, block_rows: int, backend: Products,
                work: Path, jobs: list[tuple[int, np.ndarray]]) -> Iterator[tuple[int, np.ndarray, Row]]:
    """The tile rows' passes in this process, one after another."""
    for m, cols in jobs:
        y = others[m]
        rows = _block_rows(tile, x.n_neurons, y.n_neurons, block_rows)
        yield m, cols, _row_pass(x, y, cols, idx, tile, rows, backend, work / f"model-{m + 1}")


def _row_task(x_spec: tuple[Any, ...], y_spec: tuple[Any, ...], cols: np.ndarray, idx: np.ndarray, tile: int,
              rows: int, products: str, device: str, folder: str) -> Row:
    """One Ray task: open X and Y by path, run one tile row's pass, write its tiles."""
    x, y = open_spec(x_spec), open_spec(y_spec)
    return _row_pass(x, y, cols, idx, tile, rows, products_backend(products, device), Path(folder))


def _ray_rows(x: Any, others: Sequence[Any], idx: np.ndarray, tile: int, block_rows: int, products: str,
              device: str, work: Path, jobs: list[tuple[int, np.ndarray]],
              settings: dict[str, Any]) -> Iterator[tuple[int, np.ndarray, Row]]:
    """The tile rows' passes as Ray tasks; yields each row as its task finishes."""
    ray = start_ray(check_ray(settings), "method.engine")
    specs = [source_spec(s) for s in [x, *others]]
    shared_idx = ray.put(idx)
    remote = remote_task(ray, _row_task, device)
    refs = {}
    for m, cols in jobs:
        rows = _block_rows(tile, x.n_neurons, others[m].n_neurons, block_rows)
        ref = remote.remote(specs[0], specs[m + 1], cols, shared_idx, tile, rows, products, device,
                            str(work / f"model-{m + 1}"))
        refs[ref] = (m, cols)
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        m, cols = refs[done[0]]
        yield m, cols, ray_result(ray, done[0])


def _row_pass(x: Any, y: Any, cols: np.ndarray, idx: np.ndarray, tile: int, rows: int, backend: Products,
              folder: Path) -> Row:
    """One streamed pass: X's `cols` against all of Y; writes the row's covariance tiles, returns
    (mean, std of the X tile, mean, std of Y, tile paths in column order)."""
    acc: Any = None
    for lo in range(0, len(idx), rows):
        block = idx[lo:lo + rows]
        bx = x.read(cols, tokens=block).astype(np.float64)
        by = y.read(None, tokens=block).astype(np.float64)
        if acc is None:
            shift_x, shift_y = bx.mean(0), by.mean(0)
            sum_x, sq_x, sum_y, sq_y = np.zeros(len(cols)), np.zeros(len(cols)), np.zeros(by.shape[1]), np.zeros(by.shape[1])
            acc = backend.zeros((len(cols), by.shape[1]))
        bx -= shift_x
        by -= shift_y
        sum_x += bx.sum(0)
        sum_y += by.sum(0)
        sq_x += np.einsum("ij,ij->j", bx, bx)
        sq_y += np.einsum("ij,ij->j", by, by)
        backend.add_product(acc, backend.put(bx), backend.put(by))
        del bx, by
    n = len(idx)
    mx, my = sum_x / n, sum_y / n
    cov = backend.host(acc)
    del acc
    cov /= n
    cov -= np.outer(mx, my)
    paths = []
    for j0 in range(0, cov.shape[1], tile):
        path = folder / f"x{int(cols[0]):07d}-y{j0:07d}.npy"
        with atomic_path(path, suffix=".npy") as tmp:
            np.save(tmp, cov[:, j0:j0 + tile])
        paths.append(path)
    del cov
    std_x = np.sqrt(np.clip(sq_x / n - mx * mx, 0.0, None))
    std_y = np.sqrt(np.clip(sq_y / n - my * my, 0.0, None))
    return shift_x + mx, std_x, shift_y + my, std_y, paths


def _reduce_row(paths: list[Path], sx: np.ndarray, mx: np.ndarray, sy: np.ndarray,
                my: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best |ρ| and its column for a tile row, one tile from disk at a time (ties: the first column)."""
    sx = np.where(sx > DEAD * (1 + np.abs(mx)), sx, np.inf)
    sy = np.where(sy > DEAD * (1 + np.abs(my)), sy, np.inf)
    best = np.full(len(sx), -1.0)
    partner = np.zeros(len(sx), dtype=np.int64)
    j0 = 0
    for path in paths:
        cov = np.load(path)
        r = np.clip(np.abs(cov / sx[:, None] / sy[None, j0:j0 + cov.shape[1]]), 0.0, 1.0)
        j = r.argmax(1)
        top = r[np.arange(len(j)), j]
        better = top > best
        best[better], partner[better] = top[better], j[better] + j0
        j0 += cov.shape[1]
        path.unlink()
    return best, partner


def tiled_detail(pairs: list[TiledPair], x_neurons: list[str] | None = None) -> dict[str, Any]:
    """The `correlation` block of a tiled maxcorr / mincorr: mean maxcorr per model and overall,
    each X neuron's best partner; SVCCA and CKA need whole matrices (None), no noise floors."""
    r = np.stack([p.best for p in pairs])  # [models, nx]
    which = r.argmax(0)
    alive = pairs[0].alive_x()
    sims = [{"mean_maxcorr": float(p.best[alive].mean()) if alive.any() else 0.0, "mean_cca": None,
             "linear_cka": None} for p in pairs]
    names = x_neurons or [str(i) for i in range(r.shape[1])]
    partners = {}
    for i in range(r.shape[1]):
        m = int(which[i])
        j = int(pairs[m].partner[i])
        y_names = pairs[m].y_neurons
        partners[names[i]] = {"model": m + 1, "neuron": y_names[j] if y_names else str(j), "r": float(r[m, i])}
    mean = {"mean_maxcorr": float(np.mean([s["mean_maxcorr"] for s in sims])), "mean_cca": None, "linear_cka": None}
    return {"similarity": {**mean, "per_model": sims}, "partners": partners,
            "tiled": {"tile": pairs[0].tile, "note": "Σ_XY computed in tiles (method.tile): no SVCCA, CKA or "
                      "noise floors, which need whole covariance matrices"}}


def write_array_store(path: str | Path, x: np.ndarray, shard_rows: Sequence[int], site: str = "units") -> Path:
    """An activation store (format 1) holding `x` [tokens, units] float32 in shards of the given
    row counts (cycled), one token per sentence: synthetic stores for benches and tests."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=False)
    shards, start, k = [], 0, 0
    while start < len(x):
        end = min(len(x), start + int(shard_rows[k % len(shard_rows)]))
        folder = path / f"shard-{k:05d}"
        folder.mkdir()
        np.save(folder / f"{site}.npy", np.ascontiguousarray(x[start:end], dtype=np.float32))
        shards.append({"start": start, "end": end, "dir": folder.name})
        start, k = end, k + 1
    np.save(path / "offsets.npy", np.arange(len(x) + 1, dtype=np.int64))
    manifest = {"format_version": 1, "sites": [site], "units": {site: int(x.shape[1])}, "dtype": "float32",
                "n_tokens": int(len(x)), "shards": shards}
    (path / "manifest.json").write_text(json.dumps(manifest))
    return path
