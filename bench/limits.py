"""Speed against the hardware's limit (issue #31 part 3): three ratios, one run, this machine.

    python bench/limits.py [--quick] [--threads N] [--repeats 3] [--skip-study] [--json-out FILE]

1. extraction: neuroscope's words/s (`neuroscope.store.extract` into a fresh store, MiniLM from
   the offline package, UD EWT dev, the store settings of conf/analyze.yaml) ÷ the words/s of
   the bare forward pass of the same model over the very inputs extraction fed it (recorded by a
   forward pre-hook during a warm-up extraction: same tokenization, same batches, same order),
   replayed under `torch.inference_mode` with no aggregation and no writes. Goal >= 0.9.
2. correlation: effective GFLOP/s of `pair_stats(products="float32")` over two stores [n, nx],
   [n, ny] ÷ GFLOP/s of one in-memory float32 GEMM X^T Y of the same shape (numpy). Counted:
   Σ_XY = 2·n·nx·ny, and for all products also Σ_XX, Σ_YY at the n·k·(k+1) FLOPs a symmetric
   product needs (numpy computes A^T A with SYRK). Goal >= 0.6.
3. study: bench/study.py (warm, median of 3) against NeuroX, when NeuroX's venv exists. Goal >= 10.

Every ratio is measured in the same run as its baseline, with the same thread count. A phase
profile (cProfile) of extraction and of the correlation pass says what bounds them.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import json
import os
import platform
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SENT = 16  # words per synthetic sentence (correlation stores)
GOALS = {"extraction": 0.9, "correlation": 0.6, "study": 10.0}
_LIMITS: list[Any] = []  # keeps threadpoolctl's limit alive for the whole run
if importlib.util.find_spec("neuroscope") is None:  # run from a checkout without an install
    sys.path.insert(0, str(REPO))


# ---- the machine ---------------------------------------------------------------------------
def set_threads(n: int) -> None:
    """The same thread count for torch and for numpy's BLAS (threadpoolctl)."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n)
    _LIMITS.append(threadpool_limits(limits=n))


def loadavg() -> str:
    """The 1/5/15-minute load averages of /proc/loadavg."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def code_version() -> str:
    """The checkout measured: HEAD and the library files changed in the working tree (if git is there)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "neuroscope"], cwd=REPO, capture_output=True,
                               text=True, check=True).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    changed = [line[3:] for line in dirty if line.strip()]
    return head + (f" + uncommitted changes in {', '.join(changed)}" if changed else "")


def machine() -> dict[str, Any]:
    """CPU model, cores, library versions, BLAS and the thread pools in use."""
    import numpy as np
    import torch
    from threadpoolctl import threadpool_info

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    pools = [f"{p['internal_api']} {p.get('version') or ''} x{p['num_threads']}".replace("  ", " ")
             for p in threadpool_info()]
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "cores": os.cpu_count(), "usable_cores": usable, "python": platform.python_version(),
            "torch": torch.__version__, "numpy": np.__version__, "torch_threads": torch.get_num_threads(),
            "blas": f"{blas.get('name')} {blas.get('version')}", "thread_pools": pools}


# ---- 1. extraction -------------------------------------------------------------------------
def store_defaults() -> dict[str, Any]:
    """dtype, shard_tokens and batch_tokens of the `store` node of conf/analyze.yaml (a study's defaults)."""
    from omegaconf import OmegaConf

    node = OmegaConf.load(REPO / "conf" / "analyze.yaml").store
    return {"dtype": str(node.dtype), "shard_tokens": int(node.shard_tokens), "batch_tokens": int(node.batch_tokens)}


def ud_words(data: Path, limit: int | None) -> list[list[str]]:
    """The words of the first `limit` sentences (all if None) of UD EWT dev."""
    from neuroscope.data.readers import read_conllu

    sents = read_conllu(data / "ud" / "en_ewt-ud-dev.conllu")
    return [s.words for s in sents[:limit]]


