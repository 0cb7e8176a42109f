"""The README stays short and runnable, and the documentation site builds strictly."""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO, SHARED_DATA

README = REPO / "README.md"
RUNNABLE = re.compile(r"<!-- runnable -->\n```(?:bash|sh)\n(.*?)```", re.DOTALL)
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def runnable_blocks(text: str) -> list[str]:
    """The code of every fenced block marked `<!-- runnable -->` on the line before its fence."""
    return [m.group(1) for m in RUNNABLE.finditer(text)]


def ci_commands() -> list[str]:
    """The commands .ci/run runs (set-up, lint, docs, tests), without shell plumbing or comments."""
    lines = [line.split("   #")[0].strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    return [line for line in lines if line and not line.startswith(("#", "set ", "cd ", "export "))]


def test_readme_has_at_most_250_lines() -> None:
    """The README is an entry point; details live in docs/."""
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n <= 250, f"README.md has {n} lines; move details into docs/"


def test_readme_holds_every_ci_command() -> None:
    """.ci/run runs the README's set-up and test commands, and nothing the README does not say."""
    text = README.read_text(encoding="utf-8")
    commands = ci_commands()
    assert any(c.startswith("pip install") for c in commands) and "python -m pytest" in commands
    missing = [c for c in commands if c not in text]
    assert not missing, f".ci/run commands not in README.md: {missing}"


def test_readme_links_point_at_files() -> None:
    """Every relative link of the README names a file of the repo (anchors aside)."""
    targets = [t for t in LINK.findall(README.read_text(encoding="utf-8")) if "://" not in t]
    assert targets, "README.md links nothing"
    broken = [t for t in targets if not (REPO / t).exists()]
    assert not broken, f"README.md links missing files: {broken}"


@pytest.mark.parametrize("index", range(len(runnable_blocks(README.read_text(encoding="utf-8")))))
def test_runnable_readme_block(index: int, tmp_path: Path) -> None:
    """Each marked README block runs from the repo root with exit status 0 and prints something."""
    block = runnable_blocks(README.read_text(encoding="utf-8"))[index]
    script = block.replace("python ", f"{shlex.quote(sys.executable)} ")
    env_data = f"export NEUROSCOPE_DATA={shlex.quote(str(SHARED_DATA))}\n"
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", env_data + script], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"README block {index} failed:\n{block}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    assert proc.stdout.strip(), f"README block {index} printed nothing:\n{block}"


def test_readme_marks_runnable_blocks() -> None:
    """The cheap README commands are marked, so the test above runs them."""
    blocks = runnable_blocks(README.read_text(encoding="utf-8"))
    assert any("analyze.py --help" in b for b in blocks)
    assert any("--cfg job" in b for b in blocks)


def test_cfg_job_block_composes_its_overrides() -> None:
    """The README's `--cfg job` block prints the config it describes (task, method, seeds)."""
    block = next(b for b in runnable_blocks(README.read_text(encoding="utf-8")) if "--cfg job" in b)
    args = shlex.split(block.strip())[2:]  # after `python analyze.py`
    proc = subprocess.run([sys.executable, "analyze.py", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for override in args[2:]:  # task=..., method=..., evaluation.seeds=...
        key, value = override.split("=", 1)
        leaf = key.split(".")[-1] if "." in key else "name"
        assert re.search(rf"^\s*{re.escape(leaf)}: {re.escape(value)}$", proc.stdout, re.M), override


def test_docs_build_strict(tmp_path: Path) -> None:
    """`mkdocs build --strict` passes: every nav page exists, every link and anchor resolves, the
    configuration reference renders from conf/."""
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        pytest.skip("mkdocs-material is not installed (it comes with the dev extra)")
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    reference = (site / "configuration" / "index.html").read_text(encoding="utf-8")
    for option in sorted((REPO / "conf" / "method").glob("*.yaml")):
        assert f"method={option.stem}" in reference, f"configuration reference lacks method={option.stem}"
    assert "evaluation.random_draws" in reference and "search_stride" in reference
    example = REPO / "docs" / "examples" / "api_quickstart.py"
    if example.exists():  # the API page includes the example script verbatim
        api = (site / "api" / "index.html").read_text(encoding="utf-8")
        first = next(line for line in example.read_text(encoding="utf-8").splitlines() if line.strip())
        assert re.sub(r"\W", "", first)[:20] in re.sub(r"<[^>]+>|\W", "", api)


def _hook() -> ModuleType:
    """docs/hooks/config_reference.py as a module (docs/ is not a package)."""
    pytest.importorskip("mkdocs", reason="mkdocs-material is not installed (it comes with the dev extra)")
    spec = importlib.util.spec_from_file_location("config_reference", REPO / "docs" / "hooks" / "config_reference.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


def test_config_reference_renders_keys_defaults_and_comments(tmp_path: Path) -> None:
    """A group option's header comment, nested keys with defaults, inline and continued comments,
    stand-alone comments as headings, list items; the top-level defaults name the group's default."""
    hook = _hook()
    conf = tmp_path / "conf"
    (conf / "method").mkdir(parents=True)
    (conf / "analyze.yaml").write_text("defaults:\n  - method: toy   # the ranker\nseed: 0\n")
    (conf / "train.yaml").write_text("seed: 1\n")
    (conf / "method" / "toy.yaml").write_text(
        "# A toy ranker: python analyze.py method=toy\nname: toy\nlimits:\n  low: 0.5      # below <this> | skip\n"
        "                 # and continued\n\n# section\nitems:\n  - {a: 1}   # first\n")
    text = hook.render(conf)
    assert "## `method`" in text and "(default `toy`)" in text and "### `method=toy`" in text
    assert "A toy ranker: python analyze.py method=toy" in text
    assert "| `limits.low` | `0.5` | below &lt;this&gt; \\| skip and continued |" in text
    assert "*section*" in text and "| `items[0]` | `{a: 1}` | first |" in text
    assert "| `defaults[0]` | `method: toy` | the ranker |" in text


def test_config_reference_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    """A YAML layout the line reader does not understand (a block scalar) stops the build, naming the
    file and line, rather than documenting it wrongly."""
    hook = _hook()
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntext: |\n  two words\n")
    with pytest.raises(hook.PluginError, match=r"bad\.yaml:3"):
        hook.parse(bad)
