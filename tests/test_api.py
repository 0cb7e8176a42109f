"""The Python API (`import neuroscope as ns`): same config and results as the CLI, from any folder;
experiments as plugins (one .py + one yaml, nothing else edited)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import neuroscope as ns
from neuroscope import registry
from neuroscope.errors import ConfigError
from tests.conftest import REPO, tiny_conllu

MY_EXPERIMENT = '''
"""A plugin experiment: the same study at two probe seeds, and how far their oracles differ."""
from neuroscope.config import to_dict
from neuroscope.experiments.base import Experiment, Outcome
from neuroscope.pipeline import study
from neuroscope.registry import EXPERIMENTS


@EXPERIMENTS.register("my_experiment")
class MyExperiment(Experiment):
    name = "my_experiment"

    def check(self, cfg):
        return [] if int(cfg.my.draws) >= 2 else [f"my.draws: at least 2, got {cfg.my.draws}"]

    def run(self, cfg, out_dir):
        oracles = []
        for d in range(int(cfg.my.draws)):
            cfg.seed = d
            res = study(cfg, to_dict(cfg.task), to_dict(cfg.model), to_dict(cfg.method), None, out_dir)
            oracles.append(res["oracle"]["accuracy"])
        return Outcome({"model": cfg.model.name, "task": "upos", "method": "my_experiment", "seed": 0,
                        "oracles": oracles, "spread": max(oracles) - min(oracles), "timings": {}})
'''
MY_EXPERIMENT_YAML = """# @package _global_
protocol: my_experiment
my:
  draws: 2
