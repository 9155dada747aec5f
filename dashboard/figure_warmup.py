"""Imported by app.py before any page: loads pandas and plotly's lazily imported parts while this module is being
imported.

Plotly imports pandas (and more) on a figure's first use; visitors whose first page views run at the same moment
then import pandas in several script threads at once, and some get "partially initialized module 'pandas'" and a
blank page (seen with eight visitors running the demo together). Python's import lock makes every other session
wait until this module, and so these imports, are complete.
"""

import pandas  # noqa: F401
import plotly.graph_objects as go

go.Figure(go.Heatmap(z=[[0.0]], colorbar={"tickvals": [0.0]}), layout={"title": "warm-up"}).to_plotly_json()
