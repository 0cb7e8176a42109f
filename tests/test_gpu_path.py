"""The GPU path of extraction run on CPU through the same code (docs/scale/gpu.md): `extract_batches`
equals `extract` batch by batch, the overlap order of a look-ahead hand-over, bfloat16/float16 close to
float32 (measured tolerances), store keys by dtype, and one-line errors for model.dtype/model.device.
The tests marked `cuda` run only where torch sees a GPU (not on the machine these were written on)."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import torch

from neuroscope.devices import torch_device
from neuroscope.errors import ConfigError
from neuroscope.models.base import HostCopies, pipelined, torch_dtype
from neuroscope.models.transformer import TransformerNeurons
from tests.conftest import REPO, UD_DEV, tiny_conllu

SENTS = [["the", "cats", "sleep", "."], ["a", "dog"], ["hello", "world", ",", "unbelievably", "."],
         ["dogs", "can", "not", "run"], ["the", "dog", "runs", "."]]
BATCHES = [SENTS[:2], SENTS[2:3], SENTS[3:]]
ALL_KINDS = ["hidden", "attn", "mlp"]
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

# Measured on MiniLM over the first 200 UD EWT dev sentences (4,007 words, 19 sites, 14,208 neurons),
# worst site: max |x_low - x_32| / max |x_32| = 0.0187 (bfloat16), 0.0026 (float16); every
# non-constant neuron's Pearson r with its float32 self >= 0.99917 (bfloat16), 0.99998 (float16).
REL_MAX = {"bfloat16": 0.03, "float16": 0.005}
MIN_R = {"bfloat16": 0.998, "float16": 0.9999}


def _gpt2(tiny_bert: Path, **kwargs: Any) -> TransformerNeurons:
    """A tiny random GPT-2 (2 layers x 16) read through the tiny WordPiece tokenizer."""
    from transformers import AutoTokenizer, GPT2Config, GPT2Model

    tok = AutoTokenizer.from_pretrained(tiny_bert)
    torch.manual_seed(0)
    model = GPT2Model(GPT2Config(vocab_size=tok.vocab_size, n_embd=16, n_layer=2, n_head=2, n_positions=64))
    return TransformerNeurons(str(tiny_bert), model=model, tokenizer=tok, **kwargs)


def _source(kind: str, tiny_bert: Path, **kwargs: Any) -> TransformerNeurons:
    return _gpt2(tiny_bert, **kwargs) if kind == "gpt2" else TransformerNeurons(str(tiny_bert), **kwargs)


def _relative_error(low: torch.Tensor, ref: torch.Tensor) -> float:
    """max |low - ref| over the largest |ref| of the site."""
    return float((low - ref).abs().max() / ref.abs().max())


def _pearson(low: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Each non-constant neuron's Pearson r between `low` and `ref` ([words, units])."""
    live = (ref.std(0) > 1e-6) & (low.std(0) > 1e-6)
    a, b = ref[:, live] - ref[:, live].mean(0), low[:, live] - low[:, live].mean(0)
    return (a * b).sum(0) / (a.norm(dim=0) * b.norm(dim=0))


# --- the same code path on CPU ---------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["bert", "gpt2"])
@pytest.mark.parametrize("how", ["first", "last", "mean"])
def test_extract_batches_yields_exactly_extract_per_batch(kind: str, how: str, tiny_bert: Path) -> None:
    src = _source(kind, tiny_bert, sites=ALL_KINDS, aggregation=how, device="cpu")
    got = []
    for acts in src.extract_batches(iter(BATCHES)):  # any iterable, consumed lazily
        assert not torch.is_inference_mode_enabled()  # not held across a yield into the caller's code
        got.append(acts)
    assert len(got) == len(BATCHES)
    for batch, acts in zip(BATCHES, got, strict=True):
        want = src.extract(batch)
        assert list(acts) == src.sites == list(want)
        for site in src.sites:
            assert acts[site].dtype == torch.float32 and acts[site].device.type == "cpu"
            assert acts[site].shape == (sum(map(len, batch)), src.units[site])
            assert torch.equal(acts[site], want[site]), site


class Lookahead(HostCopies):
    """A hand-over that keeps one batch in flight, as the CUDA one does, and logs its calls."""

    ahead = 1

    def __init__(self, log: list[str]) -> None:
        self.log, self.n = log, 0

    def start(self, acts: dict[str, torch.Tensor]) -> Any:
        self.log.append(f"start {self.n}")
        self.n += 1
        return self.n - 1, {site: t.clone() for site, t in acts.items()}

    def finish(self, handle: Any) -> dict[str, torch.Tensor]:
        self.log.append(f"finish {handle[0]}")
        return handle[1]


