"""Partial sums of the correlation statistics over one token set, and their exact merge.

A `Partial` holds, for the studied model X (index 0) and every other model Y_j over the same n
tokens, float64 sums of the data taken about a centre c (any point: the first block's mean while
streaming, the merged mean after a merge): S = Σ u_i, G = Σ u_i u_iᵀ, A = Σ a_i, Q = Σ a_i²,
V = Σ a_i u_i with u_i = z_i - c and a_i = |u_i|², and per pair C = Σ u_i v_iᵀ, P = Σ a_i b_i,
AY = Σ a_i v_i, BX = Σ b_i u_i (v, b: the same for Y). `recentre` moves every sum to another centre
exactly (the binomial expansions below), so two partials merge by moving both to their common mean
and adding: Chan et al.'s pairwise update, generalised to co-moments and to the fourth-order terms
the unbiased HSIC needs. docs/scale/statistics.md derives the formulas.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from neuroscope.devices import torch_device
from neuroscope.errors import ConfigError


@dataclass
class Partial:
    """Sums over n tokens about per-model centres (X first, then each Y); see the module docstring."""

    n: int
    centre: list[np.ndarray]  # c_k [d_k]
    first: list[np.ndarray]  # S_k = Σ u_i [d_k]
    gram: list[np.ndarray]  # G_k = Σ u_i u_iᵀ [d_k, d_k]
    norm2: list[float]  # A_k = Σ |u_i|²
    norm4: list[float]  # Q_k = Σ |u_i|⁴
    third: list[np.ndarray]  # V_k = Σ |u_i|² u_i [d_k]
    cross: list[np.ndarray]  # C_j = Σ u_i v_iᵀ [dx, dy_j], u of X, v of Y_j
    prod: list[float]  # P_j = Σ a_i b_i
    bx: list[np.ndarray]  # BX_j = Σ b_i u_i [dx]
    ay: list[np.ndarray]  # AY_j = Σ a_i v_i [dy_j]

    def means(self) -> list[np.ndarray]:
        """Per model the mean over the partial's tokens."""
        return [c + s / self.n for c, s in zip(self.centre, self.first, strict=True)]


def empty_partial(dims: Sequence[int], centre: Sequence[np.ndarray]) -> Partial:
    """A partial of 0 tokens about `centre` for models of `dims` neurons (X first)."""
    dx, dys = dims[0], dims[1:]
    return Partial(0, [np.asarray(c, dtype=np.float64) for c in centre], [np.zeros(d) for d in dims],
                   [np.zeros((d, d)) for d in dims], [0.0] * len(dims), [0.0] * len(dims),
                   [np.zeros(d) for d in dims], [np.zeros((dx, d)) for d in dys], [0.0] * len(dys),
                   [np.zeros(dx) for _ in dys], [np.zeros(d) for d in dys])


def recentre(p: Partial, centre: Sequence[np.ndarray]) -> Partial:
    """The same sums about new centres c' (u' = u - δ, δ = c' - c): exact expansions in S, G, A, V, C."""
    deltas = [np.asarray(c, dtype=np.float64) - old for c, old in zip(centre, p.centre, strict=True)]
    n = p.n
    first, gram, norm2, norm4, third = [], [], [], [], []
    for d, s, g, a, q, v in zip(deltas, p.first, p.gram, p.norm2, p.norm4, p.third, strict=True):
        dd, ds, gd = float(d @ d), float(d @ s), g @ d
        first.append(s - n * d)
        gram.append(g - np.outer(d, s) - np.outer(s, d) + n * np.outer(d, d))
        norm2.append(a - 2.0 * ds + n * dd)
        third.append(v - d * a - 2.0 * gd + 2.0 * d * ds + dd * s - n * dd * d)
        norm4.append(q + 4.0 * float(d @ gd) + n * dd * dd - 4.0 * float(d @ v) + 2.0 * dd * a - 4.0 * dd * ds)
    dx, sx, ax_ = deltas[0], p.first[0], p.norm2[0]
    dxx, dxs = float(dx @ dx), float(dx @ sx)
    cross, prod, bx, ay = [], [], [], []
    for j in range(len(p.cross)):
        e, t, b = deltas[j + 1], p.first[j + 1], p.norm2[j + 1]
        c = p.cross[j]
        ee, et = float(e @ e), float(e @ t)
        ce, ctd = c @ e, c.T @ dx
        cross.append(c - np.outer(dx, t) - np.outer(sx, e) + n * np.outer(dx, e))
        ay.append(p.ay[j] - e * ax_ - 2.0 * ctd + 2.0 * e * dxs + dxx * t - n * dxx * e)
        bx.append(p.bx[j] - dx * b - 2.0 * ce + 2.0 * dx * et + ee * sx - n * ee * dx)
        prod.append(p.prod[j] - 2.0 * float(e @ p.ay[j]) + ee * ax_ - 2.0 * float(dx @ p.bx[j])
                    + 4.0 * float(dx @ ce) - 2.0 * ee * dxs + dxx * b - 2.0 * dxx * et + n * dxx * ee)
    return Partial(n, [np.asarray(c, dtype=np.float64).copy() for c in centre], first, gram, norm2, norm4, third,
                   cross, prod, bx, ay)


