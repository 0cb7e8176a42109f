"""Cross-model correlation: streamed statistics against NumPy, planted shared neurons, dead
neurons, mismatched models."""

from __future__ import annotations

import numpy as np
import pytest

from neuroscope.errors import ConfigError
from neuroscope.methods.base import rank
from neuroscope.methods.correlation import (
    ArraySource,
    best_partners,
    canonical,
    linear_cka,
    multiple_correlation,
    pair_stats,
)
from tests.test_entrypoints import study  # noqa: F401  (fixture)

METHODS = ["maxcorr", "mincorr", "regcorr", "svcca", "cca"]


def models(n: int = 3000, neurons: int = 30, shared: int = 5, k: int = 3, seed: int = 0) -> list[np.ndarray]:
    """k "models" [n, neurons]: neurons 0..shared-1 of each carry the same latent signals
    (own scale, sign and noise), every other neuron is the model's own noise."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, shared))
    out = []
    for _ in range(k):
        x = rng.normal(size=(n, neurons))
        x[:, :shared] = latent * rng.choice([-3.0, 2.0], size=shared) + 0.2 * rng.normal(size=(n, shared))
        out.append((x + rng.normal(size=neurons) * 10).astype(np.float32))  # big means: precision check
    return out


def test_streamed_statistics_equal_numpy() -> None:
    x, y = models(n=1000, k=2)
    tokens = np.sort(np.random.default_rng(1).choice(1000, 700, replace=False))
    (s,) = pair_stats(ArraySource(x), [ArraySource(y)], tokens=tokens, block_rows=37)
    full = np.corrcoef(np.concatenate([x[tokens], y[tokens]], 1).astype(np.float64), rowvar=False)
    np.testing.assert_allclose(s.corr(), full[:30, 30:], atol=1e-6)
    np.testing.assert_allclose(s.mean_x, x[tokens].astype(np.float64).mean(0), atol=1e-6)
    np.testing.assert_allclose(s.cxx, np.cov(x[tokens].astype(np.float64), rowvar=False, bias=True), rtol=1e-6, atol=1e-6)
    f32 = pair_stats(ArraySource(x), [ArraySource(y)], tokens=tokens, block_rows=37, products="float32")[0]
    np.testing.assert_allclose(f32.corr(), full[:30, 30:], atol=1e-4)


def test_a_source_whose_read_takes_no_buffer_gives_the_same_statistics() -> None:
    """The pass reads each block into reused buffers; a Source with only `read(neurons, tokens)` (no
    `out`, e.g. a plugin's) is copied into them and gives the same numbers."""
    x, y = models(n=500, k=2)

    class Plain:  # the Source protocol and nothing more
        def __init__(self, a: np.ndarray) -> None:
            self.a, (self.n_tokens, self.n_neurons) = a, a.shape

        def read(self, neurons=None, tokens=None):  # noqa: ANN001, ANN202
            return self.a[tokens]

    for products in ("float64", "float32"):
        (want,) = pair_stats(ArraySource(x), [ArraySource(y)], block_rows=37, products=products)
        (got,) = pair_stats(Plain(x), [Plain(y)], block_rows=37, products=products)
        np.testing.assert_array_equal(got.cxy, want.cxy)
        np.testing.assert_array_equal(got.cxx, want.cxx)


def test_a_model_with_itself_has_maxcorr_one_and_cca_one() -> None:
    (x,) = models(k=1)
    (s,) = pair_stats(ArraySource(x), [ArraySource(x)])
    best, partner = best_partners(s)
    np.testing.assert_allclose(best, 1.0, atol=1e-9)
    assert (partner == np.arange(30)).all()
    np.testing.assert_allclose(multiple_correlation(s), 1.0, atol=1e-4)
    rho, _ = canonical(s)
    np.testing.assert_allclose(rho, 1.0, atol=1e-6)
    assert linear_cka(s) == pytest.approx(1.0)


@pytest.mark.parametrize("method", METHODS)
def test_planted_shared_neurons_rank_first(method: str) -> None:
    x, *others = models()
    pairs = pair_stats(ArraySource(x), [ArraySource(o) for o in others])
    ranking = rank(method, {}, 30, {"pairs": lambda: pairs, "seed": lambda: 0})
    assert set(ranking.order[:5].tolist()) == set(range(5)), (method, ranking.order[:8])
    scores = ranking.ordered_scores()
    assert all(np.isfinite(scores)) and scores[4] > scores[5]
    corr = ranking.detail["correlation"]
    assert corr["partners"]["0"]["model"] in (1, 2) and corr["partners"]["0"]["r"] > 0.95
    assert 0 < corr["similarity"]["linear_cka"] < 1 and len(corr["similarity"]["per_model"]) == 2


@pytest.mark.parametrize("method", METHODS)
def test_a_constant_neuron_ranks_last_without_nan(method: str) -> None:
    x, *others = models()
    x[:, 7] = 4.0  # dead in the studied model
    others[0][:, 3] = -1.0  # and a dead partner candidate
    pairs = pair_stats(ArraySource(x), [ArraySource(o) for o in others])
    ranking = rank(method, {}, 30, {"pairs": lambda: pairs, "seed": lambda: 0})
    assert ranking.order[-1] == 7 and ranking.scores[7] == 0.0
    assert np.isfinite(ranking.scores).all() and np.isfinite(pairs[0].corr()).all()


def test_models_over_other_words_fail_clearly() -> None:
    x, y = models(k=2)
    with pytest.raises(ConfigError, match="same words"):
        pair_stats(ArraySource(x), [ArraySource(y[:-1])])


@pytest.fixture(scope="module")
def second_bert(tiny_bert, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN001, ANN201
    """The tiny BERT's architecture and tokenizer with other random weights (another "seed")."""
    import shutil

    import torch
    from transformers import BertModel

    folder = tmp_path_factory.mktemp("bert_seed1")
    shutil.copytree(tiny_bert, folder, dirs_exist_ok=True)
    torch.manual_seed(1)
    BertModel(BertModel.from_pretrained(tiny_bert).config).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("method", ["maxcorr", "svcca"])
def test_analyze_correlates_two_models_end_to_end(study, second_bert, method: str) -> None:  # noqa: ANN001, F811
    import json

    from neuroscope.analysis import analyze
    from tests.test_entrypoints import compose_analyze, overrides

    out = study["root"] / method
    cfg = compose_analyze(overrides(study, out) + [
        f"method={method}", f"method.others=[{{name: transformer, path: '{second_bert}'}}]",
        "evaluation.percents=[10]", "probe.epochs=2", "probe.selection.grid=[1e-3]", "evaluation.random_draws=2",
        "evaluation.control=false", "evaluation.layer_probes=false"])
    analyze(cfg)
    res = json.loads((out / "results.json").read_text())
    corr = res["correlation"]
    assert corr["method"] == method and corr["models"] == ["transformer", "transformer"]
    assert len(corr["stores"]) == 2 and corr["stores"][0] == res["store"]["path"] != corr["stores"][1]
    assert {"mean_maxcorr", "mean_cca", "linear_cka"} <= set(corr["similarity"])
    assert set(corr["partners"]) == set(res["ranking"]) and len(res["ranking_scores"]) == 48
    p = corr["partners"][res["ranking"][0]]
    assert p["model"] == 1 and p["neuron"].split(":")[0] in ("embeddings", "layer1", "layer2") and 0 <= p["r"] <= 1
    assert res["probe"]["selection_rule"] == "oracle" and "top" in res["subsets"]  # LCA-style evaluation too
    floors = corr["similarity_baseline"]  # noise floors: held-out scores against their pairing floor
    assert {"mean_cca", "mean_regcorr", "linear_cka", "debiased_cka"} <= set(floors) <= set(corr["similarity_heldout"]) | {"mean_maxcorr"}
    assert floors["mean_cca"]["baseline"] == "pairing" and floors["mean_cca"]["draws"] == 3
    if method == "maxcorr":  # and the rotation baseline of the neuron-aligned score
        assert floors["mean_maxcorr"]["baseline"] == "rotation" and len(corr["baseline_scores"]) == 48
        assert set(corr["universal_share"]) == {"1", "all"} and 0 <= corr["universal_share"]["all"] <= 1
        assert set(corr["baseline_quantiles"]["1"]) == {"50", "90", "99"}
    from tests.test_results_contract import documented_keys, resolve

    for key in documented_keys("## Correlation run"):  # the contract's correlation keys
        resolve(res, key)


def test_correlation_without_other_models_is_a_config_error(study) -> None:  # noqa: ANN001, F811
    from neuroscope.analysis import analyze
    from tests.test_entrypoints import compose_analyze, overrides

    with pytest.raises(ConfigError, match=r"method\.others"):
        analyze(compose_analyze(overrides(study, study["root"] / "none") + ["method=maxcorr"]))


def test_words_only_corpus_gives_ranking_and_similarity(study, second_bert) -> None:  # noqa: ANN001, F811
    import json

    from neuroscope.analysis import analyze
    from tests.test_entrypoints import compose_analyze, overrides

    text = study["root"] / "plain.txt"
    text.write_text("the cats sleep .\na dog can run .\n" * 10)
    out = study["root"] / "words_only"
    base = [o for o in overrides(study, out) if not o.startswith("task.file=")]
    cfg = compose_analyze(base + ["task=sentences", "task.format=neurox", f"task.file={text}", "method=maxcorr",
                                  f"method.others=[{{name: transformer, path: '{second_bert}'}}]", "method.tokens=all"])
    analyze(cfg)
    res = json.loads((out / "results.json").read_text())
    assert res["classes"] == [] and res["task_info"]["labelled"] is False and res["store"]["n_tokens"] == 90
    assert len(res["ranking"]) == len(res["ranking_scores"]) == 48 and "subsets" not in res
    assert set(res["correlation"]["partners"]) == set(res["ranking"]) and res["correlation"]["models"][1] == "transformer"
    with pytest.raises(ConfigError, match="needs labels"):
        analyze(compose_analyze(base + ["task=sentences", "task.format=neurox", f"task.file={text}", "method=lca"]))
