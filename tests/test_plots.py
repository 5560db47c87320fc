"""Figure builders: reference-line labels sit at their lines on log axes, and do not overlap."""
import numpy as np

from loopviz import curvature
from loopviz.config import RunConfig
from loopviz.plots import training, valley
from loopviz.runs.format import read_run
from loopviz.runs.store import RunStore


def annotation(fig, start: str):
    return next(a for a in fig.layout.annotations if a.text.startswith(start))


def bundled(model: str):
    return read_run(RunStore().bundled[RunConfig(model=model).key()])


def test_log_axis_labels_stand_at_their_lines():
    # Plotly puts annotations on a log axis at log10 units: a label given the value 0.5 lands near 3.
    run = bundled("looped")
    fig = training.eigenspectrum_figure(run, 150, eps=1e-3, tau=0.5)
    assert np.isclose(annotation(fig, "river ε").x, -3) and np.isclose(annotation(fig, "τ").x, np.log10(0.5))
    assert {s.x0 for s in fig.layout.shapes} == {1e-3, 0.5}  # the lines themselves take values
    assert "at epoch 150" in fig.layout.title.text
    kappa = training.kappa_figure({"Looped-Attn": run}, delta=1.0)
    assert np.isclose(annotation(kappa, "U if κ").y, np.log10(2))


def test_valley_spectrum_labels_each_line_and_names_the_bar_colours():
    fig = valley.valley_spectrum_figure(np.geomspace(1.0, 0.01, 20), tau=0.5, eta=1.8, title="V")
    lines = {round(s.y0, 6) for s in fig.layout.shapes}
    assert lines == {0.5, round(1 / 1.8, 6), round(2 / 1.8, 6)}
    labels = {a.text: a.y for a in fig.layout.annotations}
    assert set(labels) == {"τ (Assumption 1)", "1/η: hopping above", "2/η: diverges above"}
    assert all(a.x > 1 for a in fig.layout.annotations)  # in the margin, never over the bars
    heights = sorted(labels.values())
    span = fig.layout.yaxis.range[1] - fig.layout.yaxis.range[0]
    assert min(np.diff(heights)) >= 0.09 * span - 1e-9  # τ = 0.5 and 1/η = 0.56 are close: labels kept apart
    assert labels["τ (Assumption 1)"] == np.log10(0.5)
    assert fig.layout.showlegend and {t.name for t in fig.data} >= {"ηλ ≤ 1: settles", "1 < ηλ < 2: hops"}


def test_label_positions_keep_order_and_gap():
    placed = valley.label_positions(np.array([0.0, 0.01, -1.0, 0.02]), gap=0.1)
    assert placed[2] == -1.0 and placed[0] == 0.0
    assert np.allclose(sorted(placed)[1:], [0.0, 0.1, 0.2])


def test_axis_titles_survive_the_shared_layout():
    import pandas as pd

    from loopviz.plots import shift as shift_plots
    sweep = pd.read_csv(RunStore().bundled[RunConfig(model="single").key()].parent.parent / "sweep_shift.csv")
    fig = shift_plots.sweep_shift_figure(sweep, 261, 150)
    assert fig.layout.yaxis.title.text == "speed-up (× pure Looped)"
    table = {"epoch": np.arange(3)} | {f"{k}_{n}": np.ones(3) for k in ("offdiag_ratio", "negative_diag")
                                       for n in "KQV"}
    assert shift_plots.assumption4_figure(table).layout.yaxis.title.text == "‖ε‖₂ / ‖D‖"


def test_bayes_ceilings_are_named_in_the_legend_not_over_the_curves():
    run = bundled("single")
    fig = training.bucket_accuracy_figure(run, "t", {"high": 0.55, "all": 0.66, "low": 0.9})
    names = [t.name for t in fig.data]
    assert "Bayes high 0.55" in names and "Bayes all 0.66" in names and not any("low 0.90" in n for n in names)
    assert not fig.layout.annotations


