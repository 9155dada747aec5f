"""What only the dashboard needs: deployment settings and what a visitor may ask for, uploads, share links, Hub
search, presets, background runs with turns on a shared server, and the session state the pages share.

Not part of the installed library: ``app.py`` runs from the repository root. Only ``state``, ``fingerprinting``,
``lineage_runs``, ``address_bar`` and ``panels`` import streamlit; the rest is plain Python, testable without it
(tests/test_layering.py checks that).
"""
