"""Library-level mends for bad input (each also has a CLI case in test_bad_input.py): a folder given
as a corpus file, λ grids of pairs in the report, `method.ridge` and singular covariances, count
settings at 0, and the run folder a failed run leaves behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neuroscope.errors import ConfigError, DataError
from tests.conftest import tiny_conllu

# ------------------------------------------------------------------ corpus locator


def test_a_folder_as_corpus_file_is_an_error_naming_the_key(tmp_path: Path) -> None:
    from neuroscope.data.root import locate

    with pytest.raises(DataError, match=rf"^task.file: {tmp_path} is a folder, not a corpus file; set task.file"):
        locate(str(tmp_path), key="task.file")
    (tmp_path / "ud").mkdir()  # a folder under a data root, too
    with pytest.raises(DataError, match=r"^task.files.train: .*/ud is a folder"):
        locate("ud", root=tmp_path, key="task.files.train")


def test_load_task_names_the_split_key_of_a_folder(tmp_path: Path) -> None:
    from neuroscope.tasks import load_task

    good = tiny_conllu(tmp_path / "tiny.conllu")
    cfg = {"name": "upos", "files": {"train": str(good), "test": str(tmp_path)}}
    with pytest.raises(DataError, match=r"^task.files.test: .* is a folder"):
        load_task(cfg, download=False)


# ------------------------------------------------------------------ λ as pairs in reports


PAIR_ROWS = [{"lambda": 1e-5, "lambda1": 1e-5, "lambda2": 1e-5, "oracle_dev": 0.9, "chosen": False},
             {"lambda": None, "lambda1": 1e-5, "lambda2": 1e-3, "oracle_dev": 0.8, "chosen": True}]


def test_lambda_text_formats_scalars_and_pairs() -> None:
    from neuroscope.reporting.summary import lambda_text

    assert lambda_text(PAIR_ROWS[0]) == "1e-05"
    assert lambda_text(PAIR_ROWS[0], both=True) == "1e-05, 1e-05"
    assert lambda_text(PAIR_ROWS[1]) == "1e-05, 0.001"
    assert lambda_text({"lambda1": 0.01, "lambda2": 0.01}) == "0.01"  # a regression study's row
    assert lambda_text({"lambda": 0.1}) == "0.1"
    assert lambda_text({}) == "-"


def test_lambda_figure_and_summary_of_a_pair_grid() -> None:
    from neuroscope.reporting.figures import plot_lambda
    from neuroscope.reporting.summary import summary_sections

    res = {"model": "m", "task": "t", "method": "lca", "lambda_search": PAIR_ROWS,
           "probe": {"lambda1": 1e-5, "lambda2": 1e-3, "selection_rule": "gap"}}
    fig = plot_lambda(res)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["1e-5, 1e-5", "1e-5, 1e-3"]  # one format for every penalty (figures.lam)
    head = dict((row[0], row[1]) for row in summary_sections(res)[0][2])
    assert head["probe penalty (λ1, λ2)"] == "1e-05, 0.001 (chosen on dev, rule gap)"


def test_the_readme_2d_grid_runs_a_study_with_figures_report_and_summary(tmp_path: Path, tiny_bert: Path,
                                                                        capsys: pytest.CaptureFixture) -> None:
    """README's `probe.selection.grid=[[1e-5,1e-5],[1e-5,1e-3],[1e-3,1e-5]]` end to end on the tiny BERT."""
    import json

    from neuroscope.analysis import analyze
    from tests.test_entrypoints import compose_analyze

    corpus, out = tiny_conllu(tmp_path / "tiny.conllu"), tmp_path / "run"
    analyze(compose_analyze([
        "model=transformer", f"model.path={tiny_bert}", f"task.file={corpus}", "logger=none", "store.progress=false",
        f"store.root={tmp_path / 'stores'}", f"output_dir={out}", "evaluation.percents=[10,50]",
        "probe.selection.grid=[[1e-5,1e-5],[1e-5,1e-3],[1e-3,1e-5]]", "probe.epochs=2", "report.top_neurons=1",
    ]))
    res = json.loads((out / "results.json").read_text())
    assert [(r["lambda1"], r["lambda2"]) for r in res["lambda_search"]] == [(1e-5, 1e-5), (1e-5, 1e-3), (1e-3, 1e-5)]
    assert (out / "lambda_search.png").stat().st_size > 0 and (out / "report.html").stat().st_size > 0
    assert "probe penalty" in capsys.readouterr().out


# ------------------------------------------------------------------ method.ridge, singular covariances


