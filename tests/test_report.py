"""wrec.report: one page of every run in a folder, checked by parsing it and by opening it in headless Chromium."""

from __future__ import annotations

import base64
import io
import shutil
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from wrec import plotting, report, runconfig

TARGETS = {  # run folder -> held column of its targets.csv
    "ipc-profile": [True, True, False],
    "readout-scaling": [True, False, False, True],
}


def _figure(path: Path, slope: float) -> None:
    with plotting.figure(path, figsize=(3.0, 2.2)) as fig:
        ax = fig.subplots()
        ax.plot(np.arange(10), slope * np.arange(10), label="line")
        ax.set_xlabel("x")
        ax.legend()


def _run_folder(root: Path, name: str, *, record: bool) -> Path:
    """A run folder as `wrec run` leaves it, with small synthetic tables and figures."""
    folder = root / name
    (folder / "results").mkdir(parents=True)
    held = TARGETS[name]
    pd.DataFrame({"target": [f"claim {i} <b>" for i in range(len(held))], "measured": np.linspace(0, 1, len(held)),
                  "tolerance": "≤ 5 %", "held": held}).to_csv(folder / "targets.csv", index=False)
    pd.DataFrame({"kind": ["esn", "linear"], "capacity": [12.5, 33.25]}).to_csv(folder / "table.csv", index=False)
    pd.DataFrame({"ci_low": [0.1], "ci_high": [0.3]}).to_csv(folder / "delta_rec.csv", index=False)
    with plotting.save_formats(("png", "pdf")):  # the page links the vector files beside the PNGs
        _figure(folder / f"{name}.png", 1.0)
    _figure(folder / f"{name}-degrees.png", 2.0)
    if record:
        config = {"sizes": [100], "replicates": 1, "seed": 0}
        text = runconfig.dumps({"experiment": name, "command": ["wrec", "run", name, "--quick"],
                                "started": "2026-01-02T03:04:05Z", "finished": "2026-01-02T03:05:05Z",
                                "seconds": 60.0, "tasks": 3, "tasks_computed": 3, "tasks_reused": 0,
                                "versions": runconfig.versions(), "config": config})
        (folder / "run.toml").write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    _run_folder(root, "ipc-profile", record=True)
    _run_folder(root, "readout-scaling", record=False)  # an older run: no run.toml
    (root / "not-a-run").mkdir()
    return root


class _Page(HTMLParser):
    """The runs (sections), images and index cells of a report page."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: list[tuple[str, str]] = []  # (section's experiment, src)
        self.held: list[tuple[int, int]] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a["data-experiment"] or "")
        elif tag == "img":
            self.images.append((self.sections[-1], a["src"] or ""))
        elif tag == "td" and "data-held" in a:
            self.held.append((int(a["data-held"] or 0), int(a["data-total"] or 0)))
        for key in ("src", "href"):
            if tag in ("img", "script", "link") and a.get(key) and not str(a[key]).startswith("data:"):
                self.external.append(str(a[key]))


def test_page_has_every_run_every_figure_and_the_target_counts(runs: Path, tmp_path: Path) -> None:
    html, markdown = report.write(runs)
    assert (html, markdown) == (runs / "report.html", runs / "report.md")
    page = _Page()
    page.feed(html.read_text(encoding="utf-8"))
    assert page.sections == ["ipc-profile", "readout-scaling"]
    assert not page.external  # nothing fetched: the page opens from a file, offline
    for name in TARGETS:
        pngs = sorted(p.name for p in (runs / name).glob("*.png"))
        srcs = [src for experiment, src in page.images if experiment == name]
        assert len(srcs) == len(pngs) == 2
        for src in srcs:
            assert src.startswith("data:image/png;base64,")
            image = matplotlib.image.imread(io.BytesIO(base64.b64decode(src.split(",", 1)[1])), format="png")
            assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    expected = [(int(pd.read_csv(runs / n / "targets.csv").held.sum()), len(TARGETS[n])) for n in TARGETS]
    assert page.held == expected == [(2, 3), (2, 4)]
    text = html.read_text(encoding="utf-8")
    assert "claim 0 &lt;b&gt;" in text and "<b>" not in text  # table cells are escaped
    assert "✓ held" in text and "✗ not held" in text and "60.0 s" in text and "sizes = [100]" in text
    assert "No run.toml" in text  # the older run says what it lacks
    assert '<a href="ipc-profile/ipc-profile.pdf">pdf</a>' in text


def test_markdown_version_links_the_figures_and_counts_targets(runs: Path) -> None:
    _, markdown = report.write(runs, runs / "out" / "page.html")
    text = markdown.read_text(encoding="utf-8")
    assert markdown == runs / "out" / "page.md"
    assert "| [ipc-profile](#run-1) | ipc-profile | 3 tasks (quick) | 2 / 3 |" in text
    assert "| 2 / 4 |" in text
    for link in [line.split("](", 1)[1].rstrip(")") for line in text.splitlines() if line.startswith("![")]:
        assert (markdown.parent / link).is_file()
    assert text.count("![") == 4 and "| claim 1 <b> | 0.5 | ≤ 5 % | ✓ held |" in text
    assert "```toml\nsizes = [100]\nreplicates = 1\nseed = 0\n```" in text  # a config to pass back


def test_one_run_folder_and_bad_folders(runs: Path, tmp_path: Path) -> None:
    html, _ = report.write(runs / "ipc-profile", tmp_path / "one.html")
    page = _Page()
    page.feed(html.read_text(encoding="utf-8"))
    assert page.sections == ["ipc-profile"]
    with pytest.raises(ValueError, match="holds no run folder"):
        report.write(runs / "not-a-run")
    with pytest.raises(ValueError, match="not a folder"):
        report.write(tmp_path / "missing")


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def test_page_opens_in_headless_chromium(runs: Path, tmp_path: Path) -> None:
    """Every image decodes in a real browser and nothing is logged to the console (Debian: apt install chromium;
    pip install playwright, with no browser download: the system Chromium is used)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no Chromium installed (Debian: apt install chromium)")
    html, _ = report.write(runs)
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: errors.append(f"failed: {r.url}"))
            page.goto(html.resolve().as_uri(), wait_until="load")
            sizes = page.eval_on_selector_all("img", "imgs => imgs.map(i => [i.complete, i.naturalWidth])")
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert len(sizes) == 4 and all(done and width > 0 for done, width in sizes)
    assert not errors
    assert (tmp_path / "report.png").stat().st_size > 10_000
