"""Correlation benchmark: streamed cross-model statistics at scale, one run.

    python bench/correlation.py [--tokens 100000,1000000] [--neurons 2000] [--models 3] [--products float32]

Builds `--models` float16 stores of synthetic "models" (2 sites each, `--neurons` in all) over
the same words: 20 planted neurons per model carry shared latent signals (own scale, sign and
noise), every other neuron is the model's own noise. Then, in a fresh process per token count,
computes the statistics of model 0 against the others once (`pair_stats`, streamed) and ranks
with maxcorr and svcca from them. Prints wall time, peak RSS (VmHWM) and planted recall beside
the RAM a dense in-memory computation (all activations as float32, as the reference code of
Bau et al. holds them) would need. Target: < 4 GiB peak RSS, flat in the number of tokens.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
SENT = 16  # words per sentence
PLANTED = 20


class SharedSource:
    """A NeuronSource: PLANTED neurons share latent signals across models (seeded by sentence,
    so every model sees the same latent for the same words); the rest is the model's own noise."""

    def __init__(self, model: int, neurons: int) -> None:
        half = neurons // 2
        self.sites = ["s0", "s1"]
        self.units = {"s0": half, "s1": neurons - half}
        self.model, self.neurons = model, neurons
        rng = np.random.default_rng(1000 + model)
        self.where = rng.permutation(neurons)[:PLANTED]  # the planted neurons' columns in this model
        self.scale = rng.choice([-3.0, 2.0], size=PLANTED)

    def fingerprint(self) -> dict[str, Any]:
        return {"bench": "correlation", "model": self.model, "neurons": self.neurons}

    def extract(self, sentences: list[list[str]]) -> dict[str, Any]:
        import torch

        rows = []
        for s in sentences:
            first = int(s[0][1:])  # words are "w<global index>"
            latent = np.random.default_rng(first).normal(size=(len(s), PLANTED))
            x = np.random.default_rng([first, self.model]).normal(size=(len(s), self.neurons))
            x[:, self.where] = latent * self.scale + 0.3 * x[:, self.where]
            rows.append(x)
        x = torch.from_numpy(np.concatenate(rows).astype(np.float32))
        half = self.units["s0"]
        return {"s0": x[:, :half], "s1": x[:, half:]}


def peak_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def worker_build(root: Path, tokens: int, neurons: int, model: int) -> dict[str, Any]:
    from neuroscope.store import extract

    words = [f"w{i}" for i in range(tokens)]
    sentences = [words[i:i + SENT] for i in range(0, tokens, SENT)]
    t0 = time.perf_counter()
    store, _ = extract(SharedSource(model, neurons), sentences, root, dtype="float16", shard_tokens=65536,
                       batch_tokens=4096, progress=False, name=f"model{model}")
    return {"store": str(store.path), "seconds": round(time.perf_counter() - t0, 1)}


def worker_stats(stores: list[str], products: str) -> dict[str, Any]:
    from neuroscope.methods.base import rank
    from neuroscope.methods.correlation import pair_stats
    from neuroscope.store import ActivationStore

    opened = [ActivationStore(p) for p in stores]
    t0 = time.perf_counter()
    pairs = pair_stats(opened[0], opened[1:], products=products)
    stats_s = time.perf_counter() - t0
    planted = set(SharedSource(0, opened[0].n_neurons).where.tolist())
    out: dict[str, Any] = {"stats_seconds": round(stats_s, 1), "tokens": opened[0].n_tokens,
                           "neurons": opened[0].n_neurons, "models": len(opened)}
    for method in ("maxcorr", "svcca"):
        t = time.perf_counter()
        ranking = rank(method, {}, opened[0].n_neurons, {"pairs": lambda: pairs, "seed": lambda: 0})
        out[f"{method}_seconds"] = round(time.perf_counter() - t, 1)
        out[f"{method}_recall"] = len(planted & set(ranking.order[:PLANTED].tolist())) / PLANTED
    out["peak_rss_mib"] = round(peak_mib(), 1)
    return out


def run_json(cmd: list[str]) -> dict[str, Any]:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokens", default="100000,1000000")
    ap.add_argument("--neurons", type=int, default=2000)
    ap.add_argument("--models", type=int, default=3)
    ap.add_argument("--products", default="float32", choices=["float32", "float64"])
    ap.add_argument("--root", default=None, help="where to build the stores (default: a temp folder)")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--args", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        a = json.loads(args.args)
        res = worker_build(Path(a["root"]), a["tokens"], a["neurons"], a["model"]) if args.worker == "build" \
            else worker_stats(a["stores"], a["products"])
        print(json.dumps(res))
        return
    root = Path(args.root or tempfile.mkdtemp(prefix="bench-corr-"))
    print(f"correlation benchmark: {args.models} models x {args.neurons} neurons, float16 stores, "
          f"{args.products} products", flush=True)
    print(f"{'tokens':>9s} {'build s':>8s} {'stats s':>8s} {'maxcorr s':>9s} {'svcca s':>8s} {'recall':>7s} "
          f"{'peak RSS MiB':>13s} {'dense RAM GiB':>14s}", flush=True)
    try:
        for n in [int(t) for t in args.tokens.split(",")]:
            folder = root / f"t{n}"
            folder.mkdir(parents=True, exist_ok=True)
            built = [run_json([sys.executable, __file__, "--worker", "build", "--args", json.dumps(
                {"root": str(folder), "tokens": n, "neurons": args.neurons, "model": m})]) for m in range(args.models)]
            res = run_json([sys.executable, __file__, "--worker", "stats", "--args", json.dumps(
                {"stores": [b["store"] for b in built], "products": args.products})])
            dense = args.models * res["tokens"] * args.neurons * 4 / 2**30
            print(f"{res['tokens']:9d} {sum(b['seconds'] for b in built):8.1f} {res['stats_seconds']:8.1f} "
                  f"{res['maxcorr_seconds']:9.1f} {res['svcca_seconds']:8.1f} "
                  f"{min(res['maxcorr_recall'], res['svcca_recall']):7.2f} {res['peak_rss_mib']:13.1f} {dense:14.1f}",
                  flush=True)
            shutil.rmtree(folder, ignore_errors=True)
    finally:
        if args.root is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