"""
FAST = ["evaluation.seeds=1", "evaluation.control=false", "evaluation.random_draws=1", "evaluation.percents=[5,50]",
        "probe.selection.enabled=false", "report.summary=false"]


@pytest.fixture()
def project(tmp_path: Path, tiny_bert: Path) -> dict[str, Any]:
    """A tiny corpus and store root, a plugin experiment with its config, and the settings of a
    tiny study on them."""
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "my_experiment.py").write_text(MY_EXPERIMENT)
    (tmp_path / "conf" / "experiment").mkdir(parents=True)
    (tmp_path / "conf" / "experiment" / "my_experiment.yaml").write_text(MY_EXPERIMENT_YAML)
    settings = ["model=transformer", f"model.path={tiny_bert}", f"task.file={tiny_conllu(tmp_path / 'tiny.conllu')}",
                "logger=none", f"store.root={tmp_path / 'stores'}", "progress=false", *FAST]
    yield {"root": tmp_path, "overrides": settings}
    registry.set_plugin_dirs(["plugins"])
    registry.EXPERIMENTS.unregister("my_experiment")


def _comparable(res: Any, run: Path) -> Any:
    """results.json without what differs between two runs of one config: wall times, the reuse flag,
    the run folder in paths (the saved probe's)."""
    if isinstance(res, dict):
        return {k: _comparable(v, run) for k, v in res.items()
                if k not in ("timings", "reused") and not k.endswith("_seconds") and k != "seconds"}
    if isinstance(res, list):
        return [_comparable(v, run) for v in res]
    return res.replace(str(run), "<run>") if isinstance(res, str) else res


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "analyze.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600, env=dict(os.environ, HYDRA_FULL_ERROR="0"))


def test_study_from_another_folder_equals_the_cli(project: dict[str, Any], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "notebooks"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # not the project: conf/ and plugins/ are found all the same
    r = ns.study(overrides=project["overrides"], output_dir=tmp_path / "api")
    assert isinstance(r, ns.Results) and r.run_dir == tmp_path / "api"
    assert 0 < r.results["oracle"]["accuracy"] <= 1 and r.ranking == r.results["ranking"]
    assert r.report_path == tmp_path / "api" / "report.html" and r.report_path.is_file()
    assert not (elsewhere / "outputs").exists()  # output_dir given: nothing else written
    proc = _cli([*project["overrides"], f"hydra.run.dir={tmp_path / 'cli'}", f"output_dir={tmp_path / 'cli'}"],
                REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    cli = json.loads((tmp_path / "cli" / "results.json").read_text())
    api = json.loads((tmp_path / "api" / "results.json").read_text())
    assert _comparable(api, tmp_path / "api") == _comparable(cli, tmp_path / "cli")
    assert ns.load_results(tmp_path / "cli").results == cli and r.results == api


def test_results_object_gives_figures_and_reads_runs(project: dict[str, Any], tmp_path: Path) -> None:
    import matplotlib.figure

    r = ns.study(overrides=project["overrides"], output_dir=tmp_path / "run", report={"enabled": False})
    assert r.report_path is None  # report.enabled=false
    fig = r.figure("subsets")
    assert isinstance(fig, matplotlib.figure.Figure) and fig.axes
    assert "subsets" in r.figures() and "ablation" not in r.figures()
    with pytest.raises(ConfigError, match="this run has no such part"):
        r.figure("ablation")
    with pytest.raises(ConfigError, match="known figures"):
        r.figure("nosuch")
    again = ns.load_results(tmp_path / "run" / "results.json")
    assert again.results == r.results and again.ranking[:3] == r.ranking[:3]


def test_config_mistakes_raise_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="model/nosuch"):
        ns.study(model="nosuch", output_dir=tmp_path / "a")
    with pytest.raises(ConfigError, match="evaluation.nokey"):
        ns.study(evaluation={"nokey": 1}, output_dir=tmp_path / "b")
    with pytest.raises(ConfigError, match="progress"):
        ns.study(progress="sometimes", logger="none", output_dir=tmp_path / "c")
    with pytest.raises(ConfigError, match="no results.json"):
        ns.load_results(tmp_path)
    assert not any((tmp_path / d).exists() for d in "abc")  # nothing half-made


def test_keyword_arguments_become_hydra_overrides() -> None:
    from neuroscope.api import to_overrides

    assert to_overrides({"model": "minilm", "task": None, "evaluation": {"seeds": 1, "percents": [1, 5]},
                         "task_file": "/a b/c.conllu", "report": {"enabled": False}}) == [
        "model=minilm", "evaluation.seeds=1", "evaluation.percents=[1,5]", "task_file='/a b/c.conllu'",
        "report.enabled=false"]


def test_plugin_dirs_are_found_in_the_project_from_any_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert registry.plugin_dir("plugins") == registry.PROJECT_ROOT / "plugins"
    (tmp_path / "plugins").mkdir()
    assert registry.plugin_dir("plugins") == Path("plugins")  # the working directory's own folder wins


def test_a_plugin_experiment_runs_from_the_cli_and_the_api(project: dict[str, Any], tmp_path: Path) -> None:
    root = project["root"]
    extra = [f"plugins.dirs=[{root / 'plugins'}]", f"hydra.searchpath=[file://{root / 'conf'}]",
             "experiment=my_experiment"]
    proc = _cli([*project["overrides"], *extra, f"hydra.run.dir={tmp_path / 'cli'}"], root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads((tmp_path / "cli" / "results.json").read_text())
    assert res["method"] == "my_experiment" and len(res["oracles"]) == 2
    assert res["spread"] == pytest.approx(max(res["oracles"]) - min(res["oracles"]))
    assert "total_seconds" in res["timings"]
    bad = _cli([*project["overrides"], *extra, "my.draws=1", f"hydra.run.dir={tmp_path / 'bad'}"], root)
    assert bad.returncode == 2 and "my.draws: at least 2, got 1" in bad.stderr and "Traceback" not in bad.stderr
    r = ns.experiment("my_experiment", overrides=[*project["overrides"], *extra[:2]], output_dir=tmp_path / "api")
    assert r.results["oracles"] == res["oracles"]
    unknown = _cli([*project["overrides"], "protocol=my_experimnt", f"hydra.run.dir={tmp_path / 'u'}"], root)
    assert unknown.returncode == 2 and "protocol: unknown experiment 'my_experimnt'" in unknown.stderr


def test_an_experiment_config_overrides_the_primary_configs_keys() -> None:
    """conf/experiment/*.yaml comes after analyze.yaml's own keys (`_self_` first): its values win."""
    from neuroscope.api import compose

    assert compose([]).store.dtype == "float32" and compose([]).protocol is None
    assert compose(["experiment=minilm_upos_fp16"]).store.dtype == "float16"
    assert compose(["experiment=dalvi2019_nlm"]).protocol == "dalvi2019"
    assert compose(["experiment=durrani2022_finetune"]).protocol == "durrani2022"


def test_docs_example_runs(project: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    """docs/examples/api_quickstart.py (shown on the docs' API page) runs as written, with the tiny
    model and corpus added as overrides (they come after its keyword arguments and win)."""
    import runpy

    import neuroscope
    from neuroscope.api import study as real
    monkeypatch.setattr(neuroscope, "study", lambda **kw: real(
        **kw, overrides=[*project["overrides"], "evaluation.seeds=1"], output_dir=tmp_path / "run"), raising=False)
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(REPO / "docs" / "examples" / "api_quickstart.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "probe on all" in out and "minimal subset:" in out
    assert (tmp_path / "run" / "subsets_from_python.png").is_file()
