"""Figures without pyplot: a Figure object draws and saves on its own (no global state, no
backend to switch), which is what the aggregation stage and workers need."""
from __future__ import annotations


def subplots(nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] | None = None, **kwargs):
    """(figure, axes) like pyplot.subplots, on a standalone matplotlib Figure."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **kwargs)