def test_shift_sweep_labels_do_not_collide_and_gaps_are_points():
    """QA: the band's "paper's SCP range" label ran into "SCP 232" (both at the top, 80 px apart);
    the accuracy gap read "−6%" for 6.8 percentage points."""
    import pandas as pd

    from loopviz.plots import shift as shift_plots
    sweep = pd.read_csv(RunStore().bundled[RunConfig(model="single").key()].parent.parent / "sweep_shift.csv")
    fig = shift_plots.sweep_shift_figure(sweep, 232, 232)
    texts = [a.text for a in fig.layout.annotations]
    assert not any("paper's SCP range" in t for t in texts)
    assert any(t.name and "paper's SCP range" in t.name for t in fig.data)
    at_top = [a.text for a in fig.layout.annotations if "top" in (a.yanchor or "") or a.y == 1]
    assert len(at_top) <= 1, at_top
    gaps = next(t for t in fig.data if t.name == "final accuracy − pure Looped")
    assert np.allclose(gaps.y, 100 * sweep["gap_acc_all"])
    assert "%" not in (fig.layout.yaxis2.tickformat or "") and "points" in fig.layout.yaxis2.title.text
    assert fig.layout.yaxis2.dtick == 5  # round steps, not −19, −13, −6


def test_path_animation_slider_starts_after_its_buttons_at_any_width():
    """QA: the slider began at 0.22 of the plot's width; in presenter mode at 1280 px (a ~410 px
    panel) the ▶/❚❚ buttons (~105 px) covered its start and its "step k = 0" label. The offset
    is now in pixels, so no width can make them meet."""
    k = np.arange(30.0)
    grid = np.linspace(0, 1, 5)
    fig = valley.path_figure(k / 30, (-0.5) ** k, grid, np.zeros((3, 5)), np.ones((3, 5)), title="t", color="#000",
                             x_range=[0, 1], y_range=[-1, 1])
    slider, buttons = fig.layout.sliders[0], fig.layout.updatemenus[0]
    assert slider.x == buttons.x == 0 and slider.len == 1
    labels = sum(len(b.label) for b in buttons.buttons) + 2  # characters at 12 px ≈ 7 px each, 2 buttons' padding
    assert slider.pad.l >= 7 * labels + 2 * 20


def test_log_axes_spanning_few_decades_name_every_tick_in_full():
    """QA: Plotly labels the 2× and 5× ticks of a log axis over 2–3 decades by their digit only,
    so Adam's sharpness axis read "5, 2, 10k, 5, 2, 1000" and the V valley's "1, 5, 2, 0.1"; a
    tick format alone labels all nine ticks a decade, which piled up ("0.9 0.8 0.7 0.6")."""
    from loopviz.plots import landscape
    from loopviz.plots.style import log_ticks
    fig = landscape.sharpness_figure({"Looped-Attn": ("looped", np.arange(3), np.array([60.0, 5e3, 5e4]))},
                                     38000.0, "38/η", "t", "λ")
    assert list(fig.layout.yaxis.tickvals) == [100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000]
    assert list(fig.layout.yaxis.ticktext)[-1] == "50,000"
    spectrum = valley.valley_spectrum_figure(np.geomspace(1.0, 0.01, 20), tau=0.5, eta=1.8, title="V")
    assert list(spectrum.layout.yaxis.ticktext) == ["0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1"]
    # Over more decades, one tick a decade; under one decade, Plotly's own (full) labels.
    assert log_ticks(-8, 0)["tickvals"] == [10.0 ** e for e in range(-8, 1)]
    assert log_ticks(np.log10(0.4), np.log10(1.4)) == {}
    diverging = valley.valley_spectrum_figure(np.array([5.0, 4.0]), tau=0.5, eta=1.8, title="V")
    assert len(diverging.layout.yaxis.tickvals) <= 4  # 0.5, 1, 2, 5: not every tenth


def test_eigenspectrum_negatives_stand_on_their_own_bins_positives():
    """QA: with barmode="stack" on a log axis Plotly stacked the bars of different tiny-|λ| bins
    on one another (a bar at 1.5e-7 floated at 15–16 above the 1e-8 bin's 15)."""
    run = bundled("single")
    fig = training.eigenspectrum_figure(run, 0, eps=1e-3, tau=0.5)
    pos = next(t for t in fig.data if t.name == "λ > 0")
    neg = next(t for t in fig.data if t.name.startswith("λ ≤ 0"))
    assert fig.layout.barmode != "stack"
    assert np.array_equal(np.asarray(neg.base), np.asarray(pos.y))
    counts = np.asarray(pos.y) + np.asarray(neg.y)
    assert counts.sum() == run.eigenvalues.shape[1]


def test_algo_curvature_axis_names_its_ticks_in_full():
    """QA: the Algorithmic tasks page's eigenvalue axis (0.1 … 300) read "5 2 100 5 2 10 5 2 1"."""
    from loopviz.plots import algo
    top = np.array([[300.0, 20.0], [5.0, 0.1]])
    fig = algo.curvature_figure({"single": (np.array([0, 1000]), top)}, None)
    assert list(fig.layout.yaxis.ticktext) == ["0.1", "1", "10", "100"]


