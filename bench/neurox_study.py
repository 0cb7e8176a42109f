"""NeuroX 1.0.9's whole probing study as a NeuroX user runs it; one JSON line of results.

Run inside the venv made by ``bench/neurox_env.sh`` (``bench/study.py`` does it for you)::

    python bench/neurox_study.py --activations OUT/activations.hdf5 --data DIR [--lam 1e-3] [--threads 2]

DIR holds ``train.word`` / ``train.label`` / ``test.word`` / ``test.label`` (NeuroX's text
format) and ``split.json`` (``train`` and ``test``: the sentence numbers of those files in the
activations file, which holds every sentence of the corpus in order). The study is the one
the papers run: NeuroX's loaders (``load_activations``, ``load_data``, ``create_tensors``), one
oracle probe (``train_logistic_regression_probe``, its defaults: 10 epochs, batch 32), its test
accuracy, ``get_neuron_ordering``, then a probe retrained on the top / random / bottom k % of
neurons for each k (``filter_activations_keep_neurons``) with its test accuracy. Everything
after the imports is timed; the caller times the whole process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from pathlib import Path

T0 = time.perf_counter()
import numpy as np  # noqa: E402
import torch  # noqa: E402
from neurox.data import loader  # noqa: E402
from neurox.interpretation import ablation, utils  # noqa: E402
from neurox.interpretation import linear_probe as lp  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - T0
# NeuroX 1.0.9 was written for NumPy < 1.24: create_tensors uses the removed alias np.int
# (= the builtin int). Restoring the alias changes nothing else.
np.int = int  # type: ignore[attr-defined]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--activations", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--lam", type=float, default=1e-3, help="lambda_l1 = lambda_l2")
    ap.add_argument("--percents", default="1,5,20")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--majority", default="NOUN", help="label for test labels unseen in train")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    d = Path(args.data)
    split = json.loads((d / "split.json").read_text())
    quiet = contextlib.redirect_stdout(open(os.devnull, "w"))
    t = time.perf_counter()
    with quiet:
        acts, _ = loader.load_activations(args.activations)
        parts = {}
        for name in ("train", "test"):
            a = [acts[i] for i in split[name]]
            tokens = loader.load_data(str(d / f"{name}.word"), str(d / f"{name}.label"), a, 512)
            parts[name] = (tokens, a)
        del acts
        x_train, y_train, mapping = utils.create_tensors(*parts["train"], args.majority)
        x_test, y_test, _ = utils.create_tensors(*parts["test"], args.majority, mappings=mapping)
    load_seconds = time.perf_counter() - t
    label2idx, idx2label = mapping[0], mapping[1]

    def fit_score(cols: np.ndarray | None) -> tuple[float, object]:
        xtr = x_train if cols is None else ablation.filter_activations_keep_neurons(x_train, cols)
        xte = x_test if cols is None else ablation.filter_activations_keep_neurons(x_test, cols)
        with quiet:
            probe = lp.train_logistic_regression_probe(xtr, y_train, lambda_l1=args.lam, lambda_l2=args.lam)
            acc = float(lp.evaluate_probe(probe, xte, y_test, idx_to_class=idx2label)["__OVERALL__"])
        return (acc / 100 if acc > 1 else acc), probe

    t = time.perf_counter()
    oracle, probe = fit_score(None)
    with quiet:
        ordering, _ = lp.get_neuron_ordering(probe, label2idx)
    n = x_train.shape[1]
    ordering = list(ordering) + [i for i in range(n) if i not in set(ordering)]
    rng = np.random.default_rng(args.seed)
    subsets: dict[str, dict[str, float]] = {"top": {}, "random": {}, "bottom": {}}
    for p in [float(v) for v in args.percents.split(",")]:
        k = max(1, int(round(p / 100 * n)))
        for kind, cols in (("top", ordering[:k]), ("random", rng.permutation(n)[:k]), ("bottom", ordering[-k:])):
            subsets[kind][f"{p:g}"] = fit_score(np.sort(np.asarray(cols)))[0]
    study_seconds = time.perf_counter() - t
    print(json.dumps({"tool": "neurox", "version": "1.0.9", "import_seconds": round(IMPORT_SECONDS, 2),
                      "load_seconds": round(load_seconds, 2), "study_seconds": round(study_seconds, 2),
                      "train_tokens": int(len(y_train)), "test_tokens": int(len(y_test)), "neurons": int(n),
                      "oracle": oracle, "subsets": subsets}))


if __name__ == "__main__":
    main()
