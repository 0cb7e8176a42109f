"""Bad input through the real CLI: exit 2, one `error:` line naming file:line or the config key,
no traceback, and no partial files (no *.tmp, no results.json, no store folder without manifest).

Every case is one `python analyze.py ...` subprocess on the tiny BERT and tiny corpora of
conftest. The subprocesses of the selected cases run two at a time in a module fixture; each
parametrized test then checks its own outcome.
"""

from __future__ import annotations

import gzip
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, TINY_CONLLU, tiny_conllu


@dataclass(frozen=True)
class Case:
    """One bad input: its overrides ({name} = a prepared file) and a substring its error must hold."""

    id: str
    args: tuple[str, ...]
    expect: str  # formatted with the prepared files too
    code: int = 2  # Hydra's own errors (unknown group option) exit 1 without an `error:` line
    pattern: str = ""  # a regex stderr must match as well ({name} = the escaped file path)


def conllu_line(id_: str, form: str, upos: str = "NOUN", head: str = "0") -> str:
    return "\t".join([id_, form, form.lower(), upos, "NN", "_", head, "dep", "_", "_"])


GOOD = [conllu_line("1", "The", "DET"), conllu_line("2", "cats")]  # lines 1-2 of the bad CoNLL-U files
NEUROX_TEXT = ["the cat sat", "a dog barks", "hello"]


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def prepare(d: Path) -> dict[str, Path]:
    """Every bad input file (and the tiny good ones they are made from) under `d`."""
    import torch

    from neuroscope.data.vocab import SPECIALS, Vocab
    from neuroscope.models.nlm import NLMModule

    d.mkdir(parents=True, exist_ok=True)
    f: dict[str, Path] = {"corpus": tiny_conllu(d / "tiny.conllu")}
    f["cols"] = write(d / "cols.conllu", [*GOOD, "3\tsleep\tsleep\tVERB\tVBP\t_\t0\troot\t_"])  # 9 columns
    f["badid"] = write(d / "badid.conllu", [*GOOD, conllu_line("x", "sleep")])
    f["seqid"] = write(d / "seqid.conllu", [*GOOD, conllu_line("1", "A")])  # a blank line is missing
    f["head"] = write(d / "head.conllu", [*GOOD, conllu_line("3", "sleep", head="abc")])
    f["latin1"] = d / "latin1.conllu"
    f["latin1"].write_bytes(("\n".join(GOOD) + "\n").encode() + conllu_line("3", "café").encode("latin-1") + b"\n")
    packed = gzip.compress((TINY_CONLLU * 20).encode())
    f["truncgz"] = d / "trunc.conllu.gz"
    f["truncgz"].write_bytes(packed[: len(packed) // 2])
    f["notgz"] = d / "page.conllu.gz"
    f["notgz"].write_bytes(b"<html><body>404 Not Found</body></html>\n")
    f["empty"] = write(d / "empty.conllu", ["# only a comment"])
    f["onetag"] = write(d / "onetag.conllu", [conllu_line("1", "cats"), conllu_line("2", "dogs"), ""] * 10)
    chunks = ["He PRP B-NP", "reckons VBZ B-VP", ". . O", ""] * 5
    f["chunks"] = write(d / "chunks.txt", chunks)
    f["chunkcols"] = write(d / "chunkcols.txt", [*chunks[:4], "said VBD", ". . O"])  # line 5: 2 columns
    f["nx"] = write(d / "s.txt", NEUROX_TEXT)
    f["nxblank"] = write(d / "blank.txt", [NEUROX_TEXT[0], "", NEUROX_TEXT[2]])
    f["nxextra"] = write(d / "extra.labels", ["DT NN VBD", "DT NN VBZ", "UH", "UH"])
    f["nxmissing"] = write(d / "missing.labels", ["DT NN VBD", "UH"])  # the middle line is missing
    f["nxshort"] = write(d / "short.labels", ["DT NN VBD", "DT NN", "UH"])  # line 2: 2 labels for 3 words
    f["nomodel"] = d / "nomodel"
    f["nomodel"].mkdir(exist_ok=True)
    (f["nomodel"] / "README.md").write_text("not a model\n")
    f["afile"] = d / "afile"
    f["afile"].write_text("a regular file\n")
    f["notckpt"] = d / "notes.ckpt"
    f["notckpt"].write_text("these are notes, not a checkpoint\n")
    torch.manual_seed(0)
    lm = NLMModule(emb_dim=8, hidden=8, layers=1, dropout=0.0, vocab=Vocab([*SPECIALS, "the", "cats", "dog"]))
    ckpt = {"state_dict": lm.state_dict()}
    lm.on_save_checkpoint(ckpt)  # what Lightning adds to every checkpoint train.py writes
    f["nlmckpt"] = d / "nlm.ckpt"
    torch.save(ckpt, f["nlmckpt"])
    f["truncckpt"] = d / "trunc.ckpt"
    f["truncckpt"].write_bytes(f["nlmckpt"].read_bytes()[:300])
    return f


NX = "task=neurox"
OTHERS = "method.others=[{{name: transformer, path: {bert}}}]"  # the tiny BERT as the other model of a correlation
CASES = [
    # ------------------------------------------------------------------ malformed corpus files
    Case("conllu-columns", ("task.file={cols}",), "{cols}:3: malformed CoNLL-U line: expected 10 tab-separated"),
    Case("conllu-bad-id", ("task.file={badid}",), "{badid}:3: malformed CoNLL-U line: bad ID 'x'"),
    Case("conllu-id-sequence", ("task.file={seqid}",), "{seqid}:3: malformed CoNLL-U line: word ID 1 where 3"),
    Case("conllu-bad-head", ("task.file={head}",), "{head}:3: malformed CoNLL-U line: HEAD 'abc' is not"),
    Case("conllu-not-utf8", ("task.file={latin1}",), "{latin1}:3: not UTF-8 text"),
    Case("conllu-truncated-gzip", ("task.file={truncgz}",), "gzip data is truncated or damaged after line",
         pattern=r"error: {truncgz}:\d+: gzip data"),
    Case("conllu-not-gzip", ("task.file={notgz}",), "{notgz}: not a valid gzip file"),
    Case("conllu-empty", ("task.file={empty}",), "{empty}: file is empty"),
    Case("corpus-missing", ("task.file={afile}.conllu",), "{afile}.conllu does not exist"),
    Case("corpus-is-a-folder", ("task.file={nomodel}",), "task.file: {nomodel} is a folder, not a corpus file; "
         "set task.file to a file in it"),
    Case("train-file-is-a-folder", ("task.files.train={nomodel}", "task.files.test={corpus}"),
         "task.files.train: {nomodel} is a folder, not a corpus file"),
    Case("conll2000-columns", ("task=chunk", "task.file={chunkcols}"),
         "{chunkcols}:5: malformed CoNLL-2000 line: expected 3 columns (word POS chunk), found 2"),
    Case("conll2000-for-upos", ("task.format=conll2000", "task.file={chunks}"), "has no 'upos' column"),
    Case("neurox-extra-label-line", (NX, "task.file={{sentences: {nx}, labels: {nxextra}}}"),
         "{nx} has 3 lines but label file {nxextra} has 4"),
    Case("neurox-missing-label-line", (NX, "task.file={{sentences: {nx}, labels: {nxmissing}}}"),
         "first line whose word and label counts differ is {nx}:2 / {nxmissing}:2"),
    Case("neurox-label-count", (NX, "task.file={{sentences: {nx}, labels: {nxshort}}}"),
         "{nx}:2: sentence has 3 words but {nxshort}:2 has 2 labels"),
    Case("neurox-blank-sentence", (NX, "task.file={{sentences: {nxblank}, labels: {nxshort}}}"),
         "{nxblank}:2: empty sentence line"),
    Case("single-class", ("task.file={onetag}",), "every labelled train token has the label 'NOUN'"),
    Case("morph-feature-nobody-has", ("task=morph", "task.params.feature=Nope", "task.file={corpus}"),
         "No token has the feature 'Nope'; features present: Definite, Mood, Number, PronType, Tense, VerbForm"),
    # ---------------------------------------------------------------------- bad config values
    Case("split-sum", ("task.split.dev=0.2",), "task.split: ratios sum to 1.1, expected 1"),
    Case("split-unknown-key", ("+task.split.valid=0.1",), "task.split: unknown key(s) ['valid']"),
    Case("percents-150", ("evaluation.percents=[150]",), "evaluation.percents: 150 is not in (0, 100]"),
    Case("percents-0", ("evaluation.percents=[5,0]",), "evaluation.percents: 0 is not in (0, 100]"),
    Case("minimal-delta", ("evaluation.minimal_delta=2",), "evaluation.minimal_delta: 2 is not in [0, 1]"),
    Case("negative-lambda", ("probe.lambda1=-0.1",), "probe.lambda1: -0.1 is not in [0, inf]"),
    Case("zero-epochs", ("probe.epochs=0",), "probe.epochs: 0 is below the minimum 1"),
    Case("negative-grid", ("probe.selection.grid=[1e-3,-1]",), "probe.selection.grid: -1 is not in [0, inf]"),
    Case("store-dtype", ("store.dtype=float64",), "store.dtype: expected one of float32, float16, got 'float64'"),
    Case("store-engine", ("store.engine=spark",), "store.engine: expected one of local, ray, submitit, got 'spark'"),
    Case("store-workers", ("store.workers=0",), "store.workers: "),
    Case("model-dtype", ("model.dtype=int8",), "model.dtype: expected one of float32, bfloat16, float16, got 'int8'"),
    Case("seed-not-int", ("seed=abc",), "seed: expected an integer, got 'abc'"),
    Case("files-without-train", ("task.files.dev={corpus}",), "task.files: a train file is required"),
    Case("unknown-task", ("task.name=upoz",), "task.name: unknown task 'upoz'; did you mean 'upos'?"),
    Case("unknown-reader", ("task.format=conllx",), "task.format: unknown reader 'conllx'; did you mean 'conllu'"),
    Case("unknown-method", ("method=lca", "method.name=lcx"), "method.name: unknown method 'lcx'; did you mean 'lca'?"),
    Case("unknown-model", ("model.name=transformr",), "model.name: unknown model 'transformr'; did you mean"),
    Case("unknown-logger-option", ("logger=nope",), "Could not find 'logger/nope'", code=1),
    Case("unknown-method-option", ("method=nope",), "Could not find 'method/nope'", code=1),
    Case("layers-out-of-range", ("model.layers=[0,5]",), "model.layers: layer(s) [5] out of range; this model has "
         "layers 0 (embeddings) to 2"),
    Case("layers-negative", ("model.layers=[-1,1]",), "model.layers: layer indices must be integers >= 0, got [-1]"),
    Case("model-path-no-model", ("model.path={nomodel}",), "model.path: {nomodel} is not a model folder (no config.json)"),
    Case("several-problems", ("task.split.dev=0.3", "probe.epochs=0", "store.shard_tokens=-1"),
         "3 problems in the config:\n  task.split: ratios sum to 1.2, expected 1\n  probe.epochs: 0 is below"),
    # ---- more config values
    Case("random-draws-0", ("evaluation.random_draws=0",), "evaluation.random_draws: 0 is below the minimum 1"),
    Case("control-draws-0", ("evaluation.control_draws=0",), "evaluation.control_draws: 0 is below the minimum 1"),
    Case("shard-tokens-0", ("store.shard_tokens=0",), "store.shard_tokens: 0 is below the minimum 1"),
    Case("batch-tokens-0", ("store.batch_tokens=0",), "store.batch_tokens: 0 is below the minimum 1"),
    Case("memory-negative", ("evaluation.memory_gb=-1",), "evaluation.memory_gb: -1 is not in [0, inf]"),
    Case("layer-top-percent-0", ("evaluation.layer_top_percent=0",), "evaluation.layer_top_percent: 0 is not in (0, 100]"),
    Case("percents-repeated", ("evaluation.percents=[5,10,5]",), "evaluation.percents: 5 given more than once"),
    Case("evaluation-probe-word", ("evaluation.probe=bogus",),
         "evaluation.probe: expected same, linear or a dict of probe settings, got 'bogus'"),
    Case("control-not-a-boolean", ("task.control=maybe",), "task.control: expected true or false, got 'maybe'"),
    Case("control-seed-word", ("task.control_seed=x",), "task.control_seed: expected an integer, got 'x'"),
    Case("unknown-label-option", ("task.unknown_label=drop",),
         "task.unknown_label: expected one of unk, skip, error, got 'drop'"),
    Case("unknown-site-kind", ("model.sites=[hidden,ffn]",), "model.sites: unknown site kind(s) ['ffn']; allowed: "
         "hidden, attn, mlp"),
    Case("unknown-aggregation", ("model.aggregation=max",),
         "model.aggregation: expected one of first, last, mean, got 'max'"),
    Case("max-length-0", ("model.max_length=0",), "model.max_length: 0 is below the minimum 1"),
    Case("max-length-no-room", ("model.max_length=2",), "model.max_length: 2 leaves no room for a word beside this "
         "tokenizer's 2 special tokens; use at least 3"),
    Case("layers-a-word", ("model.layers=first",),
         "model.layers: expected 'all' or a list of layer indices (0 = embeddings), got 'first'"),
    Case("layers-fraction", ("model.layers=[1.5]",), "model.layers: layer indices must be integers >= 0, got [1.5]"),
    Case("layers-empty", ("model.layers=[]",), "model.layers: expected 'all' or a list of layer indices"),
    Case("selection-rule-unknown", ("probe.selection.rule=best",),
         "probe.selection.rule: expected one of auto, gap, oracle, got 'best'"),
    Case("selection-tolerance-negative", ("probe.selection.tolerance=-1",),
         "probe.selection.tolerance: -1 is not in [0, 1]"),
    Case("selection-percent-0", ("probe.selection.percent=0",), "probe.selection.percent: 0 is not in (0, 100]"),
    Case("grid-triple", ("probe.selection.grid=[[1e-3,1e-3,1e-3]]",),
         "probe.selection.grid: expected x or a pair [lambda1, lambda2], got [0.001, 0.001, 0.001]"),
    Case("patience-negative", ("probe.patience=-1",), "probe.patience: -1 is below the minimum 0"),
    Case("lr-decay-0", ("probe.lr_decay=0",), "probe.lr_decay: 0 is not in (0, 1]"),
    Case("penalty-unknown", ("probe.penalty=l3",), "probe.penalty: expected one of ('elastic', 'neurox'), got 'l3'"),
    Case("backend-unknown", ("probe.backend=jax",), "probe.backend: expected one of ('numpy', 'lightning'), got 'jax'"),
    Case("report-top-neurons-negative", ("report.top_neurons=-1",), "report.top_neurons: -1 is below the minimum 0"),
    Case("report-input-missing", ("report.input={afile}.d",), "report.input: {afile}.d does not exist"),
    Case("cca-negative-ridge", ("method=cca", "method.ridge=-1", OTHERS), "method.ridge: -1 is not in [0, inf]"),
    Case("regcorr-infinite-ridge", ("method=regcorr", "method.ridge=inf", OTHERS),
         "method.ridge: expected a number, got inf"),
    Case("svcca-keep-0", ("method=svcca", "method.keep=0", OTHERS), "method.keep: 0 is not in (0, 1]"),
    Case("aggregate-over-median", ("method=regcorr", "method.aggregate_over=median", OTHERS),
         "method.aggregate_over: expected one of max, min, mean, got 'median'"),
    Case("correlation-tokens-dev", ("method=maxcorr", "method.tokens=dev", OTHERS),
         "method.tokens: expected one of train, all, got 'dev'"),
    Case("baseline-draws-a-word", ("method=maxcorr", "method.baseline_draws=abc", "method.tile=100", OTHERS),
         "method.baseline_draws: expected an integer, got 'abc'"),
    Case("baseline-maybe", ("method=mincorr", "method.baseline=maybe", OTHERS),
         "method.baseline: expected true or false, got 'maybe'"),
    Case("pairing-draws-negative", ("method=svcca", "method.pairing_draws=-2", OTHERS),
         "method.pairing_draws: -2 is below the minimum 0"),
    Case("method-others-a-word", ("method=maxcorr", "method.others=[nlm]"),
         "method.others[0]: expected a model node with a name"),
    # ------------------------------------------------------------------ saved probes
    Case("probe-load-missing", ("probe.load={afile}.safetensors",), "probe.load: {afile}.safetensors does not exist"),
    Case("probe-load-not-json", (f"probe.load={REPO}/tests/data/probes/not_json.safetensors",),
         f"probe.load: {REPO}/tests/data/probes/not_json.json: not readable JSON"),
    Case("probe-load-no-classes", (f"probe.load={REPO}/tests/data/probes/no_classes.safetensors",),
         f"probe.load: {REPO}/tests/data/probes/no_classes.json: lacks 'classes'"),
    Case("probe-load-other-model", (f"probe.load={REPO}/tests/data/probes/other_model.safetensors",),
         f"probe.load: {REPO}/tests/data/probes/other_model.safetensors was trained on model 'other_bert' "
         "(model fingerprint ", pattern=r"but the store \S+ holds model 'transformer' \(model fingerprint [0-9a-f]{{16}}\)"),
    Case("probe-load-regression-for-classes", (f"probe.load={REPO}/tests/data/probes/depth.safetensors",),
         f"probe.load: {REPO}/tests/data/probes/depth.safetensors is a regression probe (trained on task 'depth'), "
         "but task 'upos' is classified"),
    Case("probe-load-classifier-for-numeric", ("task=depth", f"probe.load={REPO}/tests/data/probes/other_model.json"),
         f"probe.load: {REPO}/tests/data/probes/other_model.safetensors is a classifier probe (trained on task 'upos'), "
         "but task 'depth' is numeric"),
    # ------------------------------------------------------------------ experiments
    Case("experiment-patch-mode", ("experiment=dalvi2019_nlm", "model=nlm_lstm", "checkpoints=[{nlmckpt}]",
                                   "ablation.mode=patch"),
         "ablation.mode: expected zero or mean, got 'patch' (patch copies recorded activations"),
    Case("experiment-checkpoint-missing", ("experiment=dalvi2019_nlm", "model=nlm_lstm",
                                           "checkpoints=[{nlmckpt},{afile}.ckpt]"),
         "checkpoints[1]: {afile}.ckpt does not exist"),
    Case("experiment-checkpoints-not-a-list", ("experiment=dalvi2019_nlm", "model=nlm_lstm", "checkpoints={nlmckpt}"),
         "checkpoints: expected a list, the studied model first"),
    Case("experiment-checkpoint-not-a-checkpoint", ("experiment=dalvi2019_nlm", "model=nlm_lstm",
                                                    "checkpoints=[{notckpt}]", "ablation.correlation=[]"),
         "checkpoints[0]: {notckpt} cannot be loaded as a safe torch checkpoint"),
    Case("experiment-ranking-numbers", ("experiment=dalvi2019_nlm", "model=nlm_lstm", "checkpoints=[{nlmckpt}]",
                                        "+ablation.rankings.mine=[1,2]"),
         "ablation.rankings.mine: entry 0 is 1, not a neuron id 'site:unit'"),
    Case("experiment-ranking-not-json", ("experiment=dalvi2019_nlm", "model=nlm_lstm", "checkpoints=[{nlmckpt}]",
                                         "ablation.rankings={{mine: {afile}}}"),
         "ablation.rankings.mine: {afile} is not a JSON file"),
    Case("experiment-ranking-missing-file", ("experiment=dalvi2019_nlm", "model=nlm_lstm",
                                             "checkpoints=[{nlmckpt}]", "+ablation.rankings.mine=layer"),
         "ablation.rankings.mine: layer does not exist (or is not a file); give a path of a results.json"),
    Case("experiment-unknown-property", ("experiment=dalvi2019_nlm", "model=nlm_lstm", "checkpoints=[{nlmckpt}]",
                                         "ablation.properties=[{{name: upos}},{{name: upoz}}]"),
         "ablation.properties[1].name: unknown task 'upoz'; did you mean 'upos'?"),
    Case("experiment-mean-without-studies", ("experiment=dalvi2019_nlm", "model=nlm_lstm", "checkpoints=[{nlmckpt}]",
                                             "ablation.mode=mean", "ablation.properties=[]",
                                             "ablation.correlation=[]", "+ablation.rankings.mine=[lm.l0:0]"),
         "ablation.mode: mean takes each neuron's mean from a study's store"),
    Case("method-others-missing-path", ("method=maxcorr", "method.others=[{{name: transformer, path: {afile}/bert}}]"),
         "method.others[0].path: {afile}/bert does not exist"),
    Case("method-others-unknown-model", ("method=maxcorr", "method.others=[{{name: transformr}}]"),
         "method.others[0].name: unknown model 'transformr'"),
    # ------------------------------------------------------------------ checkpoints and folders
    Case("checkpoint-missing", ("model=nmt_lstm", "model.checkpoint={afile}.ckpt"),
         "model.checkpoint: {afile}.ckpt does not exist"),
    Case("checkpoint-truncated", ("model=nmt_lstm", "model.checkpoint={truncckpt}"),
         "model.checkpoint: {truncckpt} cannot be loaded as a safe torch checkpoint"),
    Case("checkpoint-not-a-checkpoint", ("model=nlm_lstm", "model.checkpoint={notckpt}"),
         "model.checkpoint: {notckpt} cannot be loaded"),
    Case("checkpoint-other-architecture", ("model=nmt_lstm", "model.checkpoint={nlmckpt}"),
         "model.checkpoint: {nlmckpt} holds a 'nlm_lstm' model, not 'nmt_lstm'; use model=nlm_lstm"),
    Case("output-dir-under-a-file", ("output_dir={afile}/results",),
         "output_dir: cannot create {afile}/results: {afile} is a file, not a folder"),
    Case("run-dir-under-a-file", ("hydra.run.dir={afile}/run",),
         "hydra.run.dir: cannot create {afile}/run: {afile} is a file, not a folder"),
]

SLOW = {"checkpoint-truncated", "checkpoint-not-a-checkpoint"}  # loading the LSTM code imports Lightning
SLOW |= {"experiment-checkpoint-not-a-checkpoint", "experiment-mean-without-studies"}  # experiments import Lightning


def base_args(case_dir: Path, f: dict[str, Path], args: tuple[str, ...]) -> list[str]:
    """The tiny model and corpus, no logger, a private run folder and store (a case may override)."""
    model = [] if any(a.startswith("model=") for a in args) else ["model=transformer", f"model.path={f['bert']}"]
    return [*model, f"task.file={f['corpus']}", "logger=none", "store.progress=false",
            f"hydra.run.dir={case_dir / 'run'}", f"store.root={case_dir / 'stores'}"]


def run_case(case: Case, root: Path, f: dict[str, Path]) -> subprocess.CompletedProcess:
    case_dir = root / case.id
    case_dir.mkdir()
    args = [a.format(**f) for a in case.args]
    env = dict(os.environ, HYDRA_FULL_ERROR="0", NEUROSCOPE_CACHE=str(case_dir / "cache"))
    env.pop("NEUROSCOPE_TRACEBACK", None)
    return subprocess.run([sys.executable, str(REPO / "analyze.py"), *base_args(case_dir, f, case.args), *args],
                          cwd=case_dir, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def outcome(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path
            ) -> dict[str, tuple[subprocess.CompletedProcess, Path, dict[str, Path]]]:
    """Run the selected cases, two subprocesses at a time: case id -> (process, its folder, files)."""
    root = tmp_path_factory.mktemp("bad_input")
    files = {**prepare(root / "inputs"), "bert": tiny_bert}
    wanted = {item.callspec.params["case"].id for item in request.session.items
              if item.module is request.module and hasattr(item, "callspec") and "case" in item.callspec.params}
    cases = [c for c in CASES if c.id in wanted]
    with ThreadPoolExecutor(max_workers=2) as pool:
        procs = list(pool.map(lambda c: run_case(c, root, files), cases))
    return {c.id: (p, root / c.id, files) for c, p in zip(cases, procs, strict=True)}


def partial_files(case_dir: Path) -> list[Path]:
    """Leftovers a failed run must not leave: temporary files, results, stores without a manifest."""
    tmp = [p for p in case_dir.rglob("*") if p.name.endswith(".tmp") or ".tmp." in p.name]
    results = list((case_dir / "run").rglob("results.json"))
    stores = case_dir / "stores"
    half = [s for s in stores.iterdir() if s.is_dir() and s.name != "index" and not (s / "manifest.json").exists()] \
        if stores.is_dir() else []  # index/: the entries of stores built whole
    run = [case_dir / "run"] if (case_dir / "run").exists() else []  # no (empty) run folder of a failed run
    return tmp + results + half + run


def test_cases_are_distinct_and_enough() -> None:
    assert len({c.id for c in CASES}) == len(CASES)
    assert len({c.args for c in CASES}) == len(CASES)
    assert len(CASES) >= 60
    assert sum(c.code == 2 and c.id not in SLOW for c in CASES) >= 55


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=pytest.mark.slow if c.id in SLOW else ())
                                  for c in CASES])