class ForwardRecorder:
    """Forward hooks on the model: record each call's inputs (to replay them) and time each forward."""

    def __init__(self, model: Any, keep: bool) -> None:
        self.model, self.keep = model, keep
        self.calls: list[tuple[tuple, dict]] = []
        self.seconds = 0.0
        self._t = 0.0
        self._handles: list[Any] = []

    def __enter__(self) -> ForwardRecorder:
        def before(module: Any, args: tuple, kwargs: dict) -> None:
            if self.keep:
                self.calls.append((tuple(a.clone() if hasattr(a, "clone") else a for a in args),
                                   {k: v.clone() if hasattr(v, "clone") else v for k, v in kwargs.items()}))
            sync(self.model)
            self._t = time.perf_counter()

        def after(module: Any, args: tuple, kwargs: dict, output: Any) -> None:
            sync(self.model)
            self.seconds += time.perf_counter() - self._t

        self._handles = [self.model.register_forward_pre_hook(before, with_kwargs=True),
                         self.model.register_forward_hook(after, with_kwargs=True)]
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()


def sync(model: Any) -> None:
    """Wait for queued GPU work (a no-op on CPU), so wall times are real."""
    import torch

    if torch.cuda.is_available() and next(model.parameters()).is_cuda:
        torch.cuda.synchronize()


def timed_extract(source: Any, words: list[list[str]], work: Path, settings: dict[str, Any]) -> float:
    """Seconds of one `extract` into a fresh store root (removed afterwards)."""
    from neuroscope.store import extract

    root = Path(tempfile.mkdtemp(prefix="extract-", dir=work))
    try:
        t = time.perf_counter()
        store, reused = extract(source, words, root, progress=False, name="limits", **settings)
        seconds = time.perf_counter() - t
        if reused or store.n_tokens != sum(len(s) for s in words):
            raise RuntimeError(f"extraction into a fresh root reused a store or lost words: {store}")
        return seconds
    finally:
        shutil.rmtree(root, ignore_errors=True)


def bare_forward(model: Any, calls: list[tuple[tuple, dict]]) -> float:
    """Seconds of the model's forward over recorded inputs, nothing else (no aggregation, no writes)."""
    import torch

    with torch.inference_mode():
        sync(model)
        t = time.perf_counter()
        for args, kwargs in calls:
            model(*args, **kwargs)
        sync(model)
        return time.perf_counter() - t


PHASES = [  # (label, path part, function or "*", "cum" | "own" | "max" time) picked from the extraction profile
    ("batch plan: subword lengths (tokenizer)", "neuroscope/models/transformer.py", "lengths", "cum"),
    ("word windows (_pieces: tokenizer)", "neuroscope/models/transformer.py", "_pieces", "cum"),
    ("tokenizer calls (all)", "tokenization_utils_base.py", "__call__", "cum"),
    ("model forward (profiled)", "modeling_bert.py", "forward", "max"),
    ("_extract own (word index tensors)", "neuroscope/models/transformer.py", "_extract", "own"),
    ("subword -> word aggregation", "neuroscope/models/transformer.py", "_aggregate", "cum"),
    ("cast to store dtype + finite check", "neuroscope/store/", "checked", "cum"),
    ("allocate .npy + fallocate", "neuroscope/store/", "allocate", "cum"),
    ("own time in neuroscope/store/* (row copies ...)", "neuroscope/store/", "*", "own"),
    ("memmap __array_finalize__ (slicing)", "memmap.py", "__array_finalize__", "cum"),
    ("memmap flush", "memmap.py", "flush", "cum"),
    ("extract, all (profiled)", "neuroscope/store/", "extract", "max"),
]


def profile_phases(prof: cProfile.Profile, phases: list[tuple[str, str, str, str]]) -> list[tuple[str, float]]:
    """Seconds of each named phase in a cProfile run: the summed cumulative or own time, or the
    largest cumulative time, of the functions whose file path holds the part and whose name matches."""
    stats = pstats.Stats(prof).stats  # {(file, line, name): (cc, nc, tt, ct, callers)}
    out = []
    for label, part, name, how in phases:
        hits = [(tt, ct) for (file, _, fn), (_, _, tt, ct, _) in stats.items()
                if (name == "*" or fn == name) and part in file.replace("\\", "/")]
        if how == "max":
            value = max((ct for _, ct in hits), default=0.0)
        else:
            value = sum(tt if how == "own" else ct for tt, ct in hits)
        out.append((label, value))
    return out


