"""The look every figure shares: one colour per model and the common layout."""
from __future__ import annotations

import plotly.graph_objects as go

MODEL_COLOURS = {"single": "#457b9d", "looped": "#d62828", "shift": "#7b2cbf"}
MARGIN = dict(l=50, r=20, t=50, b=40)


def layout(fig: go.Figure, title: str, x: str, y: str, height: int = 340) -> go.Figure:
    """Title, axis titles, height, margins, a legend under the plot and a unified x hover."""
    fig.update_layout(title=title, height=height, margin=MARGIN,
                      legend=dict(orientation="h", y=-0.25), hovermode="x unified", xaxis_title=x, yaxis_title=y)
    return fig
