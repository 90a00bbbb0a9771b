"""Every experiment's figures, rendered from a small run: no two text elements (titles, axis labels, tick labels,
legend texts) overlap, and no legend covers plotted data (matplotlib's renderer extents, in display pixels).
Also the shared style's extra formats (``plotting.save_formats``)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import matplotlib.figure
import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from wrec import plotting, sweep
from wrec.experiments import EXPERIMENTS

#: experiment -> its small Config (seconds to run); ``slow`` where it takes more than a few seconds
SMALL: dict[str, tuple[Callable[[Any], Any], bool]] = {
    "readout-scaling": (lambda m: m.Config(
        kinds=("esn", "leaky_esn", "linear", "rate", "sign_esn"), sizes=(60,), gains=(0.9,), input_scales=(0.5,),
        replicates=2, length=3000, washout=200, max_delay=((1, 60), (2, 5), (3, 4)), surrogates=20, n_readouts=8),
        False),
    "ipc-profile": (lambda m: m.Config(spectral_radii=(0.5, 0.9, 1.2), length=4000, washout=500,
                                       max_delay=((1, 40), (2, 6), (3, 6)), surrogates=20), False),
    "spike-coding-lds": (lambda m: m.Config(train_time=0.4, eval_times=(0.2, 0.4), checkpoint_every=0.1,
                                            replicates=1, test_time=0.3, test_discard=0.1), False),
    "spike-coding-convex": (lambda m: m.Config(epochs=2, replicates=1, readout_points=11), False),
    "stablessm-curse-of-memory": (lambda m: m.Config.smoke(memories=("exp", "pol"), reparams=("direct", "best")),
                                  False),
    "stablessm-lr-sweep": (lambda m: m.Config.smoke(), False),
    "sligru-gain-sweep": (lambda m: m.Config(gains=(0.5, 1.0, 8.0), hidden_size=16, batch=2, length=200,
                                             replicates=2), True),
    "sligru-adding": (lambda m: m.Config(lengths=(20,), lrs=(1e-2, 1e30), hidden_size=8, batch=8, steps=4,
                                         replicates=1, test_size=50), True),
    "cfc-closed-loop": (lambda m: m.Config.smoke(), True),
    "snn-locality": (lambda m: m.Config.smoke(), True),
    "spike-coding-autoencoder": (lambda m: m.Config.quick(
        n_steps=3_000, checkpoints=(0, 3_000), replicates=2, decoder_steps=3_000, test_trials=2, test_steps=1_000,
        isi_trials=3, isi_steps=500, ei_steps=1_000), True),
    "capacity-atlas": (lambda m: m.Config.quick(size=16, length=3000, washout=200, replicates=1,
                                                max_delay=((1, 20), (2, 5), (3, 3)), n_readouts=4, surrogates=10),
                       True),
}
NEEDS = {"cfc-closed-loop": ("torch", "gymnasium"), "snn-locality": ("torch", "sklearn"),
         "stablessm-curse-of-memory": ("torch",), "stablessm-lr-sweep": ("torch",), "sligru-gain-sweep": ("torch",),
         "sligru-adding": ("torch",), "capacity-atlas": ("torch",)}


def test_every_experiment_has_a_small_config() -> None:
    assert set(SMALL) == set(EXPERIMENTS)


# ---- what is drawn, in display pixels ----

def _texts(fig: matplotlib.figure.Figure) -> list[Text]:
    """Every visible, non-empty text: titles, axis labels, tick labels drawn, offset texts, annotations, legends."""
    found: list[Text] = [*fig.texts]
    if fig._suptitle is not None:
        found.append(fig._suptitle)
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        found += [ax.title, ax._left_title, ax._right_title, *ax.texts]
        for axis in (ax.xaxis, ax.yaxis):
            found += [axis.label, axis.offsetText]
            for tick in axis._update_ticks():  # the ticks drawn (inside the view limits)
                found += [t for t in (tick.label1, tick.label2) if t.get_visible()]
    for legend in _legends(fig):
        found += [*legend.get_texts(), legend.get_title()]
    unique = {id(t): t for t in found}  # the suptitle is also one of fig.texts
    return [t for t in unique.values() if t.get_visible() and t.get_text().strip()]


def _legends(fig: matplotlib.figure.Figure) -> list[Legend]:
    axes_legends = [ax.get_legend() for ax in fig.axes if ax.get_visible()]
    return [lg for lg in [*axes_legends, *fig.legends] if lg is not None and lg.get_visible()]


def _line_points(line: Line2D, ax: Axes) -> np.ndarray:
    """The line's points and, where it is drawn, points every ~2 px along its segments, in display coordinates."""
    xy = line.get_transform().transform(np.asarray(line.get_xydata(), dtype=float))  # (P, 2)
    xy = xy[np.isfinite(xy).all(axis=1)]
    if line.get_linestyle() in ("None", "none", "", " ") or len(xy) < 2:
        return xy
    steps = np.maximum(1, (np.hypot(*np.diff(xy, axis=0).T) / 2).astype(int))
    dense = [np.linspace(a, b, s, endpoint=False) for a, b, s in zip(xy[:-1], xy[1:], steps, strict=True)]
    return np.concatenate([*dense, xy[-1:]])


