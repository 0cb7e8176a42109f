"""Orderings do not depend on the CPU: equal scores are ordered by neuron index (stable sorts) or,
where a method says so, by a seeded permutation (the tie rule in neuroscope/methods/base.py).

NumPy dispatches its sorts by CPU: on AVX-512 machines the default (unstable) argsort breaks ties
differently from the AVX2 one. The subprocess test runs the ordering tests and dumps many-tie
orderings twice, with AVX-512 enabled and with it disabled through NPY_DISABLE_CPU_FEATURES, and
asserts byte-identical dumps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from neuroscope.methods.base import NeuronRanking
from neuroscope.methods.iou import iou
from neuroscope.methods.lca import get_bottom_neurons, get_neuron_ordering, get_top_neurons, lca
from neuroscope.methods.probeless import probeless
from neuroscope.methods.weight_norm import weight_norm
from neuroscope.reporting.neurons import neuron_profiles
from tests.conftest import REPO

# NumPy's AVX-512 dispatch targets on x86 (features the build does not dispatch are ignored with an
# ImportWarning, so the same value serves every NumPy 2 build)
AVX512_OFF = "X86_V4 AVX512_ICL AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL"

# the ordering tests the two subprocesses run (every test of this file but the subprocess one)
TIE_TESTS = [
    "tests/test_methods.py::test_matches_outputs_recorded_from_neurox_1_0_9",
    "tests/test_methods.py::test_equal_weights_are_ordered_by_neuron_index_in_both_directions",
    "tests/test_methods.py::test_lca_ordering_matches_hand_computation",
    "tests/test_methods.py::test_all_zero_columns_come_last_in_a_seeded_order_not_column_order",
    "tests/test_methods.py::test_top_and_bottom_neurons_follow_neurox_semantics",
    "tests/test_determinism.py::test_from_scores_orders_equal_scores_by_neuron_index",
    "tests/test_determinism.py::test_neuron_profiles_order_equal_means_by_type_and_equal_activations_by_corpus",
    "tests/test_determinism.py::test_tied_rankings_follow_the_rule",
]


class ArrayStore:
    """The part of an ActivationStore that neuron_profiles reads, over an array [tokens, neurons]."""

    def __init__(self, x: np.ndarray, neurons: list[str]) -> None:
        self.x, self.neurons, self.n_tokens = x, neurons, len(x)

    def read(self, neurons: list[str]) -> np.ndarray:
        return self.x[:, [self.neurons.index(n) for n in neurons]]


def tied_probe(classes: int = 17, neurons: int = 2688, zero_columns: int = 400) -> np.ndarray:
    """[classes, neurons] float32 weights of a sparse probe: few distinct values (±.1, ±.2, ±.3),
    70 % zeros and `zero_columns` all-zero columns, so nearly every ordering step meets ties."""
    rng = np.random.default_rng(7)
    w = rng.choice(np.array([-0.3, -0.2, -0.1, 0.1, 0.2, 0.3], dtype=np.float32), size=(classes, neurons))
    w[rng.random(w.shape) < 0.7] = 0.0
    w[:, rng.permutation(neurons)[:zero_columns]] = 0.0
    return w


def tied_acts(tokens: int = 600, neurons: int = 300, classes: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Activations [tokens, neurons] of 3 levels (many neurons identical or constant) and labels [tokens]."""
    rng = np.random.default_rng(11)
    labels = rng.integers(0, classes, tokens)
    base = rng.integers(0, 3, size=(tokens, 20)).astype(np.float32)
    acts = base[:, rng.integers(0, 20, neurons)]  # columns repeat: equal scores
    acts[:, rng.permutation(neurons)[:100]] = 1.0  # constant neurons: score 0
    return acts, labels


def tie_orderings() -> dict[str, Any]:
    """Every kind of ordering the library makes, on inputs full of ties (JSON-ready ints)."""
    w = tied_probe()
    c2i = {f"c{i}": i for i in range(w.shape[0])}
    out: dict[str, Any] = {"lca": lca(w, list(c2i), seed=0).order.tolist()}
    for name, fn in (("top", get_top_neurons), ("bottom", get_bottom_neurons)):
        for pct in (0.05, 0.3, 0.9):
            union, per = fn(w, pct, c2i)
            out[f"{name}_{pct}"] = {"union": union.tolist(), "per": {k: v.tolist() for k, v in per.items()}}
    ordering, cutoffs = get_neuron_ordering(w, c2i)
    out["neuron_ordering"] = {"ordering": ordering, "cutoffs": cutoffs}
    scores = np.abs(w).sum(0)  # [neurons] few distinct values
    out["from_scores"] = NeuronRanking.from_scores(scores).order.tolist()
    out["from_scores_seeded"] = NeuronRanking.from_scores(scores, seed=3).order.tolist()
    out["weight_norm"] = weight_norm(w, seed=0).order.tolist()
    acts, labels = tied_acts()
    out["probeless"] = probeless(acts, labels).order.tolist()
    out["iou"] = iou(acts, labels).order.tolist()
    sentences = [[f"w{(7 * i + j) % 50}" for j in range(6)] for i in range(60)]
    prof = neuron_profiles(ArrayStore(acts[:360], [f"l:{j}" for j in range(300)]), sentences,
                           [f"l:{j}" for j in range(0, 300, 30)], top_words=10, n_sentences=3, min_count=1)
    out["profiles"] = [{"top": [t["word"] for t in p["top_words"]], "bottom": [t["word"] for t in p["bottom_words"]],
                        "sentences": [s["index"] for s in p["sentences"]]} for p in prof]
    return out


