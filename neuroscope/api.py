"""The Python API for notebooks and scripts: the same Hydra config as `analyze.py`, composed from
keyword arguments, run in this process, and a `Results` object to look at.

    import neuroscope as ns
    r = ns.study(task="upos", method="lca", logger="none", evaluation={"seeds": 1})
    r.results["oracle"], r.ranking[:10], r.figure("subsets"), r.report_path

Config mistakes raise `neuroscope.errors.ConfigError` (the CLI prints the same message).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from neuroscope.errors import ConfigError
from neuroscope.registry import PROJECT_ROOT

CONFIG_DIR = PROJECT_ROOT / "conf"
_PLAIN = re.compile(r"^[\w./:@~+-]+$")  # a Hydra override value that needs no quotes


def _value(v: Any) -> str:
    """A Python value as Hydra override grammar."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, Path):
        v = str(v)
    if isinstance(v, str):
        return v if _PLAIN.match(v) else "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(v, Mapping):
        return "{" + ",".join(f"{k}:{_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, Iterable):
        return "[" + ",".join(_value(x) for x in v) + "]"
    raise ConfigError(f"cannot pass {type(v).__name__} {v!r} as a config value")


def to_overrides(settings: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Keyword arguments as Hydra overrides: a string picks a group's option or sets a value; a dict
    sets the keys below (`evaluation={"seeds": 1}` → `evaluation.seeds=1`); a list is a list value."""
    out = []
    for key, v in settings.items():
        if v is None and not prefix:  # an unset keyword argument (e.g. model=None): the config's default
            continue
        name = f"{prefix}{key}"
        if isinstance(v, Mapping) and v:
            out += to_overrides(v, f"{name}.")
        else:
            out.append(f"{name}={_value(v)}")
    return out


def _run_dir(output_dir: str | Path | None, kind: str) -> Path:
    """The run folder: the given one, or `outputs/<kind>/<time>` under the working directory as the
    CLI makes it (a suffix when two runs start in the same second)."""
    if output_dir is not None:
        return Path(output_dir).expanduser().absolute()
    base = Path("outputs") / kind / time.strftime("%Y-%m-%d_%H-%M-%S")
    path, i = base, 1
    while path.exists():
        path, i = base.with_name(f"{base.name}_{i}"), i + 1
    return path.absolute()


def compose(overrides: Iterable[str] = (), config_name: str = "analyze") -> DictConfig:
    """The CLI's config (`conf/<config_name>.yaml` with Hydra overrides) composed in-process; an
    unknown group option or key is a `ConfigError` naming it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if not CONFIG_DIR.is_dir():
        raise ConfigError(f"no config folder at {CONFIG_DIR}: the API composes the project's conf/ "
                          "(install neuroscope from a source checkout: pip install -e .)")
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3", job_name=config_name):
            return hydra_compose(config_name=config_name, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(" ".join(line.strip() for line in str(exc).strip().splitlines())) from exc
    finally:
        GlobalHydra.instance().clear()


class Results:
    """A finished run: `results` (the results.json dict), `run_dir`, `ranking`, `report_path`, and
    `figure(name)`, a matplotlib Figure of the run's plots (displayed inline in Jupyter)."""

    def __init__(self, results: dict[str, Any], run_dir: str | Path) -> None:
        self.results = results
        self.run_dir = Path(run_dir)

    @property
    def ranking(self) -> list[str]:
        """Neuron ids (`site:unit`), most salient first (empty for runs without a ranking)."""
        return list(self.results.get("ranking") or [])

    @property
    def report_path(self) -> Path | None:
        """The run's report.html, when it was written (report.enabled)."""
        path = self.run_dir / "report.html"
        return path if path.is_file() else None

    def _plot(self, name: str) -> Any:
        """The named figure, or None when the run has no such part."""
        from neuroscope.reporting import figures

        plot = figures.FIGURES.get(name)
        if plot is None:
            raise ConfigError(f"figure '{name}': known figures: {', '.join(figures.FIGURES)}")
        return plot(self.results, figures.cutoffs(self.results, self.run_dir))

    def figures(self) -> list[str]:
        """Names of the figures this run has (for `figure`)."""
        import matplotlib.pyplot as plt

        from neuroscope.reporting import figures

        names = []
        for name in figures.FIGURES:
            fig = self._plot(name)
            if fig is not None:
                names.append(name)
                plt.close(fig)
        return names

    def figure(self, name: str) -> Any:
        """The named plot of this run (`subsets`, `layers`, `classes`, `ablation`, `lambda_search`,
        `comparison`, `similarity`) as a matplotlib Figure."""
        fig = self._plot(name)
        if fig is None:
            raise ConfigError(f"figure '{name}': this run has no such part (it has: {', '.join(self.figures())})")
        return fig

    def __getitem__(self, key: str) -> Any:
        return self.results[key]

    def __repr__(self) -> str:
        r = self.results
        return f"Results({r.get('model')} · {r.get('task')} · {r.get('method')}, run_dir={str(self.run_dir)!r})"


def run(overrides: Iterable[str] = (), output_dir: str | Path | None = None) -> Results:
    """Compose the analyze config from Hydra `overrides`, run it here, return its `Results`."""
    from neuroscope import analysis
    from neuroscope.validate import writable_dir

    out = _run_dir(output_dir, "analyze")
    if problem := writable_dir(str(out)):
        raise ConfigError(f"output_dir: {problem}")
    cfg = compose([*overrides, f"output_dir={_value(str(out))}"])
    outcome = analysis.run(cfg)
    return Results(outcome.results, out)


def study(model: str | None = None, task: str | None = None, method: str | None = None, *,
          overrides: Iterable[str] = (), output_dir: str | Path | None = None, **settings: Any) -> Results:
    """One study, as `python analyze.py model=... task=... method=... <settings>`; other config
    groups and keys as keyword arguments (`logger="none"`, `probe={"epochs": 5}`), raw Hydra
    overrides in `overrides`."""
    kw = to_overrides({"model": model, "task": task, "method": method, **settings})
    return run([*kw, *overrides], output_dir)


def experiment(name: str, *, overrides: Iterable[str] = (), output_dir: str | Path | None = None,
               **settings: Any) -> Results:
    """An experiment of conf/experiment/ (`dalvi2019_nlm`, `durrani2022_finetune`, a plugin's), as
    `python analyze.py experiment=<name> <settings>`."""
    return run([f"experiment={name}", *to_overrides(settings), *overrides], output_dir)


def load_results(path: str | Path) -> Results:
    """A finished run's `Results` from its folder (or its results.json)."""
    path = Path(path).expanduser()
    file = path / "results.json" if path.is_dir() else path
    try:
        results = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{file}: no results.json here (a run folder of analyze.py holds one)") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: not a readable results.json ({exc})") from exc
    if not isinstance(results, dict):
        raise ConfigError(f"{file}: expected a JSON object, got {type(results).__name__}")
    return Results(results, file.parent)