def test_the_next_forward_is_launched_before_a_batch_is_waited_for(tiny_bert: Path) -> None:
    src = TransformerNeurons(str(tiny_bert), sites=ALL_KINDS)
    log: list[str] = []
    forward = src._forward

    def logged(batch: list[list[str]]) -> dict[str, torch.Tensor]:
        log.append(f"forward {BATCHES.index(batch)}")
        assert torch.is_inference_mode_enabled()
        return forward(batch)

    got = []
    for acts in pipelined(BATCHES, logged, Lookahead(log)):
        log.append(f"yield {len(got)}")
        got.append(acts)
    assert log == ["forward 0", "start 0", "forward 1", "start 1", "finish 0", "yield 0",
                   "forward 2", "start 2", "finish 1", "yield 1", "finish 2", "yield 2"]
    for batch, acts in zip(BATCHES, got, strict=True):
        want = src.extract(batch)
        assert all(torch.equal(acts[site], want[site]) for site in src.sites)


def test_the_cpu_hand_over_waits_for_nothing(tiny_bert: Path) -> None:
    src = TransformerNeurons(str(tiny_bert))
    src.extract(SENTS)
    assert type(src._host) is HostCopies and src._host.ahead == 0  # CPU: each batch yielded as it is made
    assert torch_device("cpu") == torch.device("cpu") and torch_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16


# --- lower precision -------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("kind", ["bert", "gpt2"])
def test_low_precision_is_close_to_float32_on_tiny_models(kind: str, dtype: str, tiny_bert: Path) -> None:
    ref = _source(kind, tiny_bert, sites=ALL_KINDS, aggregation="mean")
    low = _source(kind, tiny_bert, sites=ALL_KINDS, aggregation="mean", dtype=dtype)
    assert {p.dtype for p in low.model.parameters()} == {getattr(torch, dtype)}
    assert {p.dtype for p in ref.model.parameters()} == {torch.float32}
    want, got = ref.extract(SENTS), low.extract(SENTS)
    for site in ref.sites:
        assert got[site].dtype == torch.float32  # word vectors leave the model as float32
        assert _relative_error(got[site], want[site]) < REL_MAX[dtype], site


@pytest.mark.skipif(not UD_DEV.is_file(), reason="needs the UD EWT dev file of the data mirror")
def test_minilm_bfloat16_is_close_to_float32() -> None:
    from neuroscope.data.readers import read_conllu
    from neuroscope.models.transformer import minilm

    sentences = [s.words for s in read_conllu(UD_DEV)][:48]
    batches = [sentences[i:i + 16] for i in range(0, len(sentences), 16)]
    ref, low = minilm(sites=ALL_KINDS), minilm(sites=ALL_KINDS, dtype="bfloat16")
    want = [ref.extract(b) for b in batches]
    got = list(low.extract_batches(batches))
    for site in ref.sites:
        x, y = torch.cat([w[site] for w in want]), torch.cat([g[site] for g in got])
        assert _relative_error(y, x) < REL_MAX["bfloat16"], site
        assert float(_pearson(y, x).min()) > MIN_R["bfloat16"], site


def test_store_keys_differ_by_dtype_and_float32_keeps_its_key(tiny_bert: Path, tmp_path: Path) -> None:
    from neuroscope.data.readers import read_conllu
    from neuroscope.store import extract
    from neuroscope.store.extract import config_key

    sentences = [s.words for s in read_conllu(tiny_conllu(tmp_path / "tiny.conllu", copies=2))]
    plain, bf16 = TransformerNeurons(str(tiny_bert)), TransformerNeurons(str(tiny_bert), dtype="bfloat16")
    assert "dtype" not in plain.fingerprint()  # float32 stores built before model.dtype keep their key
    assert plain.fingerprint() == TransformerNeurons(str(tiny_bert), dtype="float32").fingerprint()
    assert {**plain.fingerprint(), "dtype": "bfloat16"} == bf16.fingerprint()
    a, reused_a = extract(plain, sentences, tmp_path / "stores", shard_tokens=7, progress=False)
    b, reused_b = extract(bf16, sentences, tmp_path / "stores", shard_tokens=7, progress=False)
    assert not reused_a and not reused_b and a.path != b.path
    assert b.manifest["model"]["dtype"] == "bfloat16" and b.dtype == "float32"
    x, y = torch.from_numpy(a.read(a.sites)), torch.from_numpy(b.read(b.sites))
    assert not torch.equal(x, y) and _relative_error(y, x) < REL_MAX["bfloat16"]
    node = {"name": "transformer", "path": str(tiny_bert), "dtype": "float32"}
    keys = {config_key({**node, "dtype": d}, sentences, "float32", 7) for d in ("float32", "bfloat16", "float16")}
    assert len(keys) == 3  # the index never hands a float32 store to a bfloat16 request
    assert config_key({**node, "device": "cuda"}, sentences, "float32", 7) == config_key(node, sentences, "float32", 7)


