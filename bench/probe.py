"""Probe benchmark: NeuroX 1.0.9's linear probe vs neuroscope's, one run on the same data.

    python bench/probe.py [--lam 1e-3] [--threads 2] [--repeats 1] [--datasets syn5,syn40,minilm]
    nice -n 5 python bench/probe.py --datasets '' --scale      # the 1M x 10k streaming run only

Datasets (written once as .npy files that every worker loads with numpy):
  syn5, syn40  20,000 tokens x 768 neurons, 5 / 40 classes; seeded gaussian noise plus +2.0 on
               3 planted neurons per class; split 80/10/10 by token.
  minilm       all-MiniLM-L6-v2 (7 sites, 2,688 neurons) over UD EWT dev, UPOS (17 classes),
               extracted with neuroscope's store (cached in $NEUROSCOPE_CACHE/stores), split by
               sentence as the task does (seed 0).
Each tool runs in its own process with the same thread count (torch threads for NeuroX,
OMP_NUM_THREADS for both): NeuroX in its venv (bench/neurox_probe.py: its defaults, 10 epochs,
batch 32, lr 1e-3, no dev set), seeds 0 and 1, on the arrays loaded into RAM with numpy
(NeuroX's probe takes in-memory arrays, loading is unclocked); neuroscope in the system python
on a neuroscope store of the same float32 arrays, with NeuroX's objective (penalty="neurox",
raw activations, otherwise ProbeConfig defaults: batches of <= 512, Adam lr 2e-2 halved after
an epoch without dev progress, L1 by a proximal step, <= 20 epochs, early stopping on dev:
patience 2, min_delta 0.1 point) twice: loaded into RAM first (unclocked, as a study does below
`evaluation.memory_gb`) and streamed from the store in chunks of <= 8 MiB (as a study does above
it); and, for information, the default study probe (standardized elastic net, in RAM) and
our probe with NeuroX's settings too (conf/probe/neurox.yaml: batch 32 in data order, lr 1e-3,
10 epochs, subgradient L1, no dev set) on NeuroX's arrays. All use
lambda1 = lambda2 = --lam. Our probe path is NumPy only: the worker checks that torch is not
imported.

Prints per dataset: fit / evaluate / ordering / total seconds, peak RSS (VmHWM) and the
RSS after imports ("base"), test accuracy, epochs run; then the ratios with their targets
(speed NeuroX/ours >= 10x, peak RSS ours/NeuroX <= 1/3, accuracy within 0.5 points) and the
top-10 % overlap of the two LCA orderings (|top_k(a) & top_k(b)| / k, k = neurons / 10), with
NeuroX seed 0 vs seed 1 as the scale of that number; on synthetic data also the share of
planted neurons among each ordering's first |planted| (there, beyond the planted neurons the
top 10 % is noise, so a low overlap is expected). With --repeats > 1 every number is the median
over repeats (tools alternate per repeat). NeuroX's clock starts after its imports and a
throwaway torch optimizer (its first construction imports torch._dynamo, 1-3 s); ours after
its imports.

--scale (off by default; writes ~20 GB under --scale-dir, deleted afterwards): a float16
store of 1,000,000 tokens x 10,000 neurons (10 sites x 1,000 units, 50,000 sentences x 20
words "w<label>_<i>", 10 classes, 3 planted neurons per class) built with neuroscope's
extract(), then ProbeConfig(epochs=2, patience=0) trained streaming from it (StoreChunks,
80/10/10 by token); prints build and training time, peak RSS (target < 4 GiB, with the
anonymous / file-backed split) and test accuracy. NeuroX is skipped there: its probe needs X
in RAM as float32, 1e6 x 1e4 x 4 B = 40 GB > 24 GiB.
"""

from __future__ import annotations

import neuroscope  # noqa: F401  (first, before NumPy loads: it sets the BLAS threads' spin time)

# isort: split
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
SPLIT = (0.8, 0.1, 0.1)
PARTS = ("train", "dev", "test")


