"""Real corpora (../shared/data) and the shipped MiniLM: the default study runs and is reused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from neuroscope.analysis import analyze
from neuroscope.data.readers import read_conllu
from tests.conftest import REPO, UD_DEV

pytestmark = pytest.mark.skipif(not UD_DEV.exists(), reason=f"offline corpus mirror not found at {UD_DEV}")


def run(tmp_path: Path, out: str, extra: list[str]) -> dict:
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="analyze", overrides=[
            f"data.root={UD_DEV.parents[1]}", "logger=none", f"output_dir={tmp_path / out}",
            f"store.root={tmp_path / 'stores'}", "store.progress=false", *extra])
    return analyze(cfg)


def test_minilm_on_a_slice_of_ud_dev(tmp_path: Path) -> None:
    """First 40 sentences of UD EWT dev through MiniLM, float16 store, xpos labels."""
    sents = read_conllu(UD_DEV)[:40]
    small = tmp_path / "dev40.conllu"
    lines = UD_DEV.read_text().split("\n\n")[:40]
    small.write_text("\n\n".join(lines) + "\n\n")
    res = run(tmp_path, "a", [f"task.file={small}", "task=xpos", "store.dtype=float16"])
    assert res["store"]["n_tokens"] == sum(len(s) for s in sents)
    assert res["store"]["n_neurons"] == 2688 and len(res["store"]["sites"]) == 7
    assert res["store"]["dtype"] == "float16"
    assert "NN" in res["classes"] and "DT" in res["classes"]


@pytest.mark.slow
def test_default_study_extracts_all_of_ud_dev_and_reuses_it(tmp_path: Path) -> None:
    """`python analyze.py model=minilm task=upos`: 25,147 words x 2,688 neurons and a whole LCA
    study (the README's figures), then reuse."""
    first = run(tmp_path, "first", [])
    assert first["store"]["n_tokens"] == 25147 and first["store"]["n_neurons"] == 2688
    assert first["store"]["reused"] is False and first["method"] == "lca"
    assert sum(first["split"].values()) == 25147 and len(first["classes"]) == 17
    assert first["oracle"]["accuracy"] > 0.92 and first["control"]["draws"] == 3 and first["selectivity"] > 0.2
    top, rnd = first["subsets"]["top"]["5"], first["subsets"]["random"]["5"]
    assert rnd["draws"] == 5 and top["accuracy"] > rnd["accuracy"] + 2 * rnd["accuracy_sd"]
    second = run(tmp_path, "second", ["task=xpos", "method=none"])  # another task over the same sentences
    assert second["store"]["reused"] is True and second["store"]["path"] == first["store"]["path"]
    from neuroscope.store import ActivationStore

    store = ActivationStore(first["store"]["path"])
    block = store.read(["layer6"], tokens=np.arange(100))
    assert block.shape == (100, 384) and np.isfinite(block).all()


def test_probes_train_on_ud_ewt_train_and_test_on_dev() -> None:
    """`ud_ewt:train` is a corpus name: probes train on it (dev = 10 % of its sentences) and test on dev."""
    from neuroscope.tasks import load_task

    corpus = load_task({"name": "upos", "files": {"train": "ud_ewt:train", "test": "ud_ewt:dev"}},
                       str(UD_DEV.parents[1]), download=False)
    counts = corpus.counts()
    assert counts["test"] == 25_147 and counts["train"] + counts["dev"] == 204_577
    assert 0.07 < counts["dev"] / 204_577 < 0.13 and len(corpus.classes) == 17


def test_sst2_files_read_as_glue_distributes_them() -> None:
    from neuroscope.data.corpora import corpus_file
    from neuroscope.data.glue import read_tsv
    from neuroscope.data.root import locate

    dev = read_tsv(locate(corpus_file("glue_sst2:dev"), str(UD_DEV.parents[1]), download=False))
    assert len(dev.texts) == 872 and set(dev.labels) == {"0", "1"}