def test_bad_input_gives_one_clear_error(case: Case, outcome: dict) -> None:
    proc, case_dir, files = outcome[case.id]
    err = proc.stderr
    assert proc.returncode == case.code, f"exit {proc.returncode}\n{err[-3000:]}"
    assert "Traceback" not in err, err[-3000:]
    assert case.expect.format(**files) in err, err[-3000:]
    if case.pattern:
        assert re.search(case.pattern.format(**{k: re.escape(str(v)) for k, v in files.items()}), err), err
    if case.code == 2:
        assert err.count("error: ") == 1 and any(line.startswith("error: ") for line in err.splitlines()), err
    assert partial_files(case_dir) == []


# ------------------------------------------------------------ what must keep working

NEEDS = {"model=transformer": ["model.path=bert-base-cased"], "task=chunk": ["task.file=train.txt"],
         "task=neurox": ["task.file={sentences: s.txt, labels: s.labels}"]}
SHIPPED = [f"{group}={p.stem}" for group in ("task", "model", "method", "probe")
           for p in sorted((REPO / "conf" / group).glob("*.yaml"))] + ["experiment=minilm_upos_fp16"]


@pytest.mark.parametrize("override", SHIPPED)
def test_shipped_configs_pass_validation(override: str, tmp_path: Path) -> None:
    from neuroscope.validate import validate_analyze
    from tests.test_entrypoints import compose_analyze

    validate_analyze(compose_analyze([override, *NEEDS.get(override, []), f"output_dir={tmp_path}"]))


def test_train_and_test_files_without_dev_give_a_whole_study(tmp_path: Path, tiny_bert: Path) -> None:
    """The most common own-corpus setup: dev is a seeded 10 % of train, reported in results.json."""
    import json

    from neuroscope.analysis import analyze
    from tests.test_entrypoints import compose_analyze

    train, test = tiny_conllu(tmp_path / "train.conllu", 10), tiny_conllu(tmp_path / "test.conllu", 2)
    out = tmp_path / "run"
    analyze(compose_analyze([
        "model=transformer", f"model.path={tiny_bert}", "logger=none", "store.progress=false", "method=lca",
        f"store.root={tmp_path / 'stores'}", f"output_dir={out}", f"plugins.dirs=[{tmp_path / 'plugins'}]",
        f"task.files.train={train}", f"task.files.test={test}",
    ]))
    saved = json.loads((out / "results.json").read_text())
    assert saved["task_info"]["dev_from_train"] == {"sentences": 2, "ratio": 0.1, "seed": 0}
    assert saved["split"] == {"train": 92, "dev": 8, "test": 20}
    assert saved["method"] == "lca" and len(saved["ranking"]) == 48
