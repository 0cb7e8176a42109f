"""report.html of a tiny study in a real browser (headless chromium): it loads, every section and
figure is in the DOM, every embedded PNG decodes and the console stays silent. Skipped when no
chromium binary is on PATH (Debian: `apt-get install chromium`)."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.fixture_corpus import distinct_conllu

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")
# After load, each <img> must have decoded (naturalWidth > 0); the probe then logs one line.
PROBE = ('<script>window.addEventListener("load", () => {const imgs = [...document.images];'
         'imgs.filter(i => !i.naturalWidth).forEach(i => console.error("broken image: " + i.alt));'
         'console.log("neuroscope-check: " + imgs.length + " images loaded");});</script>')
CONSOLE = re.compile(r':CONSOLE[:(]\d+\)?\]? "(.*)", source: ')


def browser() -> str:
    found = next((b for b in map(shutil.which, BROWSERS) if b), None)
    if found is None:
        pytest.skip(f"no chromium on PATH (looked for {', '.join(BROWSERS)}); apt-get install chromium")
    return found


def load(page: Path, profile: Path) -> tuple[str, list[str]]:
    """The DOM chromium builds from `page` and every console message it logged (errors, uncaught
    exceptions and logs alike: chromium logs them all as CONSOLE lines on stderr)."""
    proc = subprocess.run([browser(), "--headless", "--disable-gpu", "--no-sandbox", "--enable-logging=stderr",
                           "--v=0", f"--user-data-dir={profile}", "--virtual-time-budget=5000", "--dump-dom",
                           page.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    messages = [m.group(1) for line in proc.stderr.splitlines() if (m := CONSOLE.search(line))]
    messages += [line for line in proc.stderr.splitlines() if "Uncaught" in line and not CONSOLE.search(line)]
    return proc.stdout, messages


class Dom(HTMLParser):
    """Headings (h1-h3 text) and <img> alts of a dumped DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[str] = []
        self.images: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("h1", "h2", "h3"):
            self._in = tag
            self.headings.append("")
        elif tag == "img":
            self.images.append(dict(attrs).get("alt") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in:
            self.headings[-1] += data


def test_the_console_check_catches_errors_and_broken_images(tmp_path: Path) -> None:
    """The check below is not vacuous: an uncaught error, a console.error and an undecodable PNG are seen."""
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><body><img alt="x" src="data:image/png;base64,AAAA">'
                    '<script>console.error("boom"); notAFunction();</script>' + PROBE + "</body></html>")
    _, messages = load(page, tmp_path / "profile")
    assert "boom" in messages and any("Uncaught ReferenceError" in m for m in messages)
    assert "broken image: x" in messages and "neuroscope-check: 1 images loaded" in messages


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path) -> Path:
    """report.html of a real tiny study (tiny BERT, LCA, λ search, control task) with profiled neurons."""
    from neuroscope.analysis import analyze
    from tests.test_entrypoints import compose_analyze

    root = tmp_path_factory.mktemp("browser")
    corpus, out = distinct_conllu(root / "tiny.conllu", n=40), root / "run"
    analyze(compose_analyze([
        "model=transformer", f"model.path={tiny_bert}", f"task.file={corpus}", "logger=none", "store.progress=false",
        f"store.root={root / 'stores'}", f"output_dir={out}", "evaluation.percents=[5,10,50]", "probe.epochs=2",
        "probe.selection.grid=[1e-5,1e-3]", "evaluation.seeds=1", "evaluation.random_draws=2",
        "evaluation.control_draws=1", "report.top_neurons=3", "report.summary=false",
    ]))
    return out / "report.html"


def test_report_html_loads_in_chromium_without_console_errors(tiny_report: Path, tmp_path: Path) -> None:
    browser()
    dom, messages = load(tiny_report, tmp_path / "profile")
    assert messages == [], messages  # the report has no script: the console must stay empty
    page = Dom()
    page.feed(dom)
    assert page.headings[0].startswith("neuroscope: transformer · upos · lca")
    assert {"subsets", "layers", "classes", "lambda_search"} <= set(page.images)
    assert any(h.startswith("What the top 3 neurons respond to") for h in page.headings)
    assert sum(1 for h in page.headings if re.fullmatch(r"\w+:\d+", h)) == 3  # one heading per profiled neuron
    assert "serves" in dom or "in no class's top set" in dom  # each neuron names its classes
    checked = tmp_path / "checked.html"  # the same page with a probe that every embedded PNG decoded
    checked.write_text(tiny_report.read_text().replace("</body>", PROBE + "</body>"))
    _, messages = load(checked, tmp_path / "profile2")
    assert messages == [f"neuroscope-check: {len(page.images)} images loaded"], messages