# ---- measuring -------------------------------------------------------------------------
def status_mib(field: str = "VmRSS") -> float:
    """A memory field of /proc/self/status (VmRSS, RssAnon, RssFile) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_mib() -> float:
    """Peak RSS of this process image. VmHWM, not ru_maxrss: Linux carries ru_maxrss over
    fork + exec, so a worker would report at least the parent's RSS at spawn time."""
    return status_mib("VmHWM")


class RssSampler(threading.Thread):
    """Peak anonymous and file-backed RSS, sampled every `every` seconds."""

    def __init__(self, every: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.every, self.anon, self.file, self.done = every, 0.0, 0.0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.every):
            self.anon = max(self.anon, status_mib("RssAnon"))
            self.file = max(self.file, status_mib("RssFile"))


# ---- data ------------------------------------------------------------------------------
def token_split(n: int, seed: int) -> np.ndarray:
    """[n] split id 0/1/2 (train/dev/test), 80/10/10 by token, seeded."""
    order = np.random.default_rng(seed).permutation(n)
    split = np.empty(n, dtype=np.int8)
    cuts = np.round(np.cumsum(SPLIT) * n).astype(int)
    for i, part in enumerate(np.split(order, cuts[:-1])):
        split[part] = i
    return split


def planted_neurons(n_neurons: int, n_classes: int, per_class: int, seed: int) -> np.ndarray:
    """[classes, per_class] distinct neurons that carry each class's signal."""
    rng = np.random.default_rng(seed + 1)
    return rng.choice(n_neurons, n_classes * per_class, replace=False).reshape(n_classes, per_class)


