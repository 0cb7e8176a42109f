"""Reports: the terminal summary, figures and report.html of a run; the report over many runs."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from neuroscope.reporting.neurons import neuron_profiles
from neuroscope.reporting.report import run_report
from neuroscope.reporting.summary import print_summary
from neuroscope.reporting.sweep import sweep_report
from tests.conftest import REPO
from tests.fixture_corpus import distinct_conllu


def study_results(task: str = "upos", seed: int = 0, shift: float = 0.0) -> dict[str, Any]:
    """A hand-made results.json of an LCA study (the keys reports read)."""
    sites = ["embeddings", "layer1", "layer2"]
    ranking = [f"{sites[i % 3]}:{i}" for i in range(60)]
    curve = lambda base: {k: {"accuracy": base + 0.01 * float(k), "accuracy_sd": 0.01, "n_neurons": 1}  # noqa: E731
                          for k in ("1", "5", "20")}
    return {
        "model": "minilm", "task": task, "method": "lca", "seed": seed,
        "store": {"n_tokens": 100, "n_neurons": 60, "reused": True},
        "oracle": {"accuracy": 0.9381 + shift}, "control": {"accuracy": 0.6712, "accuracy_sd": 0.004},
        "selectivity": 0.2669, "selectivity_sd": 0.005,
        "subsets": {"top": curve(0.6), "random": curve(0.5), "bottom": curve(0.3)},
        "minimal_subset": {"n_neurons": 12 + seed, "share": 0.2, "accuracy": 0.93},
        "layers": {s: {"n_neurons": 20, "top_share": [0.5, 0.3, 0.2][i] if task == "upos" else [0.1, 0.2, 0.7][i],
                       "accuracy": 0.8 + 0.01 * i} for i, s in enumerate(sites)},
        "ranking": ranking if task == "upos" else ranking[::-1], "ranking_scores": list(range(60, 0, -1)),
        "ranking_detail": {"per_class": {"NOUN": ranking[:3], "VERB": ranking[3:8]}},
        "lambda_search": [{"lambda": 1e-4, "oracle_dev": 0.9, "chosen": False},
                          {"lambda": 1e-3, "oracle_dev": 0.92, "chosen": True}],
        "timings": {"total_seconds": 12.5},
    }


def ablation_results() -> dict[str, Any]:
    shares = ["0", "5", "50"]
    return {
        "model": "nlm_lstm", "task": "upos", "method": "ablation", "seed": 0, "timings": {"total_seconds": 3.0},
        "studies": {"lca_upos": {"oracle_accuracy": 0.7, "minimal_subset": 300}},
        "ablation": {"metric": "perplexity", "baseline": 25.7, "mode": "zero", "where": "output", "shares": shares,
                     "curves": {"lca_upos_top": dict(zip(shares, [25.7, 27.7, 80.3], strict=True)),
                                "random": dict(zip(shares, [25.7, 26.3, 59.3], strict=True))},
                     "random_sd": dict(zip(shares, [0.0, 0.5, 2.1], strict=True)), "neurons_silenced": {}},
    }


class Page(HTMLParser):
    """Collects <img> sources and checks tags close (a parse that fails raises)."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"] or "")


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text())
    page.close()
    return page


def test_summary_prints_the_runs_numbers() -> None:
    out = io.StringIO()
    print_summary(study_results(), "/x/report.html", file=out)
    text = out.getvalue()
    for number in ("0.938", "0.671 ± 0.004", "0.267 ± 0.005", "12 neurons (20.0 %)", "0.650", "0.550 ± 0.010",
                   "layer2", "/x/report.html"):
        assert number in text, number


@pytest.mark.parametrize("make, figures", [
    (study_results, {"subsets", "layers", "classes", "lambda_search"}),
    (ablation_results, {"ablation"}),
])
def test_run_report_embeds_every_figure(tmp_path: Path, make: Any, figures: set[str]) -> None:
    path, written = run_report(make(), tmp_path)
    assert set(written) == figures and all((tmp_path / f"{f}.png").stat().st_size > 1000 for f in figures)
    page = parse(path)
    assert len(page.images) == len(figures) and all(src.startswith("data:image/png;base64,") for src in page.images)
    assert "html" in page.tags and not list(tmp_path.glob(".*tmp*"))


class ArrayStore:
    def __init__(self, x: np.ndarray, neurons: list[str]) -> None:
        self.x, self.neurons, self.n_tokens = x, neurons, len(x)

    def read(self, neurons: list[str]) -> np.ndarray:
        return self.x[:, [self.neurons.index(n) for n in neurons]]


