"""The dashboard's pages: their scripts (in app_pages/, see DESIGN.md for why not pages/) and URL paths."""

PAGES = {
    "home": "app_pages/home.py",
    "models": "app_pages/models.py",
    "compare": "app_pages/compare.py",
    "export": "app_pages/export.py",
    "stress": "app_pages/stress.py",
    "find_base": "app_pages/find_base.py",
}
URL_PATHS = {
    "home": "",
    "models": "models",
    "compare": "compare",
    "export": "export",
    "stress": "stress",
    "find_base": "find-base",
}
