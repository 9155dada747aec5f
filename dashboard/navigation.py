"""The dashboard's pages: their scripts (in app_pages/, see DESIGN.md for why not pages/) and URL paths."""

PAGES = {
    "home": "app_pages/home.py",
    "models": "app_pages/models.py",
    "compare": "app_pages/compare.py",
    "export": "app_pages/export.py",
    "stress": "app_pages/stress.py",
}
URL_PATHS = {"home": "", "models": "models", "compare": "compare", "export": "export", "stress": "stress"}