def collinear(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """X [n, 3] = (z, w, (z + w) / √2); Y [n, 3] = (z, z, 1): Y is collinear and has a constant
    neuron, so Σ_YY is singular. Also z."""
    rng = np.random.default_rng(seed)
    z, w = rng.normal(size=n), rng.normal(size=n)
    x = np.column_stack([z, w, (z + w) / np.sqrt(2)])
    y = np.column_stack([z, z, np.ones(n)])
    return x, y, z


def stats(x: np.ndarray, y: np.ndarray):  # noqa: ANN201
    from neuroscope.methods.correlation import ArraySource, pair_stats

    return pair_stats(ArraySource(x), [ArraySource(y)])[0]


def test_regcorr_without_ridge_projects_on_the_span_of_a_singular_model() -> None:
    from neuroscope.methods.correlation import multiple_correlation

    x, y, z = collinear()
    expected = np.abs([np.corrcoef(x[:, i], z)[0, 1] for i in range(3)])  # Y spans z only
    np.testing.assert_allclose(multiple_correlation(stats(x, y), ridge=0), expected, atol=1e-9)
    np.testing.assert_allclose(multiple_correlation(stats(x, y), ridge=1e-9), expected, atol=1e-6)


def test_cca_without_ridge_finds_the_one_shared_direction() -> None:
    from neuroscope.methods.correlation import canonical

    x, y, z = collinear()
    rho, scores = canonical(stats(x, y), keep=None, ridge=0.0)
    np.testing.assert_allclose(rho, [1.0], atol=1e-9)  # Y has one direction of variance: z
    np.testing.assert_allclose(scores, np.abs([np.corrcoef(x[:, i], z)[0, 1] for i in range(3)]), atol=1e-9)


@pytest.mark.parametrize("method", ["regcorr", "cca"])
@pytest.mark.parametrize("ridge", [-1, float("nan"), float("inf"), "abc"])
def test_a_bad_ridge_is_a_config_error(method: str, ridge: object) -> None:
    from neuroscope.methods import rank

    x, y, _ = collinear(50)
    pair = stats(x, y)
    with pytest.raises(ConfigError, match=r"^method.ridge: expected a finite number >= 0"):
        rank(method, {"ridge": ridge}, 3, {"pairs": lambda: [pair], "seed": lambda: 0})


# ------------------------------------------------------------------ validation of counts and choices


def compose(overrides: list[str], tmp_path: Path, tiny_bert: Path):  # noqa: ANN201
    from tests.test_entrypoints import compose_analyze

    corpus = tiny_conllu(tmp_path / "tiny.conllu")
    return compose_analyze(["model=transformer", f"model.path={tiny_bert}", f"task.file={corpus}",
                            f"output_dir={tmp_path / 'run'}", f"store.root={tmp_path / 'stores'}", *overrides])


@pytest.mark.parametrize(("override", "message"), [
    ("evaluation.random_draws=0", "evaluation.random_draws: 0 is below the minimum 1"),
    ("evaluation.control_draws=0", "evaluation.control_draws: 0 is below the minimum 1"),
    ("task.control=maybe", "task.control: expected true or false, got 'maybe'"),
    ("evaluation.percents=[5,10,5]", "evaluation.percents: 5 given more than once"),
    ("model.max_length=0", "model.max_length: 0 is below the minimum 1"),
    ("probe.patience=-1", "probe.patience: -1 is below the minimum 0"),
])
def test_validation_names_the_key(override: str, message: str, tmp_path: Path, tiny_bert: Path) -> None:
    from neuroscope.validate import validate_analyze

    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace("[", r"\[")):
        validate_analyze(compose([override], tmp_path, tiny_bert))


@pytest.mark.parametrize("ridge", ["-1", "inf"])
def test_method_ridge_is_validated_for_the_methods_that_have_it(ridge: str, tmp_path: Path, tiny_bert: Path) -> None:
    from neuroscope.validate import validate_analyze

    cfg = compose(["method=regcorr", f"method.ridge={ridge}"], tmp_path, tiny_bert)
    with pytest.raises(ConfigError, match=r"method.ridge: (-1 is not in \[0, inf\]|expected a number, got inf)"):
        validate_analyze(cfg)


def test_a_maximum_length_without_room_for_a_word_is_an_error(tiny_bert: Path) -> None:
    from neuroscope.models.transformer import TransformerNeurons

    with pytest.raises(ConfigError, match=r"^model.max_length: 2 leaves no room for a word .* 2 special tokens; "
                                          r"use at least 3"):
        TransformerNeurons(str(tiny_bert), max_length=2)


# ------------------------------------------------------------------ the run folder of a failed run


def test_a_failed_run_removes_the_run_folder_it_created(tmp_path: Path) -> None:
    from neuroscope import cli

    run = tmp_path / "outputs" / "analyze" / "t1"
    cli.note_new_run_dir(run)
    (run / ".hydra").mkdir(parents=True)  # what Hydra writes before the job
    (run / ".hydra" / "config.yaml").write_text("a: 1\n")
    (run / "analyze.log").write_text("")
    (run / "config.yaml").write_text("a: 1\n")
    assert cli.discard_run_dir(run)
    assert not (tmp_path / "outputs").exists()  # its parents were created by the run as well
    assert tmp_path.is_dir()


def test_a_run_folder_with_results_or_that_existed_before_is_kept(tmp_path: Path) -> None:
    from neuroscope import cli

    mine = tmp_path / "mine"
    mine.mkdir()
    cli.note_new_run_dir(mine)  # it exists: a user's folder, never removed
    (mine / "config.yaml").write_text("a: 1\n")
    assert not cli.discard_run_dir(mine) and (mine / "config.yaml").exists()
    run = tmp_path / "runs" / "t2"
    cli.note_new_run_dir(run)
    run.mkdir(parents=True)
    (run / "probe.safetensors").write_bytes(b"\0")  # something the run made: not a leftover
    assert not cli.discard_run_dir(run) and run.is_dir()
    other = tmp_path / "other"
    other.mkdir()  # never noted: not known to be this run's
    assert not cli.discard_run_dir(other) and other.is_dir()
    assert not cli.discard_run_dir(None)
