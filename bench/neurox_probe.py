"""Time NeuroX 1.0.9's linear probe; print one JSON line of results.

Run inside the venv made by ``bench/neurox_env.sh`` (``bench/probe.py`` does it for you)::

    python bench/neurox_probe.py --data DIR --order-out FILE.npy [--lam 1e-3] [--threads 2]

DIR holds ``X_train.npy``, ``y_train.npy``, ``X_test.npy``, ``y_test.npy`` (float32
[tokens, neurons] and int64 [tokens]) and ``meta.json`` (``n_classes``), as written by
``bench/probe.py``. The arrays are loaded with numpy, as NeuroX users do with in-memory
activations, then NeuroX's own functions run with their defaults (10 epochs, batch 32, Adam
lr 1e-3, no shuffling, no dev set): ``train_logistic_regression_probe(lambda_l1=lam,
lambda_l2=lam)``, ``evaluate_probe(idx_to_class=...)`` on test and ``get_neuron_ordering``.
Each part is timed, peak RSS is VmHWM; the ordering is saved to FILE.npy. NeuroX's prints go to /dev/null and
its tqdm bars to stderr. ``torch.manual_seed(--seed)`` makes the probe's initialisation repeatable; a throwaway Adam
is built first, unclocked, since torch's first optimizer imports torch._dynamo (1-3 s).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

T_IMPORT = time.perf_counter()
import numpy as np  # noqa: E402
import torch  # noqa: E402
from neurox.interpretation import linear_probe as lp  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - T_IMPORT


def status_mib(field: str) -> float:
    """A memory field of /proc/self/status in MiB: VmRSS (now) or VmHWM (peak of this process
    image; ru_maxrss would include the parent's RSS, which Linux carries over fork + exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="folder with X_*.npy, y_*.npy and meta.json")
    ap.add_argument("--order-out", required=True, help="where to save the neuron ordering (.npy)")
    ap.add_argument("--lam", type=float, default=1e-3, help="lambda_l1 = lambda_l2")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--seed", type=int, default=0, help="torch seed (the probe's initialisation and batch order)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])  # unclocked: imports torch._dynamo (1-3 s)
    torch.manual_seed(args.seed)
    base = status_mib("VmRSS")

    d = Path(args.data)
    n_classes = int(json.loads((d / "meta.json").read_text())["n_classes"])
    x_train, y_train = np.load(d / "X_train.npy"), np.load(d / "y_train.npy")
    x_test, y_test = np.load(d / "X_test.npy"), np.load(d / "y_test.npy")
    idx_to_class = {i: str(i) for i in range(n_classes)}
    class_to_idx = {c: i for i, c in idx_to_class.items()}

    with contextlib.redirect_stdout(open(os.devnull, "w")):
        t0 = time.perf_counter()
        probe = lp.train_logistic_regression_probe(x_train, y_train, lambda_l1=args.lam, lambda_l2=args.lam)
        t1 = time.perf_counter()
        scores = lp.evaluate_probe(probe, x_test, y_test, idx_to_class=idx_to_class)
        t2 = time.perf_counter()
        ordering, _cutoffs = lp.get_neuron_ordering(probe, class_to_idx)
        t3 = time.perf_counter()
    np.save(args.order_out, np.asarray(ordering, dtype=np.int64))

    result: dict[str, Any] = {
        "tool": "neurox", "version": "1.0.9",
        "fit_s": round(t1 - t0, 3), "eval_s": round(t2 - t1, 3), "order_s": round(t3 - t2, 3),
        "total_s": round(t3 - t0, 3), "import_s": round(IMPORT_SECONDS, 3),
        "peak_rss_mib": round(status_mib("VmHWM"), 1),
        "base_rss_mib": round(base, 1),
        "accuracy": float(scores["__OVERALL__"]),
        "epochs": 10, "n_train": int(len(y_train)), "n_test": int(len(y_test)),
        "n_ordered": len(ordering), "torch_threads": torch.get_num_threads(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
