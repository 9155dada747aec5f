"""``python -m fingerprint library add | build | list | remove | export | import | push | pull``: the reference
library from the command line. Errors are one line each on stderr; the exit code is 1 when any model failed."""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from ..errors import FingerprintError
from ..fingerprinting import Options
from ..present.terminal_text import text_table
from ..store import default_path
from .build import BuildStep, build_library
from .catalog import load_catalog
from .scan import MAX_CANDIDATES
from .store import Library, LibraryEntry

ENV_LIBRARY = "FINGERPRINT_LIBRARY"
OptionsFor = Callable[[argparse.Namespace, threading.Event], Options]


def default_library() -> Path:
    """$FINGERPRINT_LIBRARY, else a folder ``library`` next to the fingerprint cache."""
    env = os.environ.get(ENV_LIBRARY)
    return Path(env).expanduser() if env else default_path().parent / "library"


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser, options: OptionsFor
) -> None:
    """Add ``scan``, and ``library`` with its subcommands, to the command line's subparsers."""
    lib_common = argparse.ArgumentParser(add_help=False)
    lib_common.add_argument(
        "--library", type=Path, help=f"the library folder (default: ${ENV_LIBRARY} or ~/.cache/llm-fingerprint/library)"
    )
    parents = [common, lib_common]
    s = sub.add_parser(
        "scan",
        parents=parents,
        help="which known model is this derived from? rank the library's models by evidence",
    )
    s.add_argument("model", help="a Hub ID or a local file or folder")
    s.add_argument("--top", type=int, default=5, help="how many of the closest known models to show (default 5)")
    s.add_argument("--json", metavar="PATH", help="also write the result as JSON")
    s.add_argument(
        "--max-candidates",
        type=int,
        default=MAX_CANDIDATES,
        metavar="N",
        help=f"weigh at most N library models by their verdicts (default {MAX_CANDIDATES}; each verdict of a 7B-wide "
        "model takes about a second)",
    )
    s.add_argument(
        "--html",
        metavar="PATH",
        help="also write the result as one self-contained HTML page, with each candidate's evidence",
    )
    s.add_argument(
        "--fetch-declared",
        action="store_true",
        help="when the model declares a base that is not in the library, read that base too and weigh it",
    )
    s.add_argument("--add-declared", action="store_true", help="with --fetch-declared: add that base to the library")
    s.set_defaults(func=lambda a: _scan(a, options))

    p = sub.add_parser("library", help="the reference library of known models: add, build, list, share")
    cmds = p.add_subparsers(dest="library_command", required=True)
    parents = [common, lib_common]

    s = cmds.add_parser("add", parents=parents, help="read models into the library (Hub IDs or local files)")
    s.add_argument("models", nargs="+")
    s.add_argument("--family", default="", help="the family to file them under, e.g. Qwen")
    s.add_argument("--workers", type=int, default=2, help="models read at once (default 2)")
    s.add_argument("--refresh", action="store_true", help="read models that are already in the library again")
    _ray_argument(s)
    s.set_defaults(func=lambda a: _add(a, options))

    s = cmds.add_parser("build", parents=parents, help="read every model of a catalog into the library")
    s.add_argument("--catalog", help="a CSV with family, publisher, repo_id, size_bucket (default: the shipped one)")
    s.add_argument("--only-family", action="append", metavar="FAMILY", help="only these families (repeat)")
    s.add_argument("--size", action="append", metavar="BUCKET", help="only these size buckets, e.g. '<=1B' (repeat)")
    s.add_argument("--limit", type=int, help="at most this many models")
    s.add_argument("--workers", type=int, default=2, help="models read at once (default 2)")
    s.add_argument("--refresh", action="store_true", help="read models that are already in the library again")
    _ray_argument(s)
    s.set_defaults(func=lambda a: _build(a, options))

    s = cmds.add_parser("list", parents=parents, help="the models in the library")
    s.add_argument("--json", action="store_true", help="print the entries as JSON")
    s.set_defaults(func=_list)

    s = cmds.add_parser("remove", parents=parents, help="remove models from the library")
    s.add_argument("names", nargs="+", help="a model as listed (org/name or org/name@sha) or an entry key")
    s.set_defaults(func=_remove)

    s = cmds.add_parser("export", parents=parents, help="write the whole library to one zip file")
    s.add_argument("archive", type=Path)
    s.set_defaults(func=_export)

    s = cmds.add_parser("import", parents=parents, help="add the entries of an exported library")
    s.add_argument("archive", type=Path)
    s.set_defaults(func=_import)

    s = cmds.add_parser("push", parents=parents, help="publish the library to a Hub dataset repository")
    s.add_argument("dataset", help="ORG/DATASET (created when missing; the token must be allowed to write there)")
    s.add_argument("--private", action="store_true", help="create the dataset as private")
    s.add_argument("--message", help="the commit message")
    s.set_defaults(func=_push)

    s = cmds.add_parser("pull", parents=parents, help="replace the library with one from a Hub dataset repository")
    s.add_argument("dataset", help="ORG/DATASET")
    s.add_argument("--revision", help="a branch, tag or commit sha (default: the newest)")
    s.set_defaults(func=_pull)


def _ray_argument(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="read the models as Ray tasks (pip install '.[scale]'): on a cluster started here for the build, or on "
        "the running cluster at ADDRESS (host:6379, ray://host:10001, auto); --workers then caps the Hub reads "
        "across the cluster, and each node uses its own HF_TOKEN",
    )