def test_neuron_profiles_find_the_planted_word() -> None:
    sentences = [["the", "cat", "sat"], ["a", "cat", "ran"], ["the", "dog", "sat"], ["a", "dog", "ran"]]
    words = [w for s in sentences for w in s]
    x = np.zeros((len(words), 2), dtype=np.float32)
    x[:, 0] = [5.0 if w == "cat" else 0.0 for w in words]  # fires on "cat"
    x[:, 1] = [-3.0 if w == "dog" else 0.1 for w in words]  # negative on "dog"
    prof = neuron_profiles(ArrayStore(x, ["l:0", "l:1"]), sentences, ["l:0", "l:1"], top_words=2, n_sentences=2,
                          min_count=2)
    assert prof[0]["top_words"][0] == {"word": "cat", "mean": 5.0, "count": 2}
    assert {s["index"] for s in prof[0]["sentences"]} == {0, 1}
    assert prof[0]["sentences"][0]["activations"][1] == 5.0
    assert prof[1]["bottom_words"][0]["word"] == "dog" and prof[1]["max_abs"] == 3.0
    with pytest.raises(ValueError, match="not the store"):
        neuron_profiles(ArrayStore(x[:3], ["l:0", "l:1"]), sentences, ["l:0"])


def write_run(folder: Path, res: dict[str, Any] | None, text: str | None = None) -> None:
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text("seed: 0\n")
    if res is not None:
        (folder / "results.json").write_text(json.dumps(res))
    elif text is not None:
        (folder / "results.json").write_text(text)


def test_sweep_report_compares_runs_and_lists_the_broken_ones(tmp_path: Path) -> None:
    sweep = tmp_path / "multirun"
    write_run(sweep / "0", study_results("upos", 0))
    write_run(sweep / "1", study_results("upos", 1, shift=0.01))
    write_run(sweep / "2", study_results("deprel", 0))
    partial = study_results("xpos", 0)
    del partial["minimal_subset"], partial["layers"]
    write_run(sweep / "3", partial)
    write_run(sweep / "4", None)  # failed: no results.json
    write_run(sweep / "5", None, text="{not json")
    res = sweep_report([str(sweep)], tmp_path / "report")
    assert len(res["runs"]) == 4 and [Path(f["run"]).name for f in res["failed"]] == ["4", "5"]
    comp = res["comparisons"]
    assert [row[1] for row in comp["localized"]] == ["upos", "upos", "deprel"]  # sorted by share, xpos has none
    block = comp["overlap"]["minilm · lca"]
    assert block["tasks"] == ["deprel", "upos", "xpos"] and block["jaccard"][1][1] == 1.0
    assert block["jaccard"][0][1] == 0.0 and block["exclusive"]["upos"] == 3  # top 5 % = 3 neurons, reversed ranking
    assert comp["seeds"][0][:4] == ["minilm", "upos", "lca", 2] and comp["seeds"][0][4].startswith("0.943 ± 0.007")
    rows = (tmp_path / "report" / "sweep.csv").read_text().splitlines()
    assert len(rows) == 5 and "minimal_subset, layers" in rows[4]
    page = parse(tmp_path / "report" / "report.html")
    assert page.images and all(src.startswith("data:image/png;base64,") for src in page.images)
    text = (tmp_path / "report" / "report.html").read_text()
    assert "no results.json" in text and "unreadable" in text


