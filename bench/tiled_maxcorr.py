"""Tiled maxcorr at a neuron count whose Σ_XY would not fit in memory (issue #31 part 2).

Two synthetic activation stores (X and Y, `--neurons` each, `--tokens` tokens, float32) are written
under `--root` by a child process (so their arrays never count in this process's peak RSS), then
`tiled_pairs` computes each X neuron's best partner in Y with `--tile` neurons per tile. Y's first
`--planted` neurons are noisy copies of X's neurons in a shuffled order, so the bench checks that
the tiled reduction finds them. Prints wall time, peak RSS (ru_maxrss) and the check.

    OMP_NUM_THREADS=1 python bench/tiled_maxcorr.py --neurons 20000 --tokens 2000 --tile 2000
    OMP_NUM_THREADS=1 python bench/tiled_maxcorr.py --baseline-draws 3   # with the tiled rotation baseline

With `--baseline-draws`, the rotation baseline (fast structured rotations of Y, methods/tiles.py)
runs in the same pass; the bench also prints the share of planted / other X neurons above the
baseline's 99th percentile.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))


def write_stores(root: Path, neurons: int, tokens: int, planted: int, seed: int) -> None:
    """X and Y as stores of 512-token shards; Y[:, j] = X[:, perm[j]] + noise for j < planted."""
    from neuroscope.methods.tiles import write_array_store

    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((tokens, neurons), dtype=np.float32) + rng.normal(size=neurons).astype(np.float32) * 10)
    write_array_store(root / "x", x, [512])
    y = rng.standard_normal((tokens, neurons), dtype=np.float32)
    perm = rng.permutation(neurons)[:planted]
    y[:, :planted] = x[:, perm] + 0.5 * rng.standard_normal((tokens, planted), dtype=np.float32)
    write_array_store(root / "y", y + 100.0, [512])
    np.save(root / "planted.npy", perm)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--neurons", type=int, default=20_000)
    ap.add_argument("--tokens", type=int, default=2_000)
    ap.add_argument("--tile", type=int, default=2_000)
    ap.add_argument("--planted", type=int, default=1_000)
    ap.add_argument("--products", default="float32", choices=["float32", "float64"])
    ap.add_argument("--root", type=Path, default=Path("/tmp/neuroscope-tiled-bench"))
    ap.add_argument("--keep", action="store_true", help="keep the synthetic stores (default: removed)")
    ap.add_argument("--baseline-draws", type=int, default=0, help="rotations of the tiled rotation baseline")
    args = ap.parse_args()
    if args.root.exists():
        shutil.rmtree(args.root)
    args.root.mkdir(parents=True)
    t0 = time.perf_counter()
    child = multiprocessing.get_context("fork").Process(
        target=write_stores, args=(args.root, args.neurons, args.tokens, args.planted, 0))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"writing the synthetic stores failed (exit {child.exitcode})")
    print(f"stores: 2 x [{args.tokens} tokens, {args.neurons} neurons] float32 in {time.perf_counter() - t0:.1f} s")

    from neuroscope.methods.tiles import tiled_pairs
    from neuroscope.store import ActivationStore

    x, y = ActivationStore(args.root / "x"), ActivationStore(args.root / "y")
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    (pair,) = tiled_pairs(x, [y], None, args.tile, products=args.products, baseline_draws=args.baseline_draws)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    perm = np.load(args.root / "planted.npy")
    found = float((pair.partner[perm] == np.arange(args.planted)).mean())
    full = args.neurons * args.neurons * 8 / 2**30
    print(f"tiled maxcorr {args.neurons} x {args.neurons}, tile {args.tile}, products {args.products}: "
          f"{wall:.1f} s, {2 * args.tokens * args.neurons ** 2 / wall / 1e9:.1f} GFLOP/s of Σ_XY")
    print(f"peak RSS {peak / 2**20:.2f} GiB (before the pass {rss0 / 2**20:.2f} GiB; a whole float64 Σ_XY "
          f"would be {full:.1f} GiB)")
    print(f"planted partners found: {100 * found:.1f} % (best |r| of planted X neurons: median "
          f"{np.median(pair.best[perm]):.3f}, of the others {np.median(np.delete(pair.best, perm)):.3f})")
    if args.baseline_draws:
        q99 = float(np.quantile(pair.rotated, 0.99))
        above = pair.best > q99
        print(f"rotation baseline ({args.baseline_draws} draws): 99th percentile {q99:.3f}; above it: planted "
              f"{100 * above[perm].mean():.1f} %, others {100 * np.delete(above, perm).mean():.2f} %")
    if not args.keep:
        shutil.rmtree(args.root)


if __name__ == "__main__":
    main()
