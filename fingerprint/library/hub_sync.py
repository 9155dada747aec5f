"""A reference library published to, and pulled from, a Hugging Face Hub dataset repository as one unit.

``push_library`` checks the folder is a library, creates the dataset repository when it is missing, and uploads
the library in one commit: files under ``entries/`` that the library no longer has are deleted in that same
commit, and files it does not own (a dataset card, ``.gitattributes``) are left alone. The commit names the head
the push started from as its parent, so a push that raced another one is refused rather than mixed with it.

``pull_library`` downloads one commit of the dataset into a temporary folder next to the destination, checks it
is a library holding every file its manifest names, records where it came from (``hub_source.json``), and only
then moves it into place: a half-pulled library never appears at the destination, and a library already there is
kept as it was when anything fails.

Tokens go to huggingface_hub and nowhere else: no message or log line here holds one.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx2
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, snapshot_download
from huggingface_hub import constants as hf_constants
from huggingface_hub import errors as hf_errors
from huggingface_hub.utils import build_hf_headers

from ..errors import (
    BadReference,
    BadToken,
    FingerprintError,
    GatedRepo,
    NetworkError,
    NotALibrary,
    Offline,
    RateLimited,
    RepoNotFound,
    RevisionNotFound,
)
from .store import ENTRIES, LIBRARY_FORMAT, LIBRARY_VERSION, MANIFEST

__all__ = ["pull_library", "push_library"]

log = logging.getLogger(__name__)

SOURCE_FILE = "hub_source.json"  # written by a pull: the dataset and commit the library came from; never pushed
OWNED_FOLDER = f"{ENTRIES}/"  # what a push mirrors exactly (deleting what the library no longer has)
KEPT_HIDDEN = {".gitattributes"}  # the only hidden file pushed: others are temporary files, editor or OS litter

_COMMIT_SHA = re.compile(r"[0-9a-f]{40}")


def push_library(
    path: str | os.PathLike[str],
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = False,
    message: str | None = None,
    endpoint: str | None = None,
) -> str:
    """Publish the library folder ``path`` to the Hub dataset ``repo_id`` in one commit; return the commit sha.

    The dataset is created when missing (``private`` applies to a new one only). ``token`` defaults to
    huggingface_hub's (HF_TOKEN or the saved login) and needs write access; ``endpoint`` to HF_ENDPOINT.
    Pushing an unchanged library makes no commit and returns the current head."""
    folder = Path(path)
    manifest = _checked_library(folder, str(folder), fix="Point to the library folder; rebuild it if files are lost.")
    files = _library_files(folder)
    api = HfApi(endpoint=endpoint or hf_constants.ENDPOINT, token=token)
    try:
        try:
            head = api.dataset_info(repo_id)
        except hf_errors.RepositoryNotFoundError:
            # created only when missing: create_repo(exist_ok=True) on an existing repo the token may not write to
            # fails on endpoints other than huggingface.co (huggingface_hub 2.4 builds its URL without the endpoint)
            api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
            head = api.dataset_info(repo_id)
        remote = {s.rfilename for s in head.siblings or []}
        local = {name for name, _ in files}
        operations: list[CommitOperationAdd | CommitOperationDelete] = [
            CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(file)) for name, file in files
        ]
        operations += [
            CommitOperationDelete(path_in_repo=name) for name in sorted(remote - local) if name.startswith(OWNED_FOLDER)
        ]
        entries = len(manifest["entries"])
        commit = api.create_commit(
            repo_id,
            operations,
            commit_message=message or f"Reference library: {entries} model{'s' if entries != 1 else ''}",
            repo_type="dataset",
            parent_commit=head.sha,
        )
    except Exception as exc:
        raise _hub_error(exc, repo_id, api.endpoint, "push", token) from None
    log.info("pushed %d files of %s to dataset %s at %s", len(files), folder, repo_id, commit.oid)
    return commit.oid


def pull_library(
    repo_id: str,
    dest: str | os.PathLike[str],
    *,
    revision: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
) -> Path:
    """Download the library in the Hub dataset ``repo_id`` (at ``revision``: a branch, tag or commit sha; default
    main) into the folder ``dest``, replacing the library there only once the new one is complete; return
    ``dest`` (absolute). ``dest`` must be new, empty, or a library. ``hub_source.json`` in it says which dataset and
    commit it came from."""
    dest = Path(dest).absolute()  # its parent holds the staging folder: "." has none
    _check_destination(dest)
    api = HfApi(endpoint=endpoint or hf_constants.ENDPOINT, token=token)
    try:
        sha = api.dataset_info(repo_id, revision=revision).sha
    except Exception as exc:
        raise _hub_error(exc, repo_id, api.endpoint, "pull", token, revision) from None
    if not sha or not _COMMIT_SHA.fullmatch(sha):
        raise NetworkError("the Hub answered with no valid commit sha", model=_what(repo_id))
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.pulling-", dir=dest.parent))
    try:
        try:
            snapshot_download(
                repo_id, repo_type="dataset", revision=sha, local_dir=staging, token=token, endpoint=api.endpoint
            )
        except Exception as exc:
            raise _hub_error(exc, repo_id, api.endpoint, "pull", token, revision) from None
        shutil.rmtree(staging / ".cache", ignore_errors=True)  # huggingface_hub's download bookkeeping
        _checked_library(
            staging,
            _what(repo_id),
            fix="The dataset does not hold a complete library of this tool's version: push one to it (or check the ID).",
        )
        source = {
            "repo_id": repo_id,
            "repo_type": "dataset",
            "revision": sha,
            "requested_revision": revision or "main",
            "pulled_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        (staging / SOURCE_FILE).write_text(json.dumps(source, indent=2) + "\n", encoding="utf-8")
        _move_into_place(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("pulled dataset %s at %s into %s", repo_id, sha, dest)
    return dest


# ---------------------------------------------------------------------------------------------- the library folder


def _checked_library(folder: Path, where: str, *, fix: str) -> dict[str, Any]:
    """The manifest of the library in ``folder``, once it is of this format and version and every file it names
    is there; NotALibrary naming ``where`` otherwise."""
    if not folder.is_dir():
        raise NotALibrary("not a folder", model=where)
    try:
        loaded = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotALibrary(f"there is no {MANIFEST}, so this is not a reference library", model=where) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise NotALibrary(f"{MANIFEST} cannot be read as JSON ({type(exc).__name__})", model=where) from None
    manifest: dict[str, Any] = loaded if isinstance(loaded, dict) else {}
    if manifest.get("format") != LIBRARY_FORMAT:
        raise NotALibrary(f"{MANIFEST} is not a reference library's (format {manifest.get('format')!r})", model=where)
    if manifest.get("version") != LIBRARY_VERSION:
        raise NotALibrary(
            f"the library is version {manifest.get('version')!r}, and this tool reads version {LIBRARY_VERSION}",
            "Update the tool, or rebuild the library with this version.",
            model=where,
        )
    entries = manifest.get("entries")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise NotALibrary(f"{MANIFEST} has no list of entries", fix, model=where)
    missing = []
    for entry in entries:
        for field in ("probe", "fingerprint"):
            name = entry.get(field)
            if name is None:
                continue
            if not _inside_library(name):
                raise NotALibrary(f"an entry's {field} is {name!r}, not a path inside the library", fix, model=where)
            if not (folder / name).is_file():
                missing.append(name)
    if missing:
        listed = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise NotALibrary(f"files the manifest names are missing: {listed}", fix, model=where)
    return manifest


def _inside_library(name: object) -> bool:
    if not isinstance(name, str) or not name or "\\" in name:
        return False
    p = PurePosixPath(name)
    return not p.is_absolute() and ".." not in p.parts


def _library_files(folder: Path) -> list[tuple[str, Path]]:
    """(path in the repo, file) for every regular file of the library that is pushed: not the pull's sidecar, no
    symbolic link, nothing hidden but ``.gitattributes`` (temporary files of atomic writes start with a dot)."""
    files = []
    for file in sorted(folder.rglob("*")):
        name = file.relative_to(folder).as_posix()
        hidden = any(part.startswith(".") for part in name.split("/"))
        if (hidden and name not in KEPT_HIDDEN) or name == SOURCE_FILE or file.is_symlink() or not file.is_file():
            continue
        files.append((name, file))
    return files


def _check_destination(dest: Path) -> None:
    """A pull replaces ``dest`` whole: refuse anything there that is not a library (or an empty folder)."""
    fix = "Pull into a new or empty folder, or into a library to update it."
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise NotALibrary("this is not a folder, so a pulled library cannot replace it", fix, model=str(dest))
    if dest.is_dir() and not (dest / MANIFEST).is_file() and any(dest.iterdir()):
        raise NotALibrary("this folder holds files but no library, and a pull would replace them", fix, model=str(dest))


def _move_into_place(staging: Path, dest: Path) -> None:
    """Rename the complete library at ``staging`` to ``dest``; a library already at ``dest`` is moved aside first
    and put back if the rename fails. Readers see the old library, none for an instant, or the new one."""
    if not dest.exists():
        os.rename(staging, dest)
        return
    aside = dest.with_name(f".{dest.name}.replaced-{secrets.token_hex(4)}")
    os.rename(dest, aside)
    try:
        os.rename(staging, dest)
    except BaseException:
        os.rename(aside, dest)
        raise
    shutil.rmtree(aside, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- errors


def _what(repo_id: str) -> str:
    return f"dataset {repo_id}"


def _hub_error(
    exc: BaseException,
    repo_id: str,
    endpoint: str,
    action: Literal["push", "pull"],
    token: str | None,
    revision: str | None = None,
) -> FingerprintError:
    """What went wrong talking to the Hub, as the typed error the user sees: it names the dataset and the fix,
    and never the token (huggingface_hub's own messages are not passed on). An exception that is not about the
    Hub, the network or the disk is raised again as it is."""
    while isinstance(exc, RuntimeError) and isinstance(exc.__cause__, Exception):
        exc = exc.__cause__  # huggingface_hub wraps a failed LFS upload: "Error while uploading ..."
    what = _what(repo_id)
    page = f"{_site(endpoint)}/datasets/{repo_id}"
    sent_token = bool(build_hf_headers(token=token).get("authorization"))
    needs_write = (
        "Pass a valid token with write access (huggingface.co/settings/tokens) of an account that may write to "
        f"'{repo_id.split('/')[0]}' (--token or HF_TOKEN)."
    )
    no_token = BadToken("publishing a library needs a token with write access, and none was given", needs_write)
    not_found = RepoNotFound(
        "not found on the Hub, or private and the token cannot read it",
        f"Check the ID ({page}); for a private library pass a token that can read it (--token or HF_TOKEN).",
        model=what,
    )
    status = _status(exc)
    if isinstance(exc, FingerprintError):
        return exc
    if isinstance(exc, hf_errors.HFValidationError):
        return BadReference(f"{repo_id!r} is not a valid dataset ID", "Give the library's dataset as org/name.")
    if isinstance(exc, hf_errors.GatedRepoError):
        return GatedRepo(
            "the dataset is gated and the token's account has not been granted access",
            f"Request access on {page}, then pass a token of that account (--token or HF_TOKEN).",
            model=what,
        )
    if isinstance(exc, hf_errors.RevisionNotFoundError):
        return RevisionNotFound(f"revision {revision or 'main'!r} not found", model=what)
    if isinstance(exc, hf_errors.RepositoryNotFoundError):
        return no_token if action == "push" and not sent_token else not_found
    if isinstance(exc, hf_errors.HfHubHTTPError):
        if status == 401 and sent_token:
            fix = needs_write if action == "push" else "Check the token, or pull a public library without one."
            return BadToken("the Hub rejected the token (invalid or expired credentials)", fix, model=what)
        if status in (401, 403) and action == "push":
            if not sent_token:
                return no_token
            problem = "the token may not write here (a read-only token, or an account without write access)"
            return BadToken(problem, needs_write, model=what)
        if status == 401:
            return not_found  # the Hub's answer to a private repository asked without a token
        if status == 412:
            return NetworkError(
                "someone else pushed to the dataset while this push ran, so nothing was changed",
                "Push again: the library is then uploaded on top of their commit.",
                model=what,
            )
        if status == 429:
            return RateLimited("the Hub is rate-limiting requests (HTTP 429)", model=what)
        return NetworkError(f"the Hub answered HTTP {status}", model=what)
    if isinstance(exc, hf_errors.OfflineModeIsEnabled):
        return Offline("huggingface_hub is set to work offline", "Unset HF_HUB_OFFLINE to push or pull a library.")
    if isinstance(exc, (httpx2.ConnectError, hf_errors.LocalEntryNotFoundError, ConnectionError)):
        return Offline(
            f"cannot reach the Hub ({_site(endpoint)})",
            "Check the network connection (and HF_ENDPOINT if set), then retry.",
            model=what,
        )
    if isinstance(exc, OSError) and exc.errno is not None:
        return FingerprintError(
            f"a local file could not be {'read' if action == 'push' else 'written'} ({exc.strerror}: {exc.filename})",
            "Check the folder (permissions, free space) and retry.",
            model=what,
        )
    if isinstance(exc, (httpx2.TransportError, OSError)):
        # OSError without errno: huggingface_hub's "consistency check failed" when a download is cut short
        return NetworkError(f"the transfer failed ({type(exc).__name__})", model=what)
    raise exc


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _site(endpoint: str) -> str:
    """The endpoint without any user:password part, for messages."""
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}"
