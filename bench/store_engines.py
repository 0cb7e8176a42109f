"""One store built three ways in one run: one process, 2 Ray workers, a 2-task submitit job array.

    python bench/store_engines.py [--sentences 2001] [--workers 2] [--threads 1] [--engines local,ray,submitit]

All-MiniLM-L6-v2 (every layer, 2,688 neurons) over UD EWT dev from $NEUROSCOPE_DATA, the same
batch plan and torch threads per worker everywhere. Prints each build's wall time (model loads
included: every worker loads the model once, the driver once for the store key), the speed-up
over the one-process build, and whether each store's shards and offsets are byte-identical to it.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sentences", type=int, default=2001)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--engines", default="local,ray,submitit")
    args = ap.parse_args()

    from neuroscope.cli import quiet_libraries
    from neuroscope.data.readers import read_conllu
    from neuroscope.registry import MODELS
    from neuroscope.store import extract
    from neuroscope.store.parallel import BuildPlan

    quiet_libraries()
    conllu = Path(os.environ.get("NEUROSCOPE_DATA", "../shared/data")) / "ud" / "en_ewt-ud-dev.conllu"
    words = [s.words for s in read_conllu(conllu)[: args.sentences]]
    make = functools.partial(MODELS.get("minilm"))
    tmp = Path(tempfile.mkdtemp(prefix="ns-engines-"))
    print(f"# {len(words)} sentences, {sum(map(len, words))} words; threads per worker {args.threads}; "
          f"load average {os.getloadavg()[0]:.2f}; cores {os.cpu_count()}")
    results: dict[str, tuple[float, Path]] = {}
    try:
        for engine in args.engines.split(","):
            plan = BuildPlan(threads=args.threads) if engine == "local" else BuildPlan(
                engine, args.workers, args.threads, ray={"num_cpus": args.workers},
                submitit={"cluster": "local", "folder": str(tmp / f"jobs-{engine}"), "timeout_min": 60})
            if engine == "ray":  # the cluster's start is not the build's
                import ray

                t = time.perf_counter()
                ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
                print(f"ray.init: {time.perf_counter() - t:.1f} s")
            t0 = time.perf_counter()
            store, _ = extract(make(), words, tmp / engine, plan=plan, make_source=make, progress=False)
            results[engine] = (time.perf_counter() - t0, store.path)
        base = results.get("local")
        for engine, (seconds, path) in results.items():
            line = f"{engine:9s} {seconds:8.1f} s"
            if base and engine != "local":
                same = _files(path) == _files(base[1])
                line += f"   speed-up {base[0] / seconds:.2f}x   byte-identical to local: {same}"
            print(line)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"# load average at end {os.getloadavg()[0]:.2f}")


def _files(folder: Path) -> dict[str, bytes]:
    """Every shard file and offsets.npy of a store, by relative path."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "manifest.json"}


if __name__ == "__main__":
    main()