def _data(ax: Axes) -> Iterator[np.ndarray | Bbox]:
    """Plotted data of ``ax``: arrays of display points (lines, scatter offsets) and boxes (bars, images).
    Reference lines spanning the axes (axhline/axvline, not in data coordinates) are not data."""
    for line in ax.get_lines():
        if line.get_visible() and line.get_transform().contains_branch(ax.transData):
            yield _line_points(line, ax)
    for coll in ax.collections:
        if isinstance(coll, PathCollection) and coll.get_visible() and len(coll.get_offsets()):
            yield coll.get_offset_transform().transform(np.asarray(coll.get_offsets(), dtype=float))
    for patch in ax.patches:
        if isinstance(patch, Rectangle) and patch.get_visible() and patch.get_height() and patch.get_width():
            yield patch.get_window_extent()
    for image in ax.images:
        yield image.get_window_extent()


def _inside(points: np.ndarray | Bbox, box: Bbox, clip: Bbox) -> bool:
    if isinstance(points, Bbox):
        part = Bbox.intersection(points, clip)
        return part is not None and part.overlaps(box) and Bbox.intersection(part, box) is not None and \
            Bbox.intersection(part, box).width * Bbox.intersection(part, box).height > 4  # type: ignore[union-attr]
    inside_clip = (points[:, 0] >= clip.x0) & (points[:, 0] <= clip.x1) & (points[:, 1] >= clip.y0) & \
        (points[:, 1] <= clip.y1)
    p = points[inside_clip]
    return bool(((p[:, 0] > box.x0) & (p[:, 0] < box.x1) & (p[:, 1] > box.y0) & (p[:, 1] < box.y1)).any())


def _corners(text: Text, renderer: Any) -> np.ndarray:
    """The four corners (4, 2) of the text's box as drawn, rotated with the text (display pixels), trimmed of
    the glyphs' padding (1 % of the width, 8 % of the height each side) so that touching boxes do not count.
    The box is the one matplotlib draws behind a text given ``bbox=``."""
    text.set_bbox({"boxstyle": "square,pad=0", "alpha": 0})
    text.update_bbox_position_size(renderer)
    patch = text.get_bbox_patch()
    assert patch is not None
    c = patch.get_transform().transform(patch.get_path().vertices[:4])  # (4, 2): origin, along w, w + h, along h
    text.set_bbox(None)
    width, height = c[1] - c[0], c[3] - c[0]
    return c + np.array([[0.01, 0.08], [-0.01, 0.08], [-0.01, -0.08], [0.01, -0.08]]) @ np.stack([width, height])