def test_bottom_legends_reserve_their_rows_below_the_axis_title():
    """QA (800 px window, sidebar open): a legend 0.25 of the plot's height below it is
    anchored by its bottom, so on a narrow chart its wrapped rows grew upward onto the x-axis
    title. Every bottom legend is pinned to the figure's bottom edge (container pixels), where
    Plotly reserves its height whatever the number of rows, and the x-axis title pushes the
    margin itself; no figure keeps a legend at a negative paper position."""
    import pathlib
    import re

    from loopviz.plots import length, style

    run = bundled("looped")
    figures = [training.loss_figure({"Looped-Attn": run}), training.kappa_figure({"Looped-Attn": run}, delta=1.0),
               valley.valley_spectrum_figure(np.geomspace(1.0, 0.01, 20), tau=0.5, eta=1.8, title="V"),
               valley.force_figure(*[np.array([0.0, 1.0, 0.5, 0.2])] * 2, 1.0, title="F", color="red", y_range=None),
               length.ic_distribution_figure({8: np.array([1.0, 2.0, 3.0])}, np.array([1.0, 1.5]), 2.0)]
    for fig in figures:
        legend = fig.layout.legend
        assert (legend.yref, legend.y, legend.yanchor) == ("container", 0, "bottom"), fig.layout.title.text
        assert fig.layout.xaxis.automargin is True and fig.layout.margin.b == 0, fig.layout.title.text
    assert style.LEGEND["yref"] == "container"
    plots = pathlib.Path(style.__file__).parent
    stale = [p.name for p in plots.glob("*.py") if re.search(r"legend=dict\([^)]*\by=-", p.read_text())]
    assert not stale, stale


def test_chart_rows_wrap_before_their_charts_get_too_narrow():
    """QA: Streamlit stacks columns only below a 640 px viewport, so at 800 px with the sidebar
    open paired charts shrank to ~200 px. Rows of columns holding a chart wrap (flexbox) when a
    column would be narrower than a readable chart; in presenter mode, with projector fonts, sooner."""
    from loopviz.ui import present

    plain, projector = present.base_css(False), present.base_css(True)
    assert 'data-stale="true"' in plain  # the no-fading rule stays
    rule = '[data-testid="stHorizontalBlock"]:has([data-testid="stPlotlyChart"])'
    assert f"{rule} {{ flex-wrap: wrap; }}" in plain
    assert f'{rule} > [data-testid="stColumn"] {{ min-width: min(100%, {present.MIN_CHART_PX}px); }}' in plain
    assert f"min(100%, {present.MIN_CHART_PX_PRESENT}px)" in projector
    assert 300 <= present.MIN_CHART_PX < present.MIN_CHART_PX_PRESENT


def test_a_long_title_is_broken_into_two_balanced_lines():
    """Plotly never wraps a title: the atlas map's (~90 characters) was cut at 468 px."""
    from loopviz.plots.style import two_lines

    title = "Share of seeds in which Looped-Attn is higher in final high-IC training accuracy (by > 1 point)"
    first, second = two_lines(title).split("<br>")
    assert f"{first} {second}" == title and abs(len(first) - len(second)) <= 12
    assert two_lines("single") == "single"


def test_the_eigenspectrum_scale_is_the_runs_tallest_bar_and_holds_through_the_epochs():
    """▶ play: the count axis stays at the run's largest bin (a plain loop over every epoch's
    bars finds the same), so frames and the two panels compare at one scale."""
    run = bundled("looped")
    c = run.config
    edges = curvature.log_bin_edges(c.entropy_bins, c.entropy_min, c.entropy_max)
    tallest = 0
    for eigenvalues in run.eigenvalues:   # numpy's own histogram of |λ|, clipped into the end bins as drawn
        counts, _ = np.histogram(np.clip(np.abs(eigenvalues), edges[0], edges[-2]), bins=edges)
        tallest = max(tallest, int(counts.max()))
    assert training.largest_bin(run) == tallest
    fig = training.eigenspectrum_figure(run, 300, eps=1e-3, tau=0.5)
    assert (np.asarray(fig.data[0].y) + np.asarray(fig.data[1].y)).max() <= tallest
    ranges = {tuple(training.eigenspectrum_figure(run, e, 1e-3, 0.5, y_max=tallest).layout.yaxis.range)
              for e in (0, 300, 1500)}
    assert ranges == {(0, 1.05 * tallest)}
    assert training.eigenspectrum_figure(run, 300, 1e-3, 0.5).layout.yaxis.range is None   # Plotly's own fit
