"""Plotly figure builders: data in, figure out, no side effects."""