def test_joblib_multirun_then_the_report_lists_both_tasks(tmp_path: Path, tiny_bert: Path) -> None:
    corpus = distinct_conllu(tmp_path / "tiny.conllu")
    env = {**os.environ, "NEUROSCOPE_CACHE": str(tmp_path / "cache")}
    common = [f"model.path={tiny_bert}", "model=transformer", f"task.file={corpus}", "logger=none",
              "store.progress=false", "probe.selection.enabled=false", "evaluation.control=false",
              "evaluation.random_draws=1", "report.summary=false"]
    sweep = tmp_path / "sweep"
    proc = subprocess.run([sys.executable, "analyze.py", "--multirun", "task=upos,xpos", "hydra/launcher=parallel",
                           f"hydra.sweep.dir={sweep}", *common], cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert all((sweep / j / "report.html").exists() for j in ("0", "1"))  # every run has its own report
    proc = subprocess.run([sys.executable, "analyze.py", f"report.input=[{sweep}]", "logger=none",
                           f"hydra.run.dir={tmp_path / 'rep'}"], cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "2 runs, 0 without results" in proc.stdout
    text = (tmp_path / "rep" / "report.html").read_text()
    assert "upos" in text and "xpos" in text and "Jaccard" in text
    bad = subprocess.run([sys.executable, "analyze.py", f"report.input=[{tmp_path / 'nowhere'}]", "logger=none",
                          f"hydra.run.dir={tmp_path / 'rep2'}"], cwd=REPO, env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "report.input" in bad.stderr and "Traceback" not in bad.stderr


def test_localization_ranks_tie_runs_within_their_seed_spread() -> None:
    from neuroscope.reporting.sweep import localization_ranks, ties

    assert ties((0.15, 0.02), (0.17, 0.02)) and not ties((0.15, 0.002), (0.17, 0.002))
    assert not ties((0.15, None), (0.151, None)) and ties((0.15, None), (0.15, None))
    assert localization_ranks([(0.10, 0.01), (0.12, 0.01), (0.30, 0.01), (0.50, None)]) == ["1=", "1=", "3", "4"]
    assert localization_ranks([(0.10, None), (0.12, None)]) == ["1", "2"]  # one seed: no spread, ordered


def test_sweep_report_ties_properties_closer_than_their_spread(tmp_path: Path) -> None:
    """Two properties whose minimal subsets differ by less than the seed spread are reported as tied;
    a third, far beyond it, is ranked after them; the page states the tolerance."""
    sweep = tmp_path / "multirun"
    for i, (task, share, sd) in enumerate((("upos", 0.151, 0.03), ("morph", 0.142, 0.02), ("xpos", 0.63, 0.05))):
        res = study_results(task, 0)
        res["minimal_subset"].update(share=share, share_sd=sd, seeds=3)
        write_run(sweep / str(i), res)
    comp = sweep_report([str(sweep)], tmp_path / "report")["comparisons"]
    assert [(row[1], row[8]) for row in comp["localized"]] == [("morph", "1="), ("upos", "1="), ("xpos", "3")]
    assert "√(sd₁² + sd₂²)" in (tmp_path / "report" / "report.html").read_text()


def test_report_over_two_ablation_experiments_compares_the_models(tmp_path: Path) -> None:
    """An NLM-like and an NMT-like experiment (one mode each, then two modes): per property the top-10 %
    minus bottom-10 % gap, the minimal subset with its spread, the damage at 10/20/50 % vs random."""
    def experiment(folder: Path, model: str, gap: float, modes: list[str], higher: bool) -> None:
        shares = ["0", "10", "20", "50"]
        base = 30.0
        curves = {"lca_upos_top": dict(zip(shares, [base, 28.0, 24.0, 15.0] if higher else [base, 33.0, 36.0, 45.0], strict=True)),
                  "random": dict(zip(shares, [base, 29.0, 27.0, 21.0] if higher else [base, 31.0, 32.0, 36.0], strict=True))}
        block = {"metric": "bleu" if higher else "perplexity", "baseline": base, "higher_is_better": higher,
                 "where": "output", "shares": shares, "neurons_silenced": {}, "modes": modes}
        if len(modes) == 1:
            block.update(mode=modes[0], curves=curves, random_sd={})
        else:
            block.update(mode="+".join(modes), curves={m: curves for m in modes}, random_sd={m: {} for m in modes})
        write_run(folder, {"model": model, "task": "upos", "method": "ablation", "seed": 0, "ablation": block,
                           "studies": {"lca_upos": {}, "maxcorr": {}}})
        study = study_results("upos")
        study["subsets"]["top"]["10"] = {"accuracy": 0.9}
        study["subsets"]["bottom"]["10"] = {"accuracy": 0.9 - gap}
        study["minimal_subset"].update(share_sd=0.01)
        (folder / "studies" / "lca_upos").mkdir(parents=True)
        (folder / "studies" / "lca_upos" / "results.json").write_text(json.dumps(study))
        (folder / "studies" / "maxcorr").mkdir(parents=True)
        (folder / "studies" / "maxcorr" / "results.json").write_text(json.dumps({**study, "method": "maxcorr"}))

    experiment(tmp_path / "runs" / "nlm", "nlm_lstm", 0.255, ["zero"], higher=False)
    experiment(tmp_path / "runs" / "nmt", "nmt_lstm", 0.128, ["zero", "mean"], higher=True)
    res = sweep_report([str(tmp_path / "runs")], tmp_path / "report")
    models = res["comparisons"]["models"]
    rows = {(r[0], r[2]): r for r in models["rows"]}
    assert set(rows) == {("nlm_lstm", "lca_upos"), ("nlm_lstm", "mean over properties"),
                         ("nmt_lstm", "lca_upos"), ("nmt_lstm", "mean over properties")}  # maxcorr: no gap
    cols = models["columns"]
    assert rows[("nlm_lstm", "lca_upos")][cols.index("top10 - bottom10")] == pytest.approx(0.255)
    assert rows[("nmt_lstm", "mean over properties")][3] == pytest.approx(0.128)
    assert rows[("nlm_lstm", "lca_upos")][cols.index("share sd")] == 0.01
    # perplexity 30 -> 36 at 20 %: damage +.2, random 32: +.067; BLEU 30 -> 24: +.2, random 27: +.1
    assert rows[("nlm_lstm", "lca_upos")][cols.index("damage zero @20 % (random)")] == "+0.200 (+0.067)"
    assert rows[("nmt_lstm", "lca_upos")][cols.index("damage mean @20 % (random)")] == "+0.200 (+0.100)"
    assert rows[("nlm_lstm", "lca_upos")][cols.index("damage mean @20 % (random)")] is None  # one mode measured
    assert (tmp_path / "report" / "models.png").exists() and (tmp_path / "report" / "models.csv").exists()