def merge(a: Partial, b: Partial) -> Partial:
    """The partial of the union of two disjoint token sets: both moved to the pooled mean, then added."""
    if a.n == 0:
        return b
    if b.n == 0:
        return a
    n = a.n + b.n
    pooled = [ma + (mb - ma) * (b.n / n) for ma, mb in zip(a.means(), b.means(), strict=True)]
    ra, rb = recentre(a, pooled), recentre(b, pooled)

    def add(xs: list[Any], ys: list[Any]) -> list[Any]:
        return [x + y for x, y in zip(xs, ys, strict=True)]

    return Partial(n, pooled, add(ra.first, rb.first), add(ra.gram, rb.gram), add(ra.norm2, rb.norm2),
                   add(ra.norm4, rb.norm4), add(ra.third, rb.third), add(ra.cross, rb.cross),
                   add(ra.prod, rb.prod), add(ra.bx, rb.bx), add(ra.ay, rb.ay))


def merge_all(parts: Sequence[Partial]) -> Partial:
    """Merge partials pairwise as a balanced tree, in their order (deterministic; error grows as log k)."""
    if not parts:
        raise ConfigError("correlation needs at least 2 tokens; no token range held any")
    level = list(parts)
    while len(level) > 1:
        level = [merge(level[i], level[i + 1]) if i + 1 < len(level) else level[i] for i in range(0, len(level), 2)]
    return level[0]


class Products:
    """The per-block matrix products (Σ uᵀu, Σ uᵀv) on the host with NumPy: accumulators are float64
    arrays, each block's product in `dtype` (float64 exact, float32 ~2x faster)."""

    casts_into_out = True  # put(block, out) casts into the caller's reused buffer

    def __init__(self, dtype: str) -> None:
        self.dtype = np.dtype(dtype)

    def zeros(self, shape: tuple[int, int]) -> Any:
        return np.zeros(shape)

    def put(self, block: np.ndarray, out: np.ndarray | None = None) -> Any:
        """A centred float64 block in the product dtype, where the products run; cast into `out`
        (a reused buffer of that dtype) when given."""
        if out is None or block.dtype == self.dtype:
            return block.astype(self.dtype, copy=False)
        np.copyto(out, block)
        return out

    def add_product(self, acc: Any, a: Any, b: Any) -> None:
        """acc += aᵀ b (float64 accumulator, product in the block dtype)."""
        acc += a.T @ b

    def host(self, acc: Any) -> np.ndarray:
        return acc


class TorchProducts(Products):
    """The same products on a torch device (`method.device`): blocks copied there in the product
    dtype, accumulators float64 on the device, copied back once per partial."""

    casts_into_out = False  # put() makes its own host copy (see put)

    def __init__(self, dtype: str, device: str) -> None:
        import torch

        super().__init__(dtype)
        self.torch, self.device = torch, torch.device(device)
        self.tdtype = torch.float32 if self.dtype == np.float32 else torch.float64

    def zeros(self, shape: tuple[int, int]) -> Any:
        return self.torch.zeros(shape, dtype=self.torch.float64, device=self.device)

    def put(self, block: np.ndarray, out: np.ndarray | None = None) -> Any:
        """`out` is not used: an asynchronous copy to the device must not read a buffer the next block
        overwrites."""
        host = np.ascontiguousarray(block, dtype=self.dtype)
        return self.torch.from_numpy(host).to(self.device, non_blocking=True)

    def add_product(self, acc: Any, a: Any, b: Any) -> None:
        acc += (a.T @ b).to(self.torch.float64)

    def host(self, acc: Any) -> np.ndarray:
        return acc.cpu().numpy()


