"""Catalogs of known models: which Hub repositories ``library build`` reads. The default one ships with the
package (``known-models.csv``, its source in ``known-models.md``); a user's own CSV has the same columns."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import CatalogError

COLUMNS = ("family", "publisher", "repo_id", "size_bucket")
DEFAULT_CATALOG = "known-models.csv"


@dataclass(frozen=True)
class CatalogRow:
    family: str
    publisher: str
    repo_id: str
    size_bucket: str


def default_catalog_text() -> str:
    return resources.files(__package__).joinpath(DEFAULT_CATALOG).read_text(encoding="utf-8")


def load_catalog(path: str | Path | None = None) -> list[CatalogRow]:
    """The rows of a catalog (the default one without ``path``); a repository listed twice is kept once."""
    if path is None:
        text, where = default_catalog_text(), DEFAULT_CATALOG
    else:
        where = str(path)
        try:
            text = Path(path).expanduser().read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CatalogError(f"cannot read the catalog: {exc}", model=where) from None
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise CatalogError(f"the catalog has no column {', '.join(missing)}", model=where)
    rows: dict[str, CatalogRow] = {}
    for n, r in enumerate(reader, start=2):
        repo = (r.get("repo_id") or "").strip()
        if repo.count("/") != 1 or any(not part for part in repo.split("/")):
            raise CatalogError(f"line {n}: {repo!r} is not a Hub repository id (org/name)", model=where)
        rows.setdefault(repo, CatalogRow(*((r.get(c) or "").strip() for c in COLUMNS)))
    return list(rows.values())