def test_from_scores_orders_equal_scores_by_neuron_index() -> None:
    scores = np.array([0.5, 0.0, 0.5, 0.0, 0.9] * 200)  # [1000]
    order = NeuronRanking.from_scores(scores).order
    by_rule = sorted(range(1000), key=lambda i: (-scores[i], i))
    assert order.tolist() == by_rule
    seeded = NeuronRanking.from_scores(scores, seed=0).order
    assert np.array_equal(seeded, NeuronRanking.from_scores(scores, seed=0).order)
    assert np.array_equal(np.sort(scores[seeded])[::-1], scores[seeded])  # still by score first


def test_neuron_profiles_order_equal_means_by_type_and_equal_activations_by_corpus() -> None:
    """Word type t fires at level t % 3, so 13-14 types share each mean and many tokens each
    |activation|: top and bottom words come in type order, sentences in corpus order (NumPy's
    unstable sort scrambled equal values)."""
    sentences = [[f"t{(3 * i + j) % 40:02d}" for j in range(4)] for i in range(40)]
    level = [float(int(w[1:]) % 3) for s in sentences for w in s]
    x = np.array(level, dtype=np.float32)[:, None]  # [tokens, 1]
    prof = neuron_profiles(ArrayStore(x, ["l:0"]), sentences, ["l:0"], top_words=10, n_sentences=3, min_count=1)[0]
    assert [t["word"] for t in prof["top_words"]] == [f"t{i:02d}" for i in range(2, 40, 3)][:10]
    assert [t["word"] for t in prof["bottom_words"]] == [f"t{i:02d}" for i in range(0, 40, 3)][:10]
    firing = [i for i, s in enumerate(sentences) if any(int(w[1:]) % 3 == 2 for w in s)]
    assert [s["index"] for s in prof["sentences"]] == firing[:3]


def test_tied_rankings_follow_the_rule() -> None:
    """On the many-tie inputs every ordering is what the rule says, checked from first principles."""
    w = tied_probe()
    a = np.abs(w)
    c2i = {f"c{i}": i for i in range(w.shape[0])}
    union, per = get_top_neurons(w, 0.3, c2i)
    for c, i in c2i.items():  # per class: descending |w|, equal |w| by ascending neuron index
        assert per[c].tolist() == sorted(range(w.shape[1]), key=lambda j, i=i: (-a[i, j], j))[: len(per[c])]
    mass = a.sum(0)  # [neurons] float32, summed as the library sums it
    assert union.tolist() == sorted(union.tolist(), key=lambda j: (-mass[j], j))
    _, per = get_bottom_neurons(w, 0.3, c2i)
    for c, i in c2i.items():
        assert per[c].tolist() == sorted(range(w.shape[1]), key=lambda j, i=i: (a[i, j], j))[: len(per[c])]
    acts, labels = tied_acts()
    for ranking in (probeless(acts, labels), iou(acts, labels)):
        s = ranking.scores
        assert ranking.order.tolist() == sorted(range(len(s)), key=lambda j, s=s: (-s[j], j))
        assert len(set(s.tolist())) < len(s) // 2  # many ties


def dump_orderings(path: str) -> None:
    """Write `tie_orderings()` as JSON to `path`, and which AVX-512 code paths NumPy used beside it."""
    from numpy._core._multiarray_umath import __cpu_features__

    Path(path).write_text(json.dumps(tie_orderings(), sort_keys=True))
    cpu = {k: bool(__cpu_features__.get(k, False)) for k in ("X86_V4", "AVX512_ICL", "AVX512F")}
    Path(path + ".cpu").write_text(json.dumps(cpu))


def test_orderings_are_byte_identical_with_and_without_avx512(tmp_path: Path) -> None:
    """Run the ordering tests and dump the many-tie orderings in two subprocesses, NumPy's
    AVX-512 paths on and off; the dumps must be byte-identical. On a CPU without AVX-512 both
    runs take the same code paths: the test still runs (and checks the tests pass there)."""
    dumps = {}
    for name, disable in (("native", None), ("no_avx512", AVX512_OFF)):
        env = {k: v for k, v in os.environ.items() if k != "NPY_DISABLE_CPU_FEATURES"}
        if disable:
            env["NPY_DISABLE_CPU_FEATURES"] = disable
        tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                f"--basetemp={tmp_path / ('pytest_' + name)}", *TIE_TESTS],
                               cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert tests.returncode == 0, f"{name}:\n{tests.stdout[-3000:]}\n{tests.stderr[-2000:]}"
        assert f"{len(TIE_TESTS)} passed" in tests.stdout
        out = tmp_path / f"{name}.json"
        dumped = subprocess.run([sys.executable, "-c", "import sys; from tests.test_determinism import "
                                 "dump_orderings; dump_orderings(sys.argv[1])", str(out)],
                                cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert dumped.returncode == 0, dumped.stderr[-3000:]
        dumps[name] = out.read_bytes()
        if disable:  # the variable took effect: NumPy ran without its AVX-512 dispatch
            assert json.loads((tmp_path / f"{name}.json.cpu").read_text())["X86_V4"] is False
    assert dumps["native"] == dumps["no_avx512"]
    assert json.loads(dumps["native"])["lca"][:5] == tie_orderings()["lca"][:5]  # the dump is what this process computes


if __name__ == "__main__":
    dump_orderings(sys.argv[1])
