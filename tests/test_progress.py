"""Progress lines: a study forced on (`progress=true`) prints a timed line at least every 10 s of its
work, `false` prints nothing (the extraction bar included), `auto` nothing when stderr is no terminal."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from neuroscope import progress
from neuroscope.analysis import analyze
from neuroscope.errors import ConfigError
from neuroscope.evaluation import study as study_module
from tests.test_entrypoints import compose_analyze, overrides, study  # noqa: F401  (fixture)

LINE = re.compile(r"^progress: .+ \d+/(\d+|\?)( \(.*\))? · elapsed \d+:\d\d:\d\d · left ~(\d+:\d\d:\d\d|\?)$")


@pytest.fixture(autouse=True)
def restore() -> Iterator[list[tuple[float, str]]]:
    """The module's mode and writer as they were; yields the lines a recording writer receives
    (time.monotonic() of each, and the line)."""
    lines: list[tuple[float, str]] = []
    old_mode, old_writer = progress.mode(), progress.set_writer(lambda s: lines.append((time.monotonic(), s)))
    yield lines
    progress.configure(old_mode)
    progress.set_writer(old_writer)


def _study(s: dict[str, Path], name: str, *extra: str) -> dict:
    """The default study (lca, λ search, 3 control draws, 3 seeds) on the tiny corpus and model."""
    return analyze(compose_analyze(overrides(s, s["root"] / name) + ["method=lca", "report=none", *extra]))


def test_forced_study_prints_a_line_at_least_every_10_seconds(study: dict[str, Path],  # noqa: F811
                                                              restore: list[tuple[float, str]],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "MIN_GAP", 0.0)  # every step's line (the tiny study takes well under 1 s)
    choose = study_module.evaluation_probe

    def slow(*args: object) -> object:  # one step of 11 s without a stage of its own (as a big probe fit)
        time.sleep(11.0)
        return choose(*args)

    monkeypatch.setattr(study_module, "evaluation_probe", slow)
    progress.configure("true")  # as analyze() does with progress=true
    t0 = time.monotonic()
    res = _study(study, "on", "progress=true")
    t1 = time.monotonic()
    assert t1 - t0 > 11.0
    assert "seed_spread" in res and "lambda_search" in res and res["control"]["draws"] == 3
    stamps = [t for t, _ in restore]
    text = [s for _, s in restore]
    assert len(text) >= 8, text
    assert all(LINE.match(s) for s in text), [s for s in text if not LINE.match(s)]
    for name in ("study", "λ search", "control draws", "top/random/bottom", "minimal subset", "layer probes",
                 "seeds", "top per k"):
        assert any(f" {name} " in s or s.startswith(f"progress: {name} ") for s in text), (name, text)
    assert re.search(r"study \d+/8", text[-1]) and text[-1].startswith("progress: study 8/8"), text[-1]
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    assert t0 <= stamps[0] and stamps[-1] <= t1 and max(gaps) <= 10.0, gaps
    assert sum("(ranking)" in s for s in text) >= 3, text  # the slow step's heartbeat lines (every 5 s)


def test_a_long_step_still_prints_heartbeat_lines(restore: list[tuple[float, str]],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "HEARTBEAT", 0.2)
    progress.configure("always")
    with progress.stage("outer", total=2) as outer:
        with progress.stage("slow fit", total=1) as step:
            time.sleep(1.0)  # one step without a line of its own
            step()
        outer()
        outer(note="last")
    text = [s for _, s in restore]
    beats = [s for s in text if "slow fit 0/1" in s]
    assert len(beats) >= 2, text
    assert beats[0].startswith("progress: outer 0/2 › slow fit 0/1 · elapsed ") and beats[0].endswith("left ~?")
    assert text[-1].startswith("progress: outer 2/2 (last) · elapsed 0:00:01 · left ~0:00:00"), text[-1]
    gaps = [b - a for (a, _), (b, _) in zip(restore, restore[1:], strict=False)]
    assert max(gaps) < 0.6, gaps


def test_false_prints_nothing_not_even_the_extraction_bar(study: dict[str, Path],  # noqa: F811
                                                          restore: list[tuple[float, str]],
                                                          capfd: pytest.CaptureFixture[str]) -> None:
    progress.configure(False)
    res = _study(study, "off", "progress=false", "store.progress=true", "evaluation.seeds=1",
                 "probe.selection.enabled=false")
    assert res["store"]["reused"] is False and "subsets" in res  # the store was built: the bar had its chance
    assert restore == []
    err = capfd.readouterr().err
    assert "progress:" not in err and "extract" not in err, err


def test_auto_is_quiet_when_stderr_is_not_a_terminal(restore: list[tuple[float, str]],
                                                     capfd: pytest.CaptureFixture[str]) -> None:
    progress.configure("auto")
    with progress.stage("outer", total=2) as step:
        step()
        with progress.stage("inner", total=1) as inner:
            inner()
        step()
    assert restore == []
    progress.set_writer(None)  # stderr itself (pytest's capture: not a terminal)
    with progress.stage("outer", total=1) as step:
        step()
    assert capfd.readouterr().err == ""


def test_bad_mode_names_the_key() -> None:
    assert progress.normalize(True) == "true" and progress.normalize("Always") == "true"
    assert progress.normalize("off") == "false" and progress.normalize(None) == "auto"
    with pytest.raises(ConfigError, match=r"^progress: expected auto .* got 'sometimes'"):
        progress.configure("sometimes")
    assert progress.mode() in progress.MODES