def top_own(prof: cProfile.Profile, k: int) -> list[tuple[str, float]]:
    """The k functions with the largest own time in a cProfile run."""
    stats = pstats.Stats(prof).stats
    rows = sorted(((tt, f"{Path(file).name}:{line} {fn}") for (file, line, fn), (_, _, tt, _, _) in stats.items()),
                  reverse=True)[:k]
    return [(name, tt) for tt, name in rows]


def bench_extraction(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Ratio 1: extract words/s ÷ bare forward words/s over the same recorded inputs, median of repeats."""
    from neuroscope.registry import MODELS

    settings = store_defaults()
    if args.batch_tokens:
        settings["batch_tokens"] = args.batch_tokens
    words = ud_words(Path(args.data), 200 if args.quick else None)
    n_words = sum(len(s) for s in words)
    source = MODELS.get("minilm")(device=args.device)
    with ForwardRecorder(source.model, keep=True) as rec:  # warm-up; records the exact forward inputs
        warm = timed_extract(source, words, work, settings)
    inside = rec.seconds
    ours, bare = [], []
    for _ in range(args.repeats):  # alternate so that drift in the machine's load hits both alike
        ours.append(timed_extract(source, words, work, settings))
        bare.append(bare_forward(source.model, rec.calls))
    prof = cProfile.Profile()
    prof.enable()
    profiled = timed_extract(source, words, work, settings)
    prof.disable()
    med_ours, med_bare = statistics.median(ours), statistics.median(bare)
    return {"sentences": len(words), "words": n_words, "batches": len(rec.calls), "settings": settings,
            "subword_positions": int(sum(int(kw["input_ids"].numel()) for _, kw in rec.calls if "input_ids" in kw)),
            "ours_s": ours, "bare_s": bare, "ours_wps": n_words / med_ours, "bare_wps": n_words / med_bare,
            "ratio": med_bare / med_ours, "warmup_s": warm, "warmup_forward_s": inside,
            "profiled_s": profiled, "phases": profile_phases(prof, PHASES), "top": top_own(prof, 12)}


# ---- 2. correlation ------------------------------------------------------------------------
class ArrayNeurons:
    """A NeuronSource over an in-memory [tokens, units] array: word "w<i>" is row i."""

    def __init__(self, x: Any, tag: str) -> None:
        self.x, self.tag = x, tag
        self.sites = ["s0"]
        self.units = {"s0": int(x.shape[1])}

    def fingerprint(self) -> dict[str, Any]:
        return {"bench": "limits", "tag": self.tag, "shape": list(self.x.shape)}

    def extract(self, sentences: list[list[str]]) -> dict[str, Any]:
        import numpy as np
        import torch

        rows = np.fromiter((int(w[1:]) for s in sentences for w in s), dtype=np.int64)
        return {"s0": torch.from_numpy(self.x[rows])}


def build_store(x: Any, tag: str, root: Path, dtype: str, shard_tokens: int) -> Any:
    """An activation store of array `x` built through `extract` (sentences of SENT words)."""
    from neuroscope.store import extract

    words = [f"w{i}" for i in range(x.shape[0])]
    sentences = [words[i:i + SENT] for i in range(0, len(words), SENT)]
    store, _ = extract(ArrayNeurons(x, tag), sentences, root, dtype=dtype, shard_tokens=shard_tokens,
                       batch_tokens=8192, progress=False, name=tag)
    return store


def flops(n: int, nx: int, ny: int) -> tuple[float, float]:
    """(Σ_XY FLOPs, all products' FLOPs: Σ_XY + the symmetric Σ_XX and Σ_YY)."""
    xy = 2.0 * n * nx * ny
    return xy, xy + float(n) * nx * (nx + 1) + float(n) * ny * (ny + 1)


def timed(fn: Callable[[], Any]) -> float:
    """Wall seconds of one call."""
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


CORR_PHASES = [
    ("block reads (ActivationStore.read)", "neuroscope/store/", "read", "max"),
    ("astype casts (float64 in, float32 out)", "~", "<method 'astype' of 'numpy.ndarray' objects>", "cum"),
    ("column / row sums", "~", "<method 'sum' of 'numpy.ndarray' objects>", "cum"),
    ("own time in neuroscope/methods/* (products, arithmetic)", "neuroscope/methods/", "*", "own"),
    ("pair_stats, all (profiled)", "neuroscope/methods/correlation.py", "pair_stats", "max"),
]


def bench_correlation(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Ratio 2: pair_stats' effective GFLOP/s (products=float32) ÷ one big float32 GEMM's, and variants."""
    import numpy as np

    from neuroscope.methods.correlation import ArraySource, pair_stats

    n, nx, ny = (16384, 500, 1000) if args.quick else (args.tokens, *args.neurons)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, nx), dtype=np.float32)
    y = rng.standard_normal((n, ny), dtype=np.float32)
    shard = store_defaults()["shard_tokens"]
    t = time.perf_counter()
    stores = {dt: (build_store(x, f"x-{dt}", work, dt, shard), build_store(y, f"y-{dt}", work, dt, shard))
              for dt in ("float32", "float16")}
    build_s = time.perf_counter() - t
    f_xy, f_all = flops(n, nx, ny)
    warm = min(n, 2048)  # warm-up: imports, BLAS buffers
    pair_stats(ArraySource(x[:warm]), [ArraySource(y[:warm])], products="float32", label="limits")
    gemm = [timed(lambda: x.T @ y) for _ in range(args.repeats)]
    gemm_rate = f_xy / statistics.median(gemm) / 1e9
    runs = {}
    plans = [("float32 stores, block_rows 8192 (default)", stores["float32"], 8192),
             ("float16 stores, block_rows 8192", stores["float16"], 8192),
             ("float32 stores, block_rows 32768", stores["float32"], 32768),
             ("in-memory ArraySource, block_rows 8192", (ArraySource(x), ArraySource(y)), 8192)]
    for i, (label, (sx, sy), rows) in enumerate(plans):
        reps = args.repeats if i == 0 else 1
        secs = [timed(lambda sx=sx, sy=sy, rows=rows: pair_stats(sx, [sy], block_rows=rows, products="float32",
                                                                  label="limits"))
                for _ in range(reps)]
        med = statistics.median(secs)
        runs[label] = {"seconds": secs, "xy_gflops": f_xy / med / 1e9, "all_gflops": f_all / med / 1e9,
                       "xy_ratio": f_xy / med / 1e9 / gemm_rate, "all_ratio": f_all / med / 1e9 / gemm_rate}
    # the three products alone at block size, over as many blocks as the pass does
    bx, by = x[:8192] - x[:8192].mean(0), y[:8192] - y[:8192].mean(0)
    blocks = n / len(bx)
    products = {"xx": timed(lambda: bx.T @ bx) * blocks, "yy": timed(lambda: by.T @ by) * blocks,
                "xy": timed(lambda: bx.T @ by) * blocks}
    prof = cProfile.Profile()
    sx, sy = stores["float32"]
    prof.enable()
    pair_stats(sx, [sy], products="float32", label="limits")
    prof.disable()
    return {"n": n, "nx": nx, "ny": ny, "build_s": build_s, "gemm_s": gemm, "gemm_gflops": gemm_rate,
            "flops_xy": f_xy, "flops_all": f_all, "runs": runs, "products_at_block_s": products,
            "phases": profile_phases(prof, CORR_PHASES), "top": top_own(prof, 12)}


# ---- 3. study against NeuroX ---------------------------------------------------------------
def neurox_python(given: str | None) -> tuple[str | None, str]:
    """The python of an existing NeuroX venv (bench/neurox_env.sh's), or None and why not.
    The venv is never built here: building it downloads torch and NeuroX."""
    if given:
        return (given, "") if Path(given).exists() else (None, f"--neurox-python {given} does not exist")
    venv = Path(os.environ.get("NEUROX_VENV", Path.home() / ".cache" / "neuroscope" / "bench-neurox-venv"))
    py = venv / "bin" / "python"
    if not (py.exists() and (venv / ".neurox-bench-spec").exists()):
        return None, (f"NeuroX's venv is not built ({venv}); build it with `bash bench/neurox_env.sh` "
                      "(downloads torch 2.13 + NeuroX 1.0.9) or pass --neurox-python")
    probe = subprocess.run([str(py), "-c", "import neurox.interpretation.linear_probe"], capture_output=True)
    if probe.returncode:
        return None, f"{py} cannot import NeuroX: {probe.stderr.decode(errors='replace')[-300:]}"
    return str(py), ""


def bench_study(args: argparse.Namespace) -> dict[str, Any]:
    """Ratio 3: bench/study.py's warm speed ratio (median of 3), or why it was skipped."""
    if args.quick or args.skip_study:
        return {"skipped": "--quick" if args.quick else "--skip-study"}
    py, why = neurox_python(args.neurox_python)
    if py is None:
        return {"skipped": why}
    cmd = [sys.executable, str(HERE / "study.py"), "--repeats", "3", "--threads", str(args.threads),
           "--skip-default", "--neurox-python", py, "--data", args.data]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if proc.returncode:
        return {"skipped": f"bench/study.py failed: {proc.stderr[-500:]}"}
    found = re.search(r"^warm: speed ([0-9.]+)x", proc.stdout, re.MULTILINE)
    if not found:
        return {"skipped": f"no warm ratio in bench/study.py's output: {proc.stdout[-500:]}"}
    return {"ratio": float(found.group(1)), "seconds": time.perf_counter() - t, "output": proc.stdout}


# ---- the report ----------------------------------------------------------------------------
def verdict(ratio: float, goal: float) -> str:
    return f"{ratio:.2f}{'x' if goal > 1 else ''} (goal >= {goal:g}: {'met' if ratio >= goal else 'NOT met'})"


def print_extraction(e: dict[str, Any], threads: int) -> None:
    s = e["settings"]
    print(f"\n1. extraction: MiniLM all 7 sites, {e['sentences']} UD EWT dev sentences, {e['words']} words, "
          f"{e['batches']} batches ({e['subword_positions']} padded subword positions), dtype {s['dtype']}, "
          f"batch_tokens {s['batch_tokens']}, shard_tokens {s['shard_tokens']}, {threads} thread(s)")
    print(f"   extract      {e['ours_wps']:9.1f} words/s  (s: {', '.join(f'{v:.2f}' for v in e['ours_s'])})")
    print(f"   bare forward {e['bare_wps']:9.1f} words/s  (s: {', '.join(f'{v:.2f}' for v in e['bare_s'])})")
    print(f"   ratio extract / bare forward: {verdict(e['ratio'], GOALS['extraction'])}")
    print(f"   warm-up extraction {e['warmup_s']:.2f} s, of which forward (hooks) {e['warmup_forward_s']:.2f} s "
          f"= {e['warmup_forward_s'] / e['warmup_s']:.0%}")
    print(f"   profiled extraction (cProfile, {e['profiled_s']:.2f} s): phases")
    for label, sec in e["phases"]:
        print(f"     {label:46s} {sec:7.3f} s")
    print("   largest own times:")
    for name, sec in e["top"]:
        print(f"     {name[:70]:70s} {sec:7.3f} s")


def print_correlation(c: dict[str, Any]) -> None:
    print(f"\n2. correlation: pair_stats(products=float32), X [{c['n']}, {c['nx']}], Y [{c['n']}, {c['ny']}] "
          f"(stores built in {c['build_s']:.1f} s); FLOPs Σ_XY {c['flops_xy']:.3g}, all products "
          f"{c['flops_all']:.3g} (Σ_XX, Σ_YY counted symmetric: n·k·(k+1))")
    print(f"   baseline: one float32 GEMM X^T Y in RAM: {c['gemm_gflops']:.1f} GFLOP/s "
          f"(s: {', '.join(f'{v:.2f}' for v in c['gemm_s'])})")
    print(f"   {'pass':44s} {'seconds':>8s} {'Σ_XY GF/s':>10s} {'ratio':>6s} {'all GF/s':>9s} {'ratio':>6s}")
    for label, r in c["runs"].items():
        print(f"   {label:44s} {statistics.median(r['seconds']):8.2f} {r['xy_gflops']:10.1f} {r['xy_ratio']:6.2f} "
              f"{r['all_gflops']:9.1f} {r['all_ratio']:6.2f}")
    first = next(iter(c["runs"].values()))
    print(f"   ratio (default pass, all products): {verdict(first['all_ratio'], GOALS['correlation'])}; "
          f"Σ_XY only: {first['xy_ratio']:.2f}")
    p = c["products_at_block_s"]
    print(f"   the products alone at block size 8192 (one block timed, x blocks): Σ_XX {p['xx']:.2f} s, "
          f"Σ_YY {p['yy']:.2f} s, Σ_XY {p['xy']:.2f} s, sum {sum(p.values()):.2f} s")
    print("   profiled pass (cProfile): phases")
    for label, sec in c["phases"]:
        print(f"     {label:56s} {sec:7.3f} s")
    print("   largest own times:")
    for name, sec in c["top"]:
        print(f"     {name[:70]:70s} {sec:7.3f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (~1 minute): checks that the script works")
    ap.add_argument("--threads", type=int, default=None, help="torch and BLAS threads (default: usable cores)")
    ap.add_argument("--repeats", type=int, default=None, help="median over repeats (default 3; --quick 1)")
    ap.add_argument("--data", default=os.environ.get("NEUROSCOPE_DATA", str(REPO.parent / "shared" / "data")))
    ap.add_argument("--device", default="cpu", help="model device for extraction (cpu, cuda)")
    ap.add_argument("--batch-tokens", type=int, default=None, help="extraction batch size (default: conf's)")
    ap.add_argument("--tokens", type=int, default=100_000, help="correlation: tokens n")
    ap.add_argument("--neurons", default="2000,4000", help="correlation: nx,ny")
    ap.add_argument("--neurox-python", default=None, help="python of an existing NeuroX venv")
    ap.add_argument("--skip-study", action="store_true", help="do not run bench/study.py")
    ap.add_argument("--only", default="extraction,correlation,study", help="which ratios to measure")
    ap.add_argument("--json-out", default=None, help="also write every number to this JSON file")
    args = ap.parse_args()
    args.threads = args.threads or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                    else os.cpu_count() or 1)
    args.repeats = args.repeats or (1 if args.quick else 3)
    try:
        args.neurons = tuple(int(v) for v in args.neurons.split(","))
        if len(args.neurons) != 2 or min(args.neurons) < 1 or args.tokens < 2:
            raise ValueError
    except ValueError:
        ap.error(f"--neurons: expected nx,ny (two positive integers) and --tokens >= 2, got {args.neurons!r}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from neuroscope.cli import quiet_libraries

    quiet_libraries()
    set_threads(args.threads)
    info = machine()
    start_load = loadavg()
    print(f"machine: {info['cpu']}, {info['cores']} cores ({info['usable_cores']} usable), Python {info['python']}, "
          f"torch {info['torch']} ({info['torch_threads']} threads), numpy {info['numpy']}, BLAS {info['blas']}; "
          f"thread pools: {'; '.join(info['thread_pools'])}")
    print(f"code: neuroscope {code_version()}")
    print(f"load average at start: {start_load}  ({'--quick' if args.quick else 'recorded sizes'}, "
          f"{args.threads} thread(s), {args.repeats} repeat(s))", flush=True)
    only = set(args.only.split(","))
    out: dict[str, Any] = {"machine": info, "threads": args.threads, "quick": args.quick, "load_start": start_load}
    work = Path(tempfile.mkdtemp(prefix="bench-limits-"))
    try:
        if "extraction" in only:
            out["extraction"] = bench_extraction(args, work)
            print_extraction(out["extraction"], args.threads)
            sys.stdout.flush()
        if "correlation" in only:
            out["correlation"] = bench_correlation(args, work)
            print_correlation(out["correlation"])
            sys.stdout.flush()
        if "study" in only:
            out["study"] = bench_study(args)
            st = out["study"]
            print("\n3. study against NeuroX (bench/study.py, warm, median of 3): "
                  + (verdict(st["ratio"], GOALS["study"]) if "ratio" in st else f"skipped: {st['skipped']}"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out["load_end"] = loadavg()
    print("\nsummary")
    if "extraction" in out:
        print(f"  extraction words/s, extract / bare forward:        {verdict(out['extraction']['ratio'], GOALS['extraction'])}")
    if "correlation" in out:
        first = next(iter(out["correlation"]["runs"].values()))
        print(f"  correlation GFLOP/s, pass / GEMM (all products):   {verdict(first['all_ratio'], GOALS['correlation'])}"
              f"; Σ_XY only {first['xy_ratio']:.2f}")
    if "study" in out:
        st = out["study"]
        print("  study, NeuroX seconds / ours (warm):               "
              + (verdict(st["ratio"], GOALS["study"]) if "ratio" in st else "skipped"))
    print(f"load average at start {start_load}, at end {out['load_end']}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
