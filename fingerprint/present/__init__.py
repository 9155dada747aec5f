"""Presentation, shared by the command line, the HTML report and the dashboard: explanatory texts, labels, tables,
figures (plotly), exports and the report.

The only part of ``fingerprint`` that imports plotly; never streamlit. ``texts``, ``labels``, ``formatting``,
``tables``, ``exports`` and ``terminal_text`` (what the command line prints) import no plotly, so the command line
can use them without it.
"""