def _overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two convex quadrilaterals (4, 2) overlap: no edge normal separates them."""
    for poly in (a, b):
        edges = np.roll(poly, -1, axis=0) - poly
        for normal in np.column_stack([-edges[:, 1], edges[:, 0]]):
            pa, pb = a @ normal, b @ normal
            if pa.max() <= pb.min() or pb.max() <= pa.min():
                return False
    return True


def _problems(fig: matplotlib.figure.Figure) -> list[str]:
    """Overlapping texts and legends over data in one figure, as readable lines."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    out = []
    boxes = [(t, _corners(t, renderer)) for t in _texts(fig)]
    for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
        if _overlap(box_a, box_b):
            out.append(f"text {a.get_text()!r} overlaps text {b.get_text()!r}")
    for legend in _legends(fig):
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            if ax.get_visible() and any(_inside(d, box, ax.bbox) for d in _data(ax)):
                out.append(f"legend {[t.get_text() for t in legend.get_texts()][:3]}… covers data of axes "
                           f"{ax.get_title() or ax.get_ylabel()!r}")
    return out


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, matplotlib.figure.Figure]]:
    """Every figure saved while the test runs (path name, figure)."""
    figures: list[tuple[str, matplotlib.figure.Figure]] = []
    save = matplotlib.figure.Figure.savefig

    def record(self: matplotlib.figure.Figure, fname: Any, *args: Any, **kwargs: Any) -> None:
        save(self, fname, *args, **kwargs)
        figures.append((Path(fname).name, self))

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", record)
    return figures


def _params() -> list[Any]:
    return [pytest.param(name, marks=[pytest.mark.slow] if slow else [], id=name)
            for name, (_, slow) in SMALL.items()]


@pytest.mark.parametrize("name", _params())
def test_figures_have_no_overlapping_text_and_no_legend_over_data(name: str, tmp_path: Path,
                                                                  drawn: list[Any]) -> None:
    for module in NEEDS.get(name, ()):
        pytest.importorskip(module)
    experiment = EXPERIMENTS[name]
    results = sweep.run(experiment.evaluate, SMALL[name][0](experiment).tasks())
    paths = experiment.plot(results, tmp_path / f"{name}.png")
    assert [p.name for p in paths] == [n for n, _ in drawn] and paths
    problems = [f"{file}: {p}" for file, fig in drawn for p in _problems(fig)]
    assert not problems, "\n".join(problems)


# ---- the checker itself, on figures built to fail ----

def test_checker_finds_overlapping_labels_and_a_legend_over_data(tmp_path: Path) -> None:
    fig = matplotlib.figure.Figure(figsize=(2, 2))
    ax = fig.subplots()
    ax.plot(np.linspace(0, 1, 50), np.linspace(0, 1, 50), label="diagonal")
    ax.legend(loc="center")
    ax.set_xticks(np.linspace(0, 1, 30))  # 30 tick labels on 2 inches
    problems = _problems(fig)
    assert any("legend" in p for p in problems) and any("overlaps text" in p for p in problems)
    clean = matplotlib.figure.Figure(figsize=(3, 2))
    ax = clean.subplots()
    ax.plot([0, 1], [0, 1], label="diagonal")
    ax.legend(loc="upper left")
    assert _problems(clean) == []


def test_save_formats_writes_every_format(tmp_path: Path) -> None:
    with plotting.save_formats(("png", "pdf", "svg")):
        assert plotting.formats() == ("png", "pdf", "svg")
        with plotting.figure(tmp_path / "a.png") as fig:
            fig.subplots().plot([0, 1])
    assert plotting.formats() == ("png",)
    assert (tmp_path / "a.pdf").read_bytes().startswith(b"%PDF")
    assert b"<svg" in (tmp_path / "a.svg").read_bytes()[:1000]
    with plotting.figure(tmp_path / "b.png") as fig:
        fig.subplots().plot([0, 1])
    assert not (tmp_path / "b.pdf").exists()
    with pytest.raises(ValueError, match="formats"), plotting.save_formats(("png", "docx")):
        pass


def test_style_is_constrained_colour_blind_safe_and_column_sized(tmp_path: Path) -> None:
    with plotting.figure(tmp_path / "c.png", figsize=(plotting.COLUMN, 2.4)) as fig:
        colors = [c["color"] for c in plotting.STYLE["axes.prop_cycle"]]
        assert colors[:len(plotting.OKABE_ITO)] == list(plotting.OKABE_ITO)
        fig.subplots()
    assert fig.get_layout_engine().__class__.__name__ == "ConstrainedLayoutEngine"
    assert plotting.COLUMN == pytest.approx(3.5) and plotting.PAGE == pytest.approx(7.2)
