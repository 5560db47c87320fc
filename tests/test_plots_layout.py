"""Figure layouts that must stay readable in an 800 px window (sidebar open: a ~470 px chart)."""
import numpy as np
import plotly.graph_objects as go

from loopviz.plots import style, valley


def _progress_figure():
    k = np.arange(1001)
    progress = {"U": 1e-5 * k, "V": 0.05 * np.sqrt(k / 1000)}
    loss = {"U": 0.5 * 0.99 ** k - 1e-7 * k / 1000, "V": 0.4 * 0.9 ** k - 1e-6 * k / 1000}
    return valley.progress_loss_figure(progress, loss)


def test_the_progress_figure_keeps_its_legend_titles_and_ticks_apart():
    """QA at 800 px: the legend sat on the panel titles, the horizontal toolbar over the legend,
    and three 90 px panels side by side ran their tick labels ('−0.2µ') into each other."""
    fig = _progress_figure()
    layout = fig.layout
    # The legend at the figure's bottom edge (style.LEGEND), not above the panel titles.
    assert layout.legend.yref == "container" and layout.legend.y == 0
    assert layout.modebar.orientation == "v"
    assert layout.title.text
    axes = [name for name in layout.to_plotly_json() if name.startswith("xaxis")]
    domains = {name: (tuple(layout[name].domain), tuple(layout["yaxis" + name[5:]].domain)) for name in axes}
    # At most two panels side by side, each at least 40 % of the width, with room for tick labels between.
    for name, (x, y) in domains.items():
        beside = [other for other, (x2, y2) in domains.items()
                  if other != name and y2[0] < y[1] and y[0] < y2[1]]
        assert len(beside) <= 1, domains
        assert x[1] - x[0] >= 0.4, domains
        for other in beside:
            x2 = domains[other][0]
            gap = max(x2[0] - x[1], x[0] - x2[1])
            assert gap >= 0.12, domains
    # No SI prefixes on a loss (−0.2µ reads as a unit): d3's plain "~g" numbers (−2e−7).
    for name in layout.to_plotly_json():
        if name.startswith("yaxis"):
            assert layout[name].tickformat == "~g", name
    # Each panel's title sits above its own panel, inside the figure.
    titles = [a for a in layout.annotations if a.xref == "paper"]
    assert len(titles) == len(axes)
    for a in titles:
        assert any(x[0] <= a.x <= x[1] and a.y >= y[1] for x, y in domains.values()), a


def test_the_force_figure_names_its_log_ticks_in_full():
    """QA: the force charts labelled the 2× and 5× ticks by their digit alone ('1, 5, 2, 0.1'), so
    a '5' stood between 1 and 0.1. Every tick label now reads as the number it marks."""
    k = np.arange(1001)
    force = 0.002 + 0.0001 * np.sin(k)
    fig = valley.force_figure(force, force * 0.9, 0.2, title="U: force vs 𝒞", color="#1f77b4",
                              y_range=[-3.3, 0.7])
    axis = fig.layout.yaxis
    assert axis.tickvals is not None and len(axis.tickvals) == len(axis.ticktext)
    for value, text in zip(axis.tickvals, axis.ticktext):
        assert float(text.replace(",", "")) == value
        assert -3.3 <= np.log10(value) <= 0.7


MARKS = [   # every way the app calls add_vline / add_hline / add_vrect
    ("vline", (3,), dict(line=dict(color="#555", dash="dot"), annotation_text="switch at 3")),
    ("vline", (5,), dict(line=dict(color="#888", dash="dash", width=1), annotation_text="SCP",
                         annotation_position="top left")),
    ("vline", (0,), dict(line_dash="dot", line_color="grey")),
    ("vline", (0.5,), dict(line=dict(dash="dot", color="#7b2cbf"), annotation_text="τ",
                           annotation_position="bottom right", annotation_font=dict(size=10))),
    ("hline", (1.0986,), dict(line=dict(color="#999", dash="dash"), annotation_text="ln 3")),
    ("hline", (0,), dict(line=dict(color="#999", width=1))),
    ("hline", (2,), dict(line=dict(color="#888", dash="dot"), annotation_text="paper's 600",
                         annotation_position="bottom left")),
    ("vrect", (100, 150), dict(fillcolor="rgba(123,44,191,0.08)", line_width=0)),
    ("vrect", (10, 40), dict(fillcolor="#fde", line_width=0, layer="below", annotation_text="collapse",
                            annotation_position="top left")),
]


def test_the_fast_reference_lines_are_plotlys_own_shapes_and_annotations():
    """style.vline/hline/vrect skip Plotly's repeated validation, not its result: one after the
    other on one figure, shapes and annotations equal add_vline/add_hline/add_vrect's; on
    subplots they are Plotly's own calls."""
    from plotly.subplots import make_subplots

    def made(fast: bool, fig) -> dict:
        for kind, args, kwargs in MARKS:
            (getattr(style, kind)(fig, *args, **kwargs) if fast else getattr(fig, f"add_{kind}")(*args, **kwargs))
        return fig.layout.to_plotly_json()

    def plain():
        fig = go.Figure(go.Scatter(x=[0, 200], y=[0, 3]))
        fig.add_annotation(x=1, y=1, text="before")        # earlier annotations and shapes are kept
        return fig

    def grid():
        fig = make_subplots(rows=2, cols=1)
        fig.add_scatter(x=[0, 1], y=[0, 1], row=1, col=1)
        fig.add_scatter(x=[0, 1], y=[0, 1], row=2, col=1)
        return fig

    for figure in (plain, grid):
        fast, slow = made(True, figure()), made(False, figure())
        assert len(slow["shapes"]) >= len(MARKS) and len(slow["annotations"]) >= 6
        assert fast["shapes"] == slow["shapes"] and fast["annotations"] == slow["annotations"], figure.__name__
