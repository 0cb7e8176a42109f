"""Sweeps beyond joblib: conf/hydra/launcher/{submitit,slurm,ray_local}.yaml.

Two-run multiruns of analyze.py (a tiny BERT, a tiny corpus, method=none) through the submitit
launcher (local processes) and the Ray launcher (a local Ray instance): each run writes its
results.json, and both runs share one activation store, built once under its lock, with the
labels of both tasks in its manifest. The Slurm config is checked up to the sbatch script (a
fake `sbatch` records it; there is no cluster here). The launcher plugins come with the `dev`
extra (the README's set-up), so nothing here is skipped: a missing plugin is a failure.
"""

from __future__ import annotations

import importlib
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from neuroscope.store import ActivationStore
from tests.conftest import REPO, tiny_conllu


def _analyze(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ if env is None else env, HYDRA_FULL_ERROR="1")
    return subprocess.run([sys.executable, str(REPO / "analyze.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


def _tiny_sweep(root: Path, tiny_bert: Path, launcher: str) -> list[str]:
    """A 2-run multirun (task=upos,xpos) of extraction only, every run on the same store."""
    corpus = tiny_conllu(root / "tiny.conllu")
    return [
        "--multirun", f"hydra/launcher={launcher}", "task=upos,xpos", "method=none",
        "model=transformer", f"model.path={tiny_bert}", f"task.file={corpus}", "logger=none",
        f"store.root={root / 'stores'}", "store.progress=false", f"hydra.sweep.dir={root / 'multi'}",
    ]


def _check_shared_store(sweep: Path) -> list[dict]:
    """Both runs wrote results.json; they used one store, built once, intact, with both tasks' labels."""
    results = [json.loads((sweep / str(i) / "results.json").read_text()) for i in (0, 1)]
    assert sorted(r["task"] for r in results) == ["upos", "xpos"]
    paths = {r["store"]["path"] for r in results}
    assert len(paths) == 1, paths
    # the lock let one run build the store while the other waited, then reused it
    assert sorted(r["store"]["reused"] for r in results) == [False, True]
    store = ActivationStore(paths.pop())
    assert store.damaged() == []
    assert (store.n_tokens, store.n_neurons) == (100, 48)
    assert np.isfinite(store.read()).all()
    assert (store.path.parent / f".{store.path.name}.lock").exists()
    assert not list(store.path.rglob("*.tmp"))  # no half-written file left behind
    # both runs added their task's labels to the one manifest (read-modify-write under the lock)
    labels = store.manifest["labels"]
    assert sorted(k.split("-")[0] for k in labels) == ["upos", "xpos"]
    assert all((store.path / entry["file"]).is_file() for entry in labels.values())
    return results


def test_submitit_local_two_runs_share_one_store(tmp_path: Path, tiny_bert: Path) -> None:
    start = time.perf_counter()
    proc = _analyze(_tiny_sweep(tmp_path, tiny_bert, "submitit"), tmp_path)
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "Submitit 'local' sweep output dir" in proc.stdout + proc.stderr
    _check_shared_store(tmp_path / "multi")
    # each run was a submitit job with its own folder: logs and pickled result
    assert len(list((tmp_path / "multi" / ".submitit").glob("*/*_result.pkl"))) == 2
    print(f"submitit 2-run multirun: {seconds:.1f} s")


def test_ray_local_two_runs_share_one_store(tmp_path: Path, tiny_bert: Path) -> None:
    """Starting a local Ray instance takes ~10 s of the ~30 s this test takes on 2 cores."""
    start = time.perf_counter()
    proc = _analyze(_tiny_sweep(tmp_path, tiny_bert, "ray_local"), tmp_path)
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    log = proc.stdout + proc.stderr
    assert "Ray Launcher is launching 2 jobs" in log and "'num_cpus': 2" in log
    _check_shared_store(tmp_path / "multi")
    print(f"ray 2-run multirun: {seconds:.1f} s")


FAKE_SBATCH = """#!/bin/sh
# records the submission script, then refuses it: there is no cluster here
cp "$1" "{out}"
echo "sbatch: error: fake sbatch (test)" >&2
exit 1
"""


def test_slurm_config_renders_the_expected_sbatch_script(tmp_path: Path, tiny_bert: Path) -> None:
    """The Slurm launcher with our defaults (and a partition) gets as far as `sbatch`: the
    script that submitit writes asks for what conf/hydra/launcher/slurm.yaml says."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = tmp_path / "submitted.sh"
    for name, text in {"sbatch": FAKE_SBATCH.format(out=script), "srun": "#!/bin/sh\nexit 1\n"}.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod((bin_dir / name).stat().st_mode | stat.S_IXUSR)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    args = _tiny_sweep(tmp_path, tiny_bert, "slurm") + ["hydra.launcher.partition=cpu"]
    proc = _analyze(args, tmp_path, env)
    assert proc.returncode != 0 and "fake sbatch" in proc.stdout + proc.stderr
    text = script.read_text()
    for line in ("#SBATCH --partition=cpu", "#SBATCH --cpus-per-task=4", "#SBATCH --mem=16GB",
                 "#SBATCH --time=240", "#SBATCH --array=0-1%2", "#SBATCH --ntasks-per-node=1",
                 "export OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK MKL_NUM_THREADS=$SLURM_CPUS_PER_TASK"):
        assert line in text, f"{line!r} not in:\n{text}"
    assert "--gpus" not in text and "--gres" not in text  # (--array: array_parallelism 16, capped at 2 runs)
    assert not (tmp_path / "multi" / "0" / "results.json").exists()


@pytest.mark.parametrize(("launcher", "module", "target"), [
    ("submitit", "hydra_plugins.hydra_submitit_launcher", "submitit_launcher.LocalLauncher"),
    ("slurm", "hydra_plugins.hydra_submitit_launcher", "submitit_launcher.SlurmLauncher"),
    ("ray_local", "hydra_plugins.hydra_ray_launcher", "ray_launcher.RayLauncher"),
])
def test_launcher_configs_extend_the_plugin_configs(launcher: str, module: str, target: str) -> None:
    importlib.import_module(module)  # installed by the dev extra
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="analyze", overrides=[f"hydra/launcher={launcher}"], return_hydra_config=True)
    conf = cfg.hydra.launcher
    assert conf._target_ == f"{module}.{target}"
    if launcher == "ray_local":
        assert conf.ray.init.num_cpus == 2 and conf.ray.init.address is None and conf.ray.remote.num_cpus == 1
    else:
        assert conf.timeout_min == 240
        assert str(conf.submitit_folder).endswith(".submitit/%j")  # the plugin's own default, kept
    if launcher == "slurm":
        assert conf.partition is None and conf.cpus_per_task == 4 and conf.mem_gb == 16