def synthetic(n_classes: int, n_tokens: int = 20_000, n_neurons: int = 768, signal: float = 2.0,
              seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Gaussian noise; +signal on 3 planted neurons of the token's class."""
    rng = np.random.default_rng(seed)
    y = rng.integers(n_classes, size=n_tokens)
    x = rng.standard_normal((n_tokens, n_neurons), dtype=np.float32)
    planted = planted_neurons(n_neurons, n_classes, 3, seed)
    x[np.arange(n_tokens)[:, None], planted[y]] += signal
    split = token_split(n_tokens, seed)
    arrays = {f"{a}_{p}": v[split == i] for i, p in enumerate(PARTS) for a, v in (("X", x), ("y", y))}
    return arrays, {"n_classes": n_classes, "planted": planted.ravel().tolist(),
                    "what": f"synthetic, {n_classes} classes, 3 planted neurons/class, split by token"}


def minilm_upos(data_root: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """MiniLM activations (all sites) of UD EWT dev with UPOS labels, split by sentence."""
    from neuroscope.cli import quiet_libraries
    from neuroscope.registry import MODELS
    from neuroscope.store import cache_dir, extract
    from neuroscope.tasks import load_task

    quiet_libraries()
    corpus = load_task({"name": "upos", "file": str(data_root / "ud" / "en_ewt-ud-dev.conllu")}, download=False)
    t0 = time.perf_counter()
    store, reused = extract(MODELS.get("minilm")(), corpus.words, cache_dir() / "stores", progress=False)
    print(f"  minilm store {'reused' if reused else 'extracted'} in {time.perf_counter() - t0:.1f} s: {store.path}",
          file=sys.stderr, flush=True)
    arrays: dict[str, np.ndarray] = {}
    for p in PARTS:
        mask = corpus.mask(p)
        arrays[f"X_{p}"] = store.read(tokens=mask)
        arrays[f"y_{p}"] = corpus.labels[mask].astype(np.int64)
    return arrays, {"n_classes": len(corpus.classes), "planted": None,
                    "what": "MiniLM all sites, UD EWT dev UPOS, split by sentence (seed 0)"}


class ArraySource:
    """A NeuronSource serving rows of an in-memory array: word "t<i>" has the activations X[i]."""

    def __init__(self, x: np.ndarray, name: str) -> None:
        self.x, self.name = x, name
        self.sites, self.units = ["x"], {"x": int(x.shape[1])}

    def fingerprint(self) -> dict[str, Any]:
        return {"name": f"bench-array-{self.name}", "shape": list(self.x.shape)}

    def extract(self, sentences: list[list[str]]) -> dict[str, Any]:
        import torch

        rows = [int(w[1:]) for s in sentences for w in s]
        return {"x": torch.from_numpy(self.x[rows])}


def write_dataset(folder: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> dict[str, Any]:
    """The arrays as .npy files (NeuroX's input) and as a neuroscope store of all tokens in split
    order with labels.npy / split.npy (ours: the store an analysis streams from)."""
    from neuroscope.store import extract

    folder.mkdir(parents=True)
    for name, arr in arrays.items():
        np.save(folder / f"{name}.npy", arr.astype(np.float32 if name[0] == "X" else np.int64))
    assert len(np.unique(arrays["y_train"])) == meta["n_classes"], "NeuroX counts classes from y_train"
    x = np.concatenate([arrays[f"X_{p}"] for p in PARTS]).astype(np.float32)
    np.save(folder / "labels.npy", np.concatenate([arrays[f"y_{p}"] for p in PARTS]).astype(np.int64))
    np.save(folder / "split.npy", np.concatenate([np.full(len(arrays[f"y_{p}"]), i, np.int8) for i, p in enumerate(PARTS)]))
    sentences = [[f"t{i}" for i in range(lo, min(lo + 20, len(x)))] for lo in range(0, len(x), 20)]
    store, _ = extract(ArraySource(x, folder.name), sentences, folder / "store", progress=False)
    (folder / "store_path").write_text(str(store.path))
    meta = {**meta, "n_neurons": int(arrays["X_train"].shape[1]),
            "sizes": [int(len(arrays[f"y_{p}"])) for p in PARTS]}
    (folder / "meta.json").write_text(json.dumps(meta))
    return meta


# ---- workers (each in its own process) ---------------------------------------------------
def worker_ours(folder: Path, mode: str, lam: float, order_out: Path) -> dict[str, Any]:
    """neuroscope's probe on the dataset's store: `mode` "neurox" (NeuroX's objective, raw
    activations) or "study" (the default standardized elastic net), loaded into memory first or,
    with "-stream", streamed chunk by chunk (what an analysis does above evaluation.memory_gb)."""
    from neuroscope.methods.lca import get_neuron_ordering
    from neuroscope.probes import ArrayChunks, ProbeConfig, StoreChunks, evaluate, fit_probe
    from neuroscope.store import ActivationStore

    assert "torch" not in sys.modules, "the probe path must not import torch"
    base = status_mib()
    n_classes = int(json.loads((folder / "meta.json").read_text())["n_classes"])
    store = ActivationStore((folder / "store_path").read_text())
    labels, split = np.load(folder / "labels.npy"), np.load(folder / "split.npy")
    data: dict[str, Any] = {p: StoreChunks(store, split == i, labels) for i, p in enumerate(PARTS)}
    if not mode.endswith("stream") and mode != "neuroxcfg":  # in memory, as a study does below evaluation.memory_gb (unclocked,
        data = {p: d.load() for p, d in data.items()}  # like NeuroX's np.load)
    dev = data["dev"]
    if mode == "neuroxcfg":  # conf/probe/neurox.yaml on NeuroX's input: the arrays in their order, no dev
        cfg = ProbeConfig(lambda1=lam, lambda2=lam, penalty="neurox", standardize=False, proximal=False,
                          shuffle=False, epochs=10, batch_size=32, lr=1e-3, lr_decay=1.0, patience=0, min_delta=0.0,
                          seed=0)
        data = {p: ArrayChunks(np.load(folder / f"X_{p}.npy"), np.load(folder / f"y_{p}.npy")) for p in PARTS}
        dev = None
    elif mode.startswith("neurox"):
        cfg = ProbeConfig(lambda1=lam, lambda2=lam, penalty="neurox", standardize=False, seed=0)
    else:
        cfg = ProbeConfig(lambda1=lam, lambda2=lam, seed=0)
    t0 = time.perf_counter()
    probe, info = fit_probe(data["train"], n_classes, cfg, dev)
    t1 = time.perf_counter()
    acc = evaluate(probe, data["test"], n_classes)["accuracy"]
    t2 = time.perf_counter()
    ordering, _ = get_neuron_ordering(probe, {str(i): i for i in range(n_classes)})
    t3 = time.perf_counter()
    np.save(order_out, np.asarray(ordering, dtype=np.int64))
    return {"tool": f"neuroscope-{mode}", "fit_s": round(t1 - t0, 3), "eval_s": round(t2 - t1, 3),
            "order_s": round(t3 - t2, 3), "total_s": round(t3 - t0, 3), "peak_rss_mib": round(peak_mib(), 1),
            "base_rss_mib": round(base, 1), "accuracy": acc, "epochs": info["epochs"],
            "best_epoch": info["best_epoch"], "n_ordered": len(ordering)}


class ScaleSource:
    """A NeuronSource of seeded noise plus a planted class signal; the class is in the word
    itself ("w<label>_<global index>"), so any batch of sentences can be computed alone."""

    def __init__(self, n_sites: int = 10, n_units: int = 1000, n_classes: int = 10, signal: float = 1.5,
                 seed: int = 0) -> None:
        self.sites = [f"s{i}" for i in range(n_sites)]
        self.units = {s: n_units for s in self.sites}
        self.n_classes, self.signal, self.seed = n_classes, signal, seed
        self.planted = planted_neurons(n_sites * n_units, n_classes, 3, seed)

    def fingerprint(self) -> dict[str, Any]:
        return {"name": "bench-scale", "units": self.units, "classes": self.n_classes,
                "signal": self.signal, "seed": self.seed}

    def extract(self, sentences: list[list[str]]) -> dict[str, Any]:
        import torch

        words = [w for s in sentences for w in s]
        labels = np.array([int(w[1:w.index("_")]) for w in words])
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + int(words[0].rsplit("_", 1)[1]))
        x = torch.randn(len(words), sum(self.units.values()), generator=g)
        x[torch.arange(len(words))[:, None], torch.from_numpy(self.planted[labels])] += self.signal
        width = self.units[self.sites[0]]
        return {s: x[:, i * width:(i + 1) * width] for i, s in enumerate(self.sites)}


def worker_scale_build(root: Path, n_sentences: int, sent_len: int, seed: int = 0) -> dict[str, Any]:
    """Write the scale store and its labels/split under `root`."""
    from neuroscope.store import extract

    source = ScaleSource(seed=seed)
    rng = np.random.default_rng(seed)
    labels = rng.integers(source.n_classes, size=n_sentences * sent_len)
    words = [f"w{c}_{i}" for i, c in enumerate(labels.tolist())]
    sentences = [words[i:i + sent_len] for i in range(0, len(words), sent_len)]
    np.save(root / "labels.npy", labels)
    np.save(root / "split.npy", token_split(len(labels), seed))
    np.save(root / "planted.npy", source.planted.ravel())
    t0 = time.perf_counter()
    store, _ = extract(source, sentences, root, dtype="float16", shard_tokens=32768, progress=False)
    seconds = time.perf_counter() - t0
    size = sum(f.stat().st_size for f in store.path.rglob("*") if f.is_file())
    return {"store": str(store.path), "build_s": round(seconds, 1), "bytes": size, "n_tokens": store.n_tokens,
            "n_neurons": store.n_neurons, "shards": len(store.shards), "peak_rss_mib": round(peak_mib(), 1)}


def worker_scale_train(root: Path, store_path: Path, lam: float) -> dict[str, Any]:
    """Train the default study probe streaming from the scale store; evaluate on test."""
    from neuroscope.methods.lca import get_neuron_ordering
    from neuroscope.probes import ProbeConfig, StoreChunks, evaluate, fit_probe
    from neuroscope.store import ActivationStore

    sampler = RssSampler()
    sampler.start()
    base = status_mib()
    store = ActivationStore(store_path)
    labels, split = np.load(root / "labels.npy"), np.load(root / "split.npy")
    planted = np.load(root / "planted.npy")
    n_classes = int(labels.max()) + 1
    chunks = {p: StoreChunks(store, split == i, labels) for i, p in enumerate(PARTS)}
    cfg = ProbeConfig(lambda1=lam, lambda2=lam, epochs=2, patience=0, seed=0)
    t0 = time.perf_counter()
    probe, info = fit_probe(chunks["train"], n_classes, cfg, dev=chunks["dev"])
    t1 = time.perf_counter()
    acc = evaluate(probe, chunks["test"], n_classes)["accuracy"]
    t2 = time.perf_counter()
    ordering, _ = get_neuron_ordering(probe, {str(i): i for i in range(n_classes)})
    t3 = time.perf_counter()
    sampler.done.set()
    return {"fit_s": round(t1 - t0, 1), "eval_s": round(t2 - t1, 1), "order_s": round(t3 - t2, 1),
            "total_s": round(t3 - t0, 1), "peak_rss_mib": round(peak_mib(), 1), "base_rss_mib": round(base, 1),
            "peak_anon_mib": round(sampler.anon, 1), "peak_file_mib": round(sampler.file, 1),
            "accuracy": acc, "dev_accuracy": info["dev_accuracy"], "n_train": chunks["train"].n_tokens,
            "planted_recall": planted_recall(np.asarray(ordering), planted.tolist())}


# ---- orchestration -----------------------------------------------------------------------
def run_json(cmd: list[str], env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def overlap(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """|first k of a & first k of b| / k."""
    return len(set(a[:k].tolist()) & set(b[:k].tolist())) / k


def planted_recall(ordering: np.ndarray, planted: list[int]) -> float:
    """Share of the planted neurons among the first |planted| of an ordering."""
    return len(set(ordering[:len(planted)].tolist()) & set(planted)) / len(planted)


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def report(name: str, meta: dict[str, Any], res: dict[str, dict[str, float]], orders: dict[str, np.ndarray],
           args: argparse.Namespace) -> None:
    n_train, n_dev, n_test = meta["sizes"]
    print(f"\n== {name}: {meta['what']}")
    print(f"   {n_train}/{n_dev}/{n_test} train/dev/test tokens x {meta['n_neurons']} neurons, "
          f"{meta['n_classes']} classes, lambda1 = lambda2 = {args.lam:g}, {args.threads} torch thread(s), "
          f"median of {args.repeats}")
    print(f"   {'tool':24s} {'fit s':>8s} {'eval s':>7s} {'order s':>8s} {'total s':>8s} "
          f"{'peak MiB':>9s} {'base MiB':>9s} {'test acc':>9s} {'epochs':>6s}")
    labels = {"neurox": "NeuroX 1.0.9", "neurox-seed1": "NeuroX 1.0.9, seed 1", "neuroscope-neurox": "ours, same obj., in RAM",
              "neuroscope-neurox-stream": "ours, same obj., stream", "neuroscope-study": "ours, study, in RAM",
              "neuroscope-neuroxcfg": "ours, probe=neurox"}
    for tool, r in res.items():
        print(f"   {labels[tool]:24s} {r['fit_s']:8.2f} {r['eval_s']:7.3f} {r['order_s']:8.3f} {r['total_s']:8.2f} "
              f"{r['peak_rss_mib']:9.1f} {r['base_rss_mib']:9.1f} {100 * r['accuracy']:8.2f}% {r['epochs']:6.0f}")
    nx, k = res["neurox"], max(1, meta["n_neurons"] // 10)
    for tool in ("neuroscope-neurox", "neuroscope-neurox-stream", "neuroscope-study", "neuroscope-neuroxcfg"):
        r = res[tool]
        speed, rss = nx["total_s"] / r["total_s"], r["peak_rss_mib"] / nx["peak_rss_mib"]
        delta = 100 * (r["accuracy"] - nx["accuracy"])
        acc_v = "met" if abs(delta) <= 0.5 else ("ours higher" if delta > 0 else "MISSED")
        rss_data = (r["peak_rss_mib"] - r["base_rss_mib"]) / max(nx["peak_rss_mib"] - nx["base_rss_mib"], 1e-9)
        line = (f"   {labels[tool]} vs NeuroX: speed {speed:.1f}x [target >= 10x: {verdict(speed >= 10)}]"
                f" (fit only {nx['fit_s'] / r['fit_s']:.1f}x); peak RSS {rss:.2f} [target <= 0.33: "
                f"{verdict(rss <= 1 / 3)}] (above base {rss_data:.2f}); accuracy {delta:+.2f} pts "
                f"[target within 0.5: {acc_v}]; top-10% overlap {overlap(orders[tool], orders['neurox'], k):.2f} (k={k})")
        print(line if tool in ("neuroscope-neurox", "neuroscope-neurox-stream") else line.replace(" [target", " [info; target"))
    print(f"   for scale: NeuroX seed 0 vs seed 1 top-10% overlap {overlap(orders['neurox-seed1'], orders['neurox'], k):.2f}"
          f" (accuracy {100 * res['neurox-seed1']['accuracy']:.2f}%): NeuroX's own run-to-run agreement")
    if meta["planted"]:
        rec = ", ".join(f"{labels[t]} {planted_recall(o, meta['planted']):.2f}" for t, o in orders.items())
        print(f"   planted neurons among each ordering's first {len(meta['planted'])}: {rec}")


def bench_dataset(name: str, folder: Path, meta: dict[str, Any], nx_python: str, env: dict[str, str],
                  args: argparse.Namespace) -> None:
    runs: dict[str, list[dict[str, Any]]] = {t: [] for t in ("neurox", "neurox-seed1", "neuroscope-neurox",
                                                              "neuroscope-neurox-stream", "neuroscope-study",
                                                              "neuroscope-neuroxcfg")}
    orders: dict[str, np.ndarray] = {}
    common = ["--lam", str(args.lam), "--threads", str(args.threads)]
    for r in range(args.repeats):
        for tool in runs:
            out = folder / f"order-{tool}.npy"
            if tool.startswith("neurox"):
                seed = ["--seed", "1"] if tool == "neurox-seed1" else []
                cmd = [nx_python, str(HERE / "neurox_probe.py"), "--data", str(folder), "--order-out", str(out), *common, *seed]
            else:
                cmd = [sys.executable, __file__, "--worker", "ours", "--mode", tool.split("-", 1)[1],
                       "--dir", str(folder), "--order-out", str(out), *common]
            res = run_json(cmd, env)
            runs[tool].append(res)
            orders[tool] = np.load(out)
            print(f"  {name} run {r} {tool:18s} total {res['total_s']:8.2f} s  acc {100 * res['accuracy']:.2f}%",
                  file=sys.stderr, flush=True)
    keys = ("fit_s", "eval_s", "order_s", "total_s", "peak_rss_mib", "base_rss_mib", "accuracy", "epochs")
    med = {t: {k: float(statistics.median(x[k] for x in rs)) for k in keys} for t, rs in runs.items()}
    report(name, meta, med, orders, args)


def bench_scale(args: argparse.Namespace, env: dict[str, str]) -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-probe-scale-", dir=args.scale_dir))
    try:
        common = [sys.executable, __file__, "--dir", str(root), "--threads", str(args.threads), "--lam", str(args.lam)]
        built = run_json([*common, "--worker", "scale-build", "--sentences", str(args.scale_sentences)], env)
        print(f"  scale store built in {built['build_s']} s", file=sys.stderr, flush=True)
        res = run_json([*common, "--worker", "scale-train", "--store", built["store"]], env)
        gib = res["peak_rss_mib"] / 1024
        print(f"\n== scale: {built['n_tokens']:,} tokens x {built['n_neurons']:,} neurons, float16 store "
              f"({built['bytes'] / 2**30:.1f} GiB, {built['shards']} shards of ~32,768 tokens), 10 classes, "
              f"split 80/10/10 by token, {args.threads} torch thread(s)")
        print(f"   build (extract, synthetic source): {built['build_s']:.1f} s, peak RSS {built['peak_rss_mib']:.0f} MiB")
        print(f"   neuroscope StoreChunks, ProbeConfig(epochs=2, patience=0): fit {res['fit_s']:.1f} s, "
              f"eval {res['eval_s']:.1f} s, ordering {res['order_s']:.1f} s, total {res['total_s']:.1f} s")
        print(f"   peak RSS {gib:.2f} GiB [target < 4 GiB: {verdict(gib < 4)}] (sampled peaks: anonymous "
              f"{res['peak_anon_mib'] / 1024:.2f} GiB, file-backed/mmap {res['peak_file_mib'] / 1024:.2f} GiB; "
              f"base {res['base_rss_mib']:.0f} MiB)")
        print(f"   test accuracy {100 * res['accuracy']:.2f}% (dev per epoch "
              f"{', '.join(f'{100 * a:.2f}%' for a in res['dev_accuracy'])}); planted neurons among the "
              f"first 30 of the ordering: {res['planted_recall']:.2f}")
        print("   NeuroX: skipped - its probe takes X in RAM as float32: 1e6 x 1e4 x 4 B = 40 GB > 24 GiB RAM")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.environ.get("NEUROSCOPE_DATA", str(HERE.parents[1] / "shared" / "data")))
    ap.add_argument("--datasets", default="syn5,syn40,minilm", help="comma list of syn5, syn40, minilm ('' = none)")
    ap.add_argument("--lam", type=float, default=1e-3, help="lambda1 = lambda2 for every probe")
    ap.add_argument("--threads", type=int, default=2, help="torch threads for every tool")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--neurox-python", default=None, help="python of an existing NeuroX venv")
    ap.add_argument("--scale", action="store_true", help="also run the 1M x 10k streaming probe (~20 GB on disk)")
    ap.add_argument("--scale-dir", default=None, help="parent folder of the scale store (default: system temp)")
    ap.add_argument("--scale-sentences", type=int, default=50_000, help="20-word sentences in the scale store")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--mode", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--dir", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--order-out", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--store", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--sentences", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:  # BLAS threads: OMP_NUM_THREADS=--threads, set by the parent for every worker
        if args.worker == "ours":
            out = worker_ours(Path(args.dir), args.mode, args.lam, Path(args.order_out))
        elif args.worker == "scale-build":
            import torch

            torch.set_num_threads(args.threads)
            out = worker_scale_build(Path(args.dir), args.sentences, 20)
        else:
            out = worker_scale_train(Path(args.dir), Path(args.store), args.lam)
        print(json.dumps(out))
        return

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), HF_HUB_OFFLINE="1")
    names = [n for n in args.datasets.split(",") if n]
    print(f"probe benchmark: {os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.2f}", flush=True)
    if names:
        nx_python = args.neurox_python or subprocess.run(
            ["bash", str(HERE / "neurox_env.sh")], check=True, capture_output=True, text=True
        ).stdout.strip().splitlines()[-1]
        work = Path(tempfile.mkdtemp(prefix="bench-probe-"))
        try:
            for name in names:
                if name.startswith("syn"):
                    arrays, meta = synthetic(int(name[3:]))
                elif name == "minilm":
                    arrays, meta = minilm_upos(Path(args.data))
                else:
                    raise SystemExit(f"unknown dataset '{name}'")
                meta = write_dataset(work / name, arrays, meta)
                del arrays
                bench_dataset(name, work / name, meta, nx_python, env, args)
                sys.stdout.flush()
        finally:
            shutil.rmtree(work, ignore_errors=True)
    if args.scale:
        bench_scale(args, env)
    print(f"\nload average at end {os.getloadavg()[0]:.2f} (other processes share the {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