def _reported(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A command whose FingerprintError or OSError is one line on stderr and exit code 1, never a traceback."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except (FingerprintError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1

    return run


def _library(args: argparse.Namespace, *, create: bool) -> Library:
    return Library.open(args.library or default_library(), create=create)


def _printer(quiet: bool) -> Callable[[BuildStep], None]:
    def show(step: BuildStep) -> None:
        if quiet:
            return
        where = f"[{step.done}/{step.total}]" if step.total else ""
        print(
            f"{where} {step.reference}: {step.outcome}" + (f" ({step.message})" if step.message else ""),
            file=sys.stderr,
        )

    return show


def _run_build(args: argparse.Namespace, options: OptionsFor, models: list[tuple[str, str]]) -> int:
    cancel = threading.Event()
    try:
        lib = _library(args, create=True)
        report = build_library(
            lib,
            models,
            options(args, cancel),
            workers=args.workers,
            refresh=args.refresh,
            progress=_printer(args.quiet),
        )
    except FingerprintError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        cancel.set()
        raise
    for err in report.failed.values():
        print(f"error: {err}", file=sys.stderr)
    print(
        f"{len(report.added)} added, {len(report.skipped)} already in the library, {len(report.failed)} failed; "
        f"the library has {len(lib)} models ({lib.path})"
    )
    return 1 if report.failed else 0


def _add(args: argparse.Namespace, options: OptionsFor) -> int:
    return _run_build(args, options, [(m, args.family) for m in args.models])


def _build(args: argparse.Namespace, options: OptionsFor) -> int:
    try:
        rows = load_catalog(args.catalog)
    except FingerprintError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.only_family:
        wanted = {f.lower() for f in args.only_family}
        rows = [r for r in rows if r.family.lower() in wanted]
    if args.size:
        rows = [r for r in rows if r.size_bucket in set(args.size)]
    if args.limit is not None:
        rows = rows[: max(0, args.limit)]
    if not rows:
        print("error: no model of the catalog matches --only-family/--size/--limit", file=sys.stderr)
        return 1
    return _run_build(args, options, [(r.repo_id, r.family) for r in rows])


def entry_row(e: LibraryEntry) -> dict[str, object]:
    f = e.facts
    return {
        "model": e.model,
        "family": e.family,
        "architecture": f.architecture,
        "layers": f.layers,
        "hidden": f.hidden,
        "vocab": f.vocab_size,
        "declares": ", ".join(e.declared_base),
        "added": e.added_at[:10],
    }


@_reported
def _list(args: argparse.Namespace) -> int:
    lib = _library(args, create=False)
    if args.json:
        print(
            json.dumps(
                [e.to_json() | {"facts": {**e.facts.to_json(), "tokens": len(e.facts.tokens)}} for e in lib.entries],
                indent=1,
            )
        )
        return 0
    rows = [entry_row(e) for e in lib.entries]
    if not rows:
        print(f"the library at {lib.path} is empty: add models with 'library add' or 'library build'")
        return 0
    print(text_table([["" if v is None else str(v) for v in r.values()] for r in rows], list(rows[0])))
    print(f"{len(rows)} models in {lib.path}")
    return 0


@_reported
def _remove(args: argparse.Namespace) -> int:
    lib = _library(args, create=False)
    missing = 0
    for name in args.names:
        gone = lib.remove(name)
        if gone is None:
            print(f"error: {name}: not in the library ('library list' shows what is)", file=sys.stderr)
            missing += 1
        else:
            print(f"removed {gone.model}")
    return 1 if missing else 0


@_reported
def _export(args: argparse.Namespace) -> int:
    print(f"wrote {_library(args, create=False).export(args.archive)}")
    return 0


@_reported
def _import(args: argparse.Namespace) -> int:
    lib = _library(args, create=True)
    added = lib.import_archive(args.archive)
    print(f"imported {len(added)} models; the library has {len(lib)} ({lib.path})")
    return 0


@_reported
def _push(args: argparse.Namespace) -> int:
    from .hub_sync import push_library

    lib = _library(args, create=False)
    sha = push_library(lib.path, args.dataset, token=args.token, private=args.private, message=args.message)
    print(f"pushed {len(lib)} models to dataset {args.dataset} at commit {sha[:12]}")
    return 0


@_reported
def _pull(args: argparse.Namespace) -> int:
    from .hub_sync import pull_library

    dest = pull_library(args.dataset, args.library or default_library(), revision=args.revision, token=args.token)
    print(f"pulled {len(Library.open(dest))} models from dataset {args.dataset} into {dest}")
    return 0


def _scan(args: argparse.Namespace, options: OptionsFor) -> int:
    from ..present.scan_report import scan_html
    from ..present.scan_words import scan_json, scan_text
    from .scan import scan

    cancel = threading.Event()
    try:
        lib = _library(args, create=False)
        if not len(lib):
            print(
                f"error: the library at {lib.path} is empty: add models with 'library add' or 'library build'",
                file=sys.stderr,
            )
            return 1
        result = scan(
            args.model,
            lib,
            options(args, cancel),
            top=max(1, args.top),
            max_candidates=max(1, args.max_candidates),
            fetch_declared=args.fetch_declared,
            add_declared=args.add_declared,
        )
    except FingerprintError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        cancel.set()
        raise
    print(scan_text(result))
    for path, write in ((args.json, scan_json), (args.html, scan_html)):
        if not path:
            continue
        try:
            Path(path).write_text(write(result), encoding="utf-8")
        except OSError as exc:
            print(f"error: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    return 0