def products_backend(products: str, device: str = "cpu") -> Products:
    """The block-product backend of `method.products` and `method.device`: `cpu` is NumPy on the host
    (the default and the fastest here); `cuda`, `cuda:N`, `mps` or `torch:<device>` (e.g. `torch:cpu`,
    the GPU code path run on the CPU) use torch. A ConfigError for a device torch cannot use."""
    if products not in ("float64", "float32"):
        raise ConfigError(f"method.products: expected float64 or float32, got '{products}'")
    device = str(device)
    if device == "cpu":
        return Products(products)
    dev = torch_device(device.removeprefix("torch:"), "method.device")
    return TorchProducts(products, str(dev))


def read_into(source: Any, tokens: np.ndarray, out: np.ndarray, neurons: Any = None) -> np.ndarray:
    """`neurons` (default all) of `source` at `tokens` in `out` ([tokens, neurons] float32, a buffer
    reused block after block: no fresh pages per block): read straight into it when the source takes
    `out` (stores, ArraySource, shifted sources: `reads_into`), else copied."""
    if getattr(source, "reads_into", False):
        return source.read(neurons, tokens=tokens, out=out)
    np.copyto(out, source.read(neurons, tokens=tokens))
    return out


class BlockBuffers:
    """The buffers of one source's blocks, allocated once for a pass of blocks of <= `rows` tokens:
    the block as read (float32), as float64 (centred in place by the caller) and in the product dtype.
    Fresh [rows, neurons] arrays per block would cost a page fault per page, every block."""

    def __init__(self, rows: int, n_neurons: int, backend: Products) -> None:
        self.raw = np.empty((rows, n_neurons), dtype=np.float32)
        self.wide = np.empty((rows, n_neurons))
        cast = backend.dtype != np.float64 and backend.casts_into_out
        self.narrow = np.empty((rows, n_neurons), dtype=backend.dtype) if cast else None
        self.backend = backend

    def read(self, source: Any, tokens: np.ndarray, neurons: Any = None) -> np.ndarray:
        """[tokens, neurons] float64 of the block (a view of the buffer, valid until the next read)."""
        size = len(tokens)
        np.copyto(self.wide[:size], read_into(source, tokens, self.raw[:size], neurons))
        return self.wide[:size]

    def put(self, block: np.ndarray) -> Any:
        """The (centred) block in the product dtype, where the products run."""
        return self.backend.put(block, None if self.narrow is None else self.narrow[:len(block)])


def accumulate(sources: Sequence[Any], tokens: np.ndarray, block_rows: int, backend: Products,
               step: Any = None) -> Partial:
    """The map step: one streamed pass over `tokens` (sorted indices) of X (`sources[0]`) and every Y,
    block by block (each block read once), sums about the first block's mean. `step()` after each block."""
    p: Partial | None = None
    grams: list[Any] = []
    crosses: list[Any] = []
    buffers = [BlockBuffers(min(block_rows, len(tokens)), s.n_neurons, backend) for s in sources]
    for lo in range(0, len(tokens), block_rows):
        block = tokens[lo:lo + block_rows]
        data = [b.read(s, block) for s, b in zip(sources, buffers, strict=True)]  # each [rows, neurons] float64
        if p is None:
            p = empty_partial([d.shape[1] for d in data], [d.mean(0) for d in data])
            grams = [backend.zeros((d.shape[1], d.shape[1])) for d in data]
            crosses = [backend.zeros((data[0].shape[1], d.shape[1])) for d in data[1:]]
        for d, c in zip(data, p.centre, strict=True):
            d -= c  # in place: u = z - c
        norms = [np.einsum("ij,ij->i", d, d) for d in data]  # [rows] a_i, float64
        for k, d in enumerate(data):
            p.first[k] += d.sum(0)
            p.norm2[k] += float(norms[k].sum())
            p.norm4[k] += float(norms[k] @ norms[k])
            p.third[k] += norms[k] @ d
        for j, d in enumerate(data[1:]):
            p.prod[j] += float(norms[0] @ norms[j + 1])
            p.bx[j] += norms[j + 1] @ data[0]
            p.ay[j] += norms[0] @ d
        placed = [b.put(d) for d, b in zip(data, buffers, strict=True)]
        del data
        for k, c in enumerate(placed):
            backend.add_product(grams[k], c, c)
        for j, c in enumerate(placed[1:]):
            backend.add_product(crosses[j], placed[0], c)
        del placed
        p.n += len(block)
        if step is not None:
            step()
    if p is None:
        raise ConfigError("correlation needs at least 2 tokens; a token range held none")
    p.gram = [backend.host(g) for g in grams]
    p.cross = [backend.host(c) for c in crosses]
    return p