# --- errors ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "match"), [
    ({"dtype": "float64"}, r"^model\.dtype: expected one of float32, bfloat16, float16, got 'float64'$"),
    ({"dtype": "bf16"}, r"^model\.dtype: expected one of float32, bfloat16, float16, got 'bf16'$"),
    ({"device": "gpu"}, r"^model\.device: 'gpu' is not a device; use cpu, cuda, cuda:<index> or mps$"),
    ({"device": "meta"}, r"^model\.device: 'meta' is not supported"),
])
def test_bad_dtype_or_device_is_a_one_line_config_error(kwargs: dict[str, str], match: str, tiny_bert: Path) -> None:
    with pytest.raises(ConfigError, match=match) as err:
        TransformerNeurons(str(tiny_bert), **kwargs)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cuda_without_a_gpu_is_a_config_error_before_loading(device: str, tiny_bert: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from neuroscope.models.nlm import NLMNeurons

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same answer on a GPU machine

    match = rf"^model\.device: '{device}' asked for, but this torch \(.*\) sees no CUDA GPU"
    with pytest.raises(ConfigError, match=match):
        TransformerNeurons(str(tmp_path / "no-model-here"), device=device)  # checked before any loading
    with pytest.raises(ConfigError, match=match):  # LSTM sources: before the checkpoint is read
        NLMNeurons(tmp_path / "missing.ckpt", device=device)


def test_a_dtype_the_device_cannot_run_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_half_gelu(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        raise RuntimeError('"GeluKernelImpl" not implemented for \'Half\'\nmore detail')

    monkeypatch.setattr(torch.nn.functional, "gelu", no_half_gelu)
    with pytest.raises(ConfigError, match=r"^model\.dtype: float16 cannot run on cpu with this torch .*"
                                          r"not implemented for 'Half'; use model\.dtype=float32") as err:
        torch_dtype("float16", torch.device("cpu"))
    assert "\n" not in str(err.value)


def test_the_cli_names_model_dtype_and_model_device(tiny_bert: Path, tmp_path: Path) -> None:
    corpus = tiny_conllu(tmp_path / "tiny.conllu")
    cases = {"dtype": ["model.dtype=float64"], "device": ["model.device=cuda"]}
    if torch.cuda.is_available():
        del cases["device"]

    def run(name: str) -> subprocess.CompletedProcess:
        d = tmp_path / name
        env = dict(os.environ, HYDRA_FULL_ERROR="0", NEUROSCOPE_CACHE=str(d / "cache"))
        env.pop("NEUROSCOPE_TRACEBACK", None)
        args = ["model=transformer", f"model.path={tiny_bert}", f"task.file={corpus}", "logger=none",
                "store.progress=false", f"hydra.run.dir={d / 'run'}", f"store.root={d / 'stores'}", *cases[name]]
        return subprocess.run([sys.executable, str(REPO / "analyze.py"), *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)

    with ThreadPoolExecutor(max_workers=2) as pool:
        procs = dict(zip(cases, pool.map(run, cases), strict=True))
    for name, proc in procs.items():
        err = proc.stderr
        assert proc.returncode == 2 and "Traceback" not in err, err[-3000:]
        lines = [line for line in err.splitlines() if line.startswith("error: ")]
        assert len(lines) == 1 and lines[0].startswith(f"error: model.{name}: "), err[-3000:]


# --- on a GPU (skipped without one) ----------------------------------------------------------------

@cuda
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_cuda_batches_equal_cuda_extract_and_stay_close_to_cpu(dtype: str, tiny_bert: Path) -> None:
    cpu = TransformerNeurons(str(tiny_bert), sites=ALL_KINDS)
    gpu = TransformerNeurons(str(tiny_bert), sites=ALL_KINDS, device="cuda", dtype=dtype)
    got = list(gpu.extract_batches(BATCHES))
    for batch, acts in zip(BATCHES, got, strict=True):
        want, ref = gpu.extract(batch), cpu.extract(batch)
        for site in gpu.sites:
            assert acts[site].device.type == "cpu" and acts[site].is_pinned() and acts[site].dtype == torch.float32
            assert torch.equal(acts[site], want[site]), site
            limit = 1e-4 if dtype == "float32" else REL_MAX[dtype]
            assert _relative_error(acts[site], ref[site]) < limit, site
