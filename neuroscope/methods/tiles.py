"""`method.tile`: maxcorr / mincorr for neuron counts whose Σ_XY does not fit in memory.

For each other model Y and each row of tiles (X neurons i0..i1, `tile` of them) one streamed pass
reads X's tile columns and all of Y block by block and accumulates the float64 co-moments
Σ (x - s)(y - t)ᵀ of that row ([tile, ny]) with the means and variances; the row is then cut into
[tile, tile] covariance tiles, each written to disk (temp + rename) in a temp folder, the row freed,
and the best partner of every X neuron (max |ρ| and its argmax) updated tile by tile from disk.
Never an [nx, ny] matrix in memory: a pass holds one tile row and one block, the reduction one
tile. The folder is removed at the end. docs/scale/statistics.md says why a pass per tile row.

The rotation baseline (methods/floors.py) rotates Y by a Haar rotation, which needs all of Σ_YY and an
[ny, ny] matrix. Tiled, Y is rotated by a fast structured rotation instead (`FastRotation`: three rounds
of a random permutation, random sign flips and the orthonormal discrete Hartley transform, as in the
subsampled randomized Hadamard transform): orthogonal, every rotated unit mixing all of Y's neurons,
applied to a [rows, ny] array in O(rows·ny·log ny) with no matrix. One extra streamed pass over Y per
draw gives the rotated units' variances; each tile row's pass rotates the row [tile, ny] it already
holds. Memory stays one tile row.
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

from neuroscope.clusters import start_ray
from neuroscope.errors import ConfigError
from neuroscope.files import atomic_path
from neuroscope.methods.base import NeuronRanking
from neuroscope.methods.correlation import DEAD, aggregate
from neuroscope.methods.floors import ROTATION_STREAM, rotated_std, rotation_summary
from neuroscope.methods.mapreduce import (
    as_finished,
    check_ray,
    open_spec,
    source_spec,
)
from neuroscope.methods.moments import Products, products_backend
from neuroscope.progress import stage

# mean, std of the X tile and of Y; tile paths; [draws, tile] best |ρ| against each rotated Y (None: no baseline)
Row = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[Path], np.ndarray | None]
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
    rotated: np.ndarray | None = None  # [draws, nx] best |ρ| against the rotated Y (the rotation baseline)
    rotation_seed: int | None = None  # the seed of those rotations (this model's: the pass's seed + its index)

    def alive_x(self) -> np.ndarray:
        return self.std_x > DEAD * (1 + np.abs(self.mean_x))

    def alive_y(self) -> np.ndarray:
        return self.std_y > DEAD * (1 + np.abs(self.mean_y))


def check_tile(tile: Any, method: str) -> int | None:
    """`method.tile` as neurons per tile (None: off); a ConfigError for a bad value, or for a method
    that needs whole covariance matrices."""
    if tile is None:
        return None
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 1:
        raise ConfigError(f"method.tile: expected a whole number of neurons per tile >= 1, or null, got {tile!r}")
    if method in FULL_MATRIX_METHODS:
        raise ConfigError(f"method.tile: {method} needs the full matrices Σ_YY and Σ_XX (a linear map or "
                          "canonical directions over all neurons), which tiling never forms; tiled statistics "
                          "serve maxcorr and mincorr only: unset method.tile")
    return tile


def tiled_ranking(pairs: list[TiledPair], how: str, seed: int = 0, baseline: bool = True) -> NeuronRanking:
    """maxcorr (`how`=max) or mincorr (min) over the other models from the tiled best partners; with
    `baseline` and rotations in the pass, the rotation baseline's keys (as floor_detail's)."""
    scores = aggregate([p.best for p in pairs], how)
    detail = tiled_detail(pairs)
    if baseline and all(p.rotated is not None for p in pairs):
        rot = rotation_summary(np.stack([p.best for p in pairs]), np.stack([p.rotated for p in pairs]),
                               pairs[0].alive_x(), how)
        mean = rot.pop("mean_maxcorr")
        mean["rotation"] = "fast structured (3 rounds of permutation, sign flips, Hartley transform): tiled"
        mean["seed"] = pairs[0].rotation_seed
        detail["similarity_baseline"] = {"mean_maxcorr": mean}
        detail.update(rot)
    return NeuronRanking.from_scores(scores, seed=seed, correlation=detail)


def tiled_pairs(x: Any, others: Sequence[Any], tokens: np.ndarray | None, tile: int, block_rows: int = 8192,
                products: str = "float64", device: str = "cpu", folder: str | Path | None = None,
                engine: str = "local", ray: dict[str, Any] | None = None, baseline_draws: int = 0,
                seed: int = 0) -> list[TiledPair]:
    """Best partners of every X neuron in each other model, Σ_XY computed tile row by tile row
    (module docstring); tiles written under `folder` (default: a temp folder beside X's store).
    `engine`=ray: each tile row's pass is a Ray task writing its tiles (`folder` must then be
    reachable by the workers: on a cluster, a shared file system like the stores').
    `baseline_draws` > 0: the rotation baseline with `baseline_draws` fast rotations of each Y (model m's
    drawn from `seed` + m, as the untiled baseline), one more pass over Y per draw."""
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
    draws = max(0, int(baseline_draws))
    out = [TiledPair(len(idx), np.zeros(nx), np.zeros(y.n_neurons), np.zeros(nx), np.zeros(y.n_neurons),
                     np.zeros(nx), np.zeros(nx, dtype=np.int64), tile,
                     rotated=np.zeros((draws, nx)) if draws else None, rotation_seed=seed + m if draws else None)
           for m, y in enumerate(others)]
    try:
        for m in range(len(others)):
            (work / f"model-{m + 1}").mkdir()
        cluster = start_ray(check_ray(ray), "method.engine") if engine == "ray" else None
        variances = _variances(others, idx, block_rows, draws, seed, cluster, device)
        jobs_with = [(m, cols, (seed + m, variances[m])) for m, cols in jobs]
        if cluster is not None:
            rows = _ray_rows(cluster, x, others, idx, tile, block_rows, products, device, work, jobs_with)
        else:
            rows = _local_rows(x, others, idx, tile, block_rows, backend, work, jobs_with)
        with stage(f"tiled correlation ({len(jobs)} tile rows)", total=len(jobs)) as step:
            for m, cols, (mx, sx, my, sy, paths, rotated) in rows:  # each row reduced tile by tile as it is done
                p = out[m]
                p.mean_x[cols], p.std_x[cols], p.mean_y, p.std_y = mx, sx, my, sy
                p.best[cols], p.partner[cols] = _reduce_row(paths, sx, mx, sy, my)
                if rotated is not None:
                    p.rotated[:, cols] = rotated
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


Rotation = tuple[int, list[np.ndarray]]  # (the model's rotation seed, [draws] of [ny] rotated Y variances)


def _local_rows(x: Any, others: Sequence[Any], idx: np.ndarray, tile: int, block_rows: int, backend: Products,
                work: Path, jobs: list[tuple[int, np.ndarray, Rotation]]) -> Iterator[tuple[int, np.ndarray, Row]]:
    """The tile rows' passes in this process, one after another."""
    for m, cols, rotation in jobs:
        y = others[m]
        rows = _block_rows(tile, x.n_neurons, y.n_neurons, block_rows)
        yield m, cols, _row_pass(x, y, cols, idx, tile, rows, backend, work / f"model-{m + 1}", rotation)


def _row_task(x_spec: tuple[Any, ...], y_spec: tuple[Any, ...], cols: np.ndarray, idx: np.ndarray, tile: int,
              rows: int, products: str, device: str, folder: str, rotation: Rotation) -> Row:
    """One Ray task: open X and Y by path, run one tile row's pass, write its tiles."""
    x, y = open_spec(x_spec), open_spec(y_spec)
    return _row_pass(x, y, cols, idx, tile, rows, products_backend(products, device), Path(folder), rotation)


def _ray_rows(cluster: Any, x: Any, others: Sequence[Any], idx: np.ndarray, tile: int, block_rows: int,
              products: str, device: str, work: Path,
              jobs: list[tuple[int, np.ndarray, Rotation]]) -> Iterator[tuple[int, np.ndarray, Row]]:
    """The tile rows' passes as Ray tasks; yields each row as its task finishes."""
    specs = [source_spec(s) for s in [x, *others]]
    shared_idx = cluster.put(idx)
    calls = []
    for m, cols, rotation in jobs:
        rows = _block_rows(tile, x.n_neurons, others[m].n_neurons, block_rows)
        calls.append(((m, cols), (specs[0], specs[m + 1], cols, shared_idx, tile, rows, products, device,
                                  str(work / f"model-{m + 1}"), rotation)))
    for (m, cols), row in as_finished(cluster, _row_task, device, calls):
        yield m, cols, row


class FastRotation:
    """A random orthogonal map of Y's neuron space, V -> V R for rows V [k, ny], never forming R:
    three rounds of (permute the columns, flip their signs, orthonormal discrete Hartley transform
    along them). Drawn from (seed, draw) alone, so every Ray task rebuilds the same rotation."""

    ROUNDS = 3

    def __init__(self, ny: int, seed: int, draw: int) -> None:
        rng = np.random.default_rng([seed, ROTATION_STREAM, draw])
        self.ny = ny
        self.steps = [(rng.permutation(ny), rng.choice(np.array([-1.0, 1.0]), ny)) for _ in range(self.ROUNDS)]

    def __call__(self, v: np.ndarray, rows: int = 64) -> np.ndarray:
        """[k, ny] float64: v R."""
        out = np.empty(v.shape, dtype=np.float64)
        for lo, u in self.chunks(v, rows):
            out[lo:lo + len(u)] = u
        return out

    def chunks(self, v: np.ndarray, rows: int = 64) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, [<= rows, ny] float64 rows of v R) for consecutive chunks of v: bounded
        temporaries; each chunk is valid until the next is drawn."""
        buf = np.empty((min(rows, len(v)), self.ny))
        for lo in range(0, len(v), rows):
            u = np.asarray(v[lo:lo + rows], dtype=np.float64)
            b = buf[:len(u)]
            for perm, signs in self.steps:
                np.take(u, perm, axis=1, out=b)
                b *= signs
                u = hartley(b)
            yield lo, u


def hartley(u: np.ndarray) -> np.ndarray:
    """The orthonormal discrete Hartley transform of each row of u [k, n] (any n): H_k = Σ_j u_j cas(2πjk/n)
    / √n with cas = cos + sin; orthogonal and its own inverse. From a real FFT: H_k = Re F_k - Im F_k."""
    n = u.shape[1]
    f = np.fft.rfft(u, axis=1)  # [k, n // 2 + 1]
    m = f.shape[1]
    h = np.empty(u.shape, dtype=np.float64)
    np.subtract(f.real, f.imag, out=h[:, :m])
    if n > m:  # F_{n-k} = conj(F_k): H_{n-k} = Re F_k + Im F_k for k = 1 .. n - m
        np.add(f.real[:, 1:n - m + 1], f.imag[:, 1:n - m + 1], out=h[:, m:][:, ::-1])
    h *= 1.0 / np.sqrt(n)
    return h


def _rotated_variances(y: Any, idx: np.ndarray, rows: int, seed: int, draw: int) -> np.ndarray:
    """[ny] variances of the rotated Y of one draw (`FastRotation(ny, seed, draw)`), from one streamed
    pass over Y: each block is centred on the first block's mean, rotated, and its sums and sums of
    squares added in float64."""
    rotate = FastRotation(y.n_neurons, seed, draw)
    total, squares, shift = np.zeros(y.n_neurons), np.zeros(y.n_neurons), None
    for lo in range(0, len(idx), rows):
        by = y.read(None, tokens=idx[lo:lo + rows]).astype(np.float64)  # [rows, ny]
        if shift is None:
            shift = by.mean(0)
        by -= shift
        for _, u in rotate.chunks(by):
            total += u.sum(0)
            squares += np.einsum("ij,ij->j", u, u)
        del by
    n = len(idx)
    mean = total / n
    return np.clip(squares / n - mean * mean, 0.0, None)


def _variance_task(y_spec: tuple[Any, ...], idx: np.ndarray, rows: int, seed: int, draw: int) -> np.ndarray:
    """One Ray task: the rotated variances of one other model and draw."""
    return _rotated_variances(open_spec(y_spec), idx, rows, seed, draw)


def _variances(others: Sequence[Any], idx: np.ndarray, block_rows: int, draws: int, seed: int, cluster: Any,
               device: str) -> list[list[np.ndarray]]:
    """Per other model m, per draw, the rotated variances of Y_m (rotations from seed + m); as Ray tasks
    on `cluster` when given."""
    out: list[list[Any]] = [[None] * draws for _ in others]
    if not draws:
        return out
    calls = [((m, d), (y, _block_rows(0, 0, y.n_neurons, block_rows), seed + m, d))  # blocks of [rows, ny]
             for m, y in enumerate(others) for d in range(draws)]
    with stage(f"rotation baseline variances ({len(calls)} passes)", total=len(calls)) as step:
        if cluster is None:
            done = (((m, d), _rotated_variances(y, idx, r, s, d)) for (m, d), (y, r, s, _) in calls)
        else:
            shared_idx = cluster.put(idx)
            done = as_finished(cluster, _variance_task, device, [(key, (source_spec(y), shared_idx, r, s, d))
                                                                for key, (y, r, s, d) in calls])
        for (m, d), var in done:
            out[m][d] = var
            step()
    return out


def _rotated_row_best(cov: np.ndarray, sx: np.ndarray, rotation: Rotation) -> np.ndarray | None:
    """[draws, rows] each X neuron's best |ρ| against the rotated Y of each draw, from a tile row's
    covariances `cov` [rows, ny] (cov(x, y R) = cov R) and the X tile's std `sx` (inf where constant);
    as rotated_best."""
    seed, variances = rotation
    if not variances:
        return None
    out = np.zeros((len(variances), cov.shape[0]))
    for d, var in enumerate(variances):
        inv_sy = 1.0 / rotated_std(var)
        for lo, c in FastRotation(cov.shape[1], seed, d).chunks(cov):  # c [rows, ny]: cov(x, y R)
            np.abs(c, out=c)
            c *= inv_sy[None, :]
            out[d, lo:lo + len(c)] = np.minimum(c.max(1) / sx[lo:lo + len(c)], 1.0)
    return out


def _row_pass(x: Any, y: Any, cols: np.ndarray, idx: np.ndarray, tile: int, rows: int, backend: Products,
              folder: Path, rotation: Rotation = (0, [])) -> Row:
    """One streamed pass: X's `cols` against all of Y; writes the row's covariance tiles, returns
    (mean, std of the X tile, mean, std of Y, tile paths in column order, the row's best |ρ| against
    each rotated Y when `rotation` holds variances)."""
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
    std_x = np.sqrt(np.clip(sq_x / n - mx * mx, 0.0, None))
    std_y = np.sqrt(np.clip(sq_y / n - my * my, 0.0, None))
    rotated = _rotated_row_best(cov, np.where(std_x > DEAD * (1 + np.abs(shift_x + mx)), std_x, np.inf), rotation)
    paths = []
    for j0 in range(0, cov.shape[1], tile):
        path = folder / f"x{int(cols[0]):07d}-y{j0:07d}.npy"
        with atomic_path(path, suffix=".npy") as tmp:
            np.save(tmp, cov[:, j0:j0 + tile])
        paths.append(path)
    del cov
    return shift_x + mx, std_x, shift_y + my, std_y, paths, rotated


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
                      "held-out floors, which need whole covariance matrices; the rotation baseline uses a fast "
                      "structured rotation instead of a Haar one"}}


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
