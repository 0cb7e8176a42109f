"""Figures a reader understands without the code: cutoffs in titles, words in legends, plain tick
numbers on log axes, oracle and random beside every accuracy curve, no truncated twin axes; and
the neuron section of report.html (classes, rare words hidden, long tokens cut)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from neuroscope.reporting.figures import (
    arm_name,
    cutoffs,
    lam,
    plot_ablation,
    plot_classes,
    plot_comparison,
    plot_lambda,
    plot_layers,
    plot_subsets,
    write_figures,
)
from neuroscope.reporting.html import coloured, neuron_section, short
from neuroscope.reporting.neurons import neuron_classes, neuron_context, neuron_profiles
from tests.test_reports import ArrayStore, ablation_results, study_results

PLAIN = re.compile(r"^-?\d+(\.\d+)?$")  # 1, 2, 5, 10, 0.5: no 10⁰, no mathtext, no 1e+01
CUT = {"layer_top_percent": 5.0, "class_percentage": 0.05, "selection_percent": 5.0}


def texts(labels: Any) -> list[str]:
    return [t.get_text() for t in labels]


def legend(ax: Any) -> list[str]:
    return texts(ax.get_legend().get_texts())


def close(fig: Any) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)


def gap_search() -> dict[str, Any]:
    res = study_results()
    res["lambda_search"] = [{"lambda": 1e-5, "oracle_dev": 0.9, "top_dev": 0.6, "random_dev": 0.5, "chosen": False},
                            {"lambda": 1e-4, "oracle_dev": 0.91, "top_dev": 0.7, "random_dev": 0.5, "chosen": True},
                            {"lambda": 1e-2, "oracle_dev": 0.85, "top_dev": 0.6, "random_dev": 0.5, "chosen": False}]
    res["probe"] = {"selection_rule": "gap"}
    return res


def test_subsets_plain_ticks_references_and_the_minimal_subset() -> None:
    res = study_results()
    res["minimal_subset"]["tolerance"] = 0.01
    fig = plot_subsets(res, CUT)
    ax = fig.axes[0]
    fig.canvas.draw()
    labels = [t for t in texts(ax.get_xticklabels()) if t]
    assert {"1", "5", "20"} <= set(labels) and all(PLAIN.match(t) for t in labels), labels
    assert not [t for t in texts(ax.get_xticklabels(minor=True)) if t]  # no 2×10⁰ minor labels
    words = legend(ax)
    assert any(w.startswith("oracle") for w in words) and any(w.startswith("random k %") for w in words)
    marker = [line for line in ax.get_lines() if line.get_gid() == "minimal"]
    assert len(marker) == 1 and marker[0].get_xdata()[0] == pytest.approx(20.0)
    assert marker[0].get_ydata()[0] == pytest.approx(0.93)
    assert any("12 neurons (20.0 %)" in w and "within 0.01 of the oracle" in w for w in words)
    close(fig)


def test_layers_two_honest_panels_with_the_cutoff_in_the_title() -> None:
    res = study_results()
    res["classes"] = ["NOUN", "VERB", "ADJ", "DET"]
    fig = plot_layers(res, CUT)
    shares, accs = fig.axes  # two panels, no twin axis
    assert "top 5 %" in shares.get_title() and "top 5 %" in shares.get_ylabel()
    lo, hi = accs.get_ylim()
    assert lo <= 0 and hi >= 1  # the accuracy axis is not truncated to the data
    words = legend(accs)
    assert any(w.startswith("oracle") for w in words) and "random guess (1 / 4 classes)" in words
    close(fig)


def test_cutoffs_come_from_the_runs_config_or_name_the_key(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("evaluation:\n  layer_top_percent: 2.5\nmethod:\n  class_percentage: 0.1\n"
                                          "probe:\n  selection:\n    percent: 10\n")
    assert cutoffs({}, tmp_path) == {"layer_top_percent": 2.5, "class_percentage": 0.1, "selection_percent": 10.0}
    assert cutoffs({"_run": str(tmp_path)})["layer_top_percent"] == 2.5  # a report's run folder
    assert cutoffs({}, tmp_path / "nowhere") == {"layer_top_percent": None, "class_percentage": None,
                                                 "selection_percent": None}
    fig = plot_layers(study_results(), cutoffs({}, tmp_path / "nowhere"))
    assert "evaluation.layer_top_percent" in fig.axes[0].get_title()  # unknown: the key that sets it, no guess
    close(fig)
    write_figures(gap_search(), tmp_path)  # the written figures read the folder's config.yaml
    fig = plot_classes(study_results(), cutoffs({}, tmp_path))
    assert "10 %" in fig.axes[0].get_title()
    close(fig)


def test_lambda_legend_in_words_and_one_tick_format() -> None:
    fig = plot_lambda(gap_search(), CUT)
    ax = fig.axes[0]
    words = legend(ax)
    assert words == ["oracle: all neurons (dev)", "top 5 % of the ranking (dev)", "random 5 % (dev)", "chosen"]
    assert not any("_" in w for w in words)
    assert texts(ax.get_xticklabels()) == ["1e-5", "1e-4", "1e-2"]
    assert [lam(x) for x in (0.0, 3e-4, 1.0, 0.01)] == ["0", "3e-4", "1e0", "1e-2"]
    close(fig)


def test_ablation_plain_log_ticks_and_arms_in_words() -> None:
    fig = plot_ablation(ablation_results(), CUT)
    fig.canvas.draw()
    for labels in (fig.axes[0].get_xticklabels(), fig.axes[1].get_xticklabels(), fig.axes[0].get_yticklabels()):
        shown = [t for t in texts(labels) if t]  # the right panel shares the left's y axis
        assert shown and all(PLAIN.match(t) for t in shown), shown
    assert not [t for t in texts(fig.axes[0].get_yticklabels(minor=True)) if t]
    words = legend(fig.axes[1])
    assert "LCA · upos top k % (set to 0)" in words and "nothing silenced" in words
    assert not any("_" in w for w in words)
    assert "lower is better" in fig._suptitle.get_text()
    close(fig)
    assert arm_name("lca_morph_Number") == "LCA · morph Number" and arm_name("maxcorr") == "maxcorr"


def test_comparison_has_no_twin_axes_and_names_its_cutoff() -> None:
    site = {"before": {"top_share": 0.5, "accuracy": 0.8}, "after": {"top_share": 0.2, "accuracy": 0.85}}
    res = {"model": "bert", "comparison": {"top_percent": 5, "tasks": {"upos": {
        "layers": {"layer1": site, "layer2": site}, "oracle": {"before": 0.9, "after": 0.92},
        "mean_depth": {"before": 1.2, "after": 1.5}}}}}
    fig = plot_comparison(res)
    assert len(fig.axes) == 2  # shares above, site probes below: one axis each
    assert "top 5 %" in fig.axes[0].get_title() and "Top 5 %" in fig._suptitle.get_text()
    lo, hi = fig.axes[1].get_ylim()
    assert lo <= 0 and hi >= 1 and any("oracle" in w for w in legend(fig.axes[1]))
    close(fig)


def test_sweep_curves_carry_random_and_oracle_and_go_relative_across_tasks(tmp_path: Path) -> None:
    from neuroscope.reporting.sweep import _curves_figure

    one = [study_results("upos", 0), study_results("upos", 1)]
    fig = _curves_figure(one)
    ax = fig.axes[0]
    fig.canvas.draw()
    words = legend(ax)
    assert "minilm · upos · lca, seed 0: random k %" in words  # the seed said in words, no bare '· 0'
    assert "minilm · upos · lca, seed 1: oracle (all neurons)" in words
    labels = [t for t in texts(ax.get_xticklabels()) if t]
    assert labels == ["1", "5", "20"] and ax.get_ylabel() == "test accuracy"
    close(fig)
    fig = _curves_figure([study_results("upos"), study_results("deprel")])
    ax = fig.axes[0]
    assert "oracle" in ax.get_ylabel() and "oracle: each run's probe on all neurons" in legend(ax)
    top = [line for line in ax.get_lines() if line.get_label() == "minilm · upos · lca: top k %"][0]
    assert top.get_ydata()[0] == pytest.approx(0.61 / 0.9381)  # accuracy / the run's oracle
    close(fig)


def test_models_figure_has_plain_ticks(tmp_path: Path) -> None:
    from neuroscope.reporting.models_compare import plot_models

    res = {**ablation_results(), "_run": str(tmp_path / "nlm")}
    fig = plot_models([res], [["nlm_lstm", "nlm", "lca_morph_Number", 0.2]])
    fig.canvas.draw()
    left, right = fig.axes
    assert texts(left.get_xticklabels()) == ["LCA · morph Number"]
    shown = [t for t in texts(right.get_xticklabels()) if t]
    assert shown == ["0", "5", "50"]
    close(fig)


def test_neuron_section_names_classes_hides_rare_words_and_cuts_long_tokens() -> None:
    long = "https://example.org/a/very/long/token/that/would/run/across/the/page"
    sentences = [["the", "cat", long], ["a", "cat", "ran"]] * 3
    words = [w for s in sentences for w in s]
    x = np.array([[5.0 if w == "cat" else 1.0 if w == long else 0.0] for w in words], dtype=np.float32)
    prof = neuron_profiles(ArrayStore(x, ["l:0"]), sentences, ["l:0"], top_words=5, n_sentences=1, min_count=5)
    assert [w["word"] for w in prof[0]["top_words"]] == ["cat"]  # seen 6 times; every other word 3 times
    assert neuron_profiles(ArrayStore(x, ["l:0"]), sentences, ["l:0"], min_count=1)[0]["top_words"][1]["word"] == long
    res = {"method": "lca", "ranking_detail": {"per_class": {"NOUN": ["l:0", "l:1"], "VERB": ["l:0"]}}}
    assert neuron_classes(res) == {"l:0": ["NOUN", "VERB"], "l:1": ["NOUN"]}
    assert neuron_classes({"method": "probeless"}) is None
    ctx = neuron_context(res, None, {"min_count": 5})
    page = neuron_section(prof, **ctx)
    assert "serves <span class=\"classes\">NOUN, VERB</span>" in page and "words seen at least 5 times" in page
    assert "method.class_percentage" in ctx["class_rule"]  # no config at hand: the key, not a guessed number
    assert short(long) == long[:23] + "…" and len(short(long)) == 24 and short("cat") == "cat"
    span = coloured([long], [1.0], 1.0)
    assert f'title="{long} (1.000)"' in span and f">{long[:23]}…</span>" in span
