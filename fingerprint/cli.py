"""Command line: ``python -m fingerprint inspect | compute | compare | verdict | library ...``.

Errors are one line per model on stderr (no traceback); the other models carry on and the
exit code is 1 when any model failed. Tokens are never printed. The text it prints is built in
``present/terminal_text.py``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from . import __version__
from .compare import compare_pair
from .errors import FingerprintError, InternalError
from .fingerprinting import Options, Outcome, Progress, compute_many, default_deadline, inspect
from .library import commands as library_commands
from .present.formatting import human_bytes
from .present.terminal_text import (
    comparison_csv,
    comparison_json,
    comparison_table,
    inspection_text,
    outcomes_table,
    verdict_text,
)
from .result import Fingerprint
from .store import Store


def _parse_map(items: list[str] | None) -> dict[str, str] | None:
    if not items:
        return None
    out = {}
    for item in items:
        role, sep, pattern = item.partition("=")
        if not sep or not role or not pattern:
            raise SystemExit(f"error: --map takes ROLE=PATTERN, e.g. q='blocks.{{layer}}.attn.wq' (got {item!r})")
        out[role.strip()] = pattern.strip()
    return out


def _options(args: argparse.Namespace, cancel: threading.Event) -> Options:
    store = None if args.no_cache else Store(args.cache)
    if store is not None and store.note:
        print(f"note: {store.note}", file=sys.stderr)
    return Options(
        mode=getattr(args, "mode", "auto"),
        token=args.token or None,
        store=store,
        use_cache=not args.no_cache,
        mapping=_parse_map(getattr(args, "map", None)),
        file=getattr(args, "file", None),
        cancel=cancel,
        deadline=default_deadline() if args.deadline is None else (args.deadline or None),
    )


def cmd_inspect(args: argparse.Namespace) -> int:
    opts = _options(args, threading.Event())
    failed = 0
    for ref in args.models:
        try:
            info = inspect(ref, opts)
        except FingerprintError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
            continue
        if args.json:
            print(json.dumps(vars(info), indent=2))
            continue
        print(inspection_text(info))
    return 1 if failed else 0


def _progress_printer(quiet: bool) -> Callable[[Progress], None]:
    lock = threading.Lock()

    def show(p: Progress) -> None:
        if quiet or not sys.stderr.isatty():
            return
        with lock:
            if p.stage == "rate_limited":
                sys.stderr.write(f"\r{p.model}: {p.message}   ")
            elif p.stage == "probing":
                sys.stderr.write(f"\r{p.model}: reading a sample of the weights   ")
            elif p.stage == "reading" and p.bytes_needed:
                pct = 100 * p.bytes_done / p.bytes_needed
                sys.stderr.write(
                    f"\r{p.model}: reading {human_bytes(p.bytes_done)} of {human_bytes(p.bytes_needed)} ({pct:.0f}%, {p.mode})   "
                )
            else:
                sys.stderr.write(
                    f"\r{p.model}: {p.stage}{' ' * 40}\n"
                    if p.stage in ("done", "cached", "failed")
                    else f"\r{p.model}: {p.stage}   "
                )
            sys.stderr.flush()

    return show


def _run(refs: list[str], args: argparse.Namespace) -> list[Outcome]:
    cancel = threading.Event()
    opts = _options(args, cancel)
    try:
        return compute_many(refs, opts, _progress_printer(args.quiet))
    except KeyboardInterrupt:
        cancel.set()
        raise


def _report(outcomes: list[Outcome]) -> int:
    if table := outcomes_table(outcomes):
        print(table)
    failed = [o for o in outcomes if o.error]
    for o in failed:
        print(f"error: {o.error}", file=sys.stderr)
    return 1 if failed else 0


def _unwritable(path: str | None) -> str | None:
    """Why ``path`` cannot be written (checked before any work is done), or None."""
    if not path:
        return None
    p = Path(path).expanduser().resolve()
    if not p.parent.is_dir():
        return f"the folder {p.parent} does not exist"
    if p.is_dir():
        return "it is a folder"
    if not os.access(p.parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        return "permission denied"
    return None


def _write_atomically(path: str, text: str) -> str | None:
    """Write the whole file or leave the old one; returns the OS's reason on failure."""
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, p)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        return exc.strerror or type(exc).__name__
    return None


def cmd_compute(args: argparse.Namespace) -> int:
    if why := _unwritable(args.json):
        print(f"error: cannot write {args.json}: {why}", file=sys.stderr)
        return 2
    outcomes = _run(args.models, args)
    if args.json:
        good = [o.fingerprint.to_json() for o in outcomes if o.fingerprint]
        if why := _write_atomically(args.json, json.dumps(good, indent=1)):
            print(f"error: cannot write {args.json}: {why}", file=sys.stderr)
            return 2
    return _report(outcomes)


def _load_fingerprints(items: list[str], args: argparse.Namespace) -> tuple[list[Fingerprint], int]:
    fps: list[Fingerprint] = []
    refs: list[str] = []
    for item in items:
        p = Path(item)
        if p.suffix == ".json" and p.is_file():
            try:
                data = json.loads(p.read_text())
                data = data if isinstance(data, list) else [data]
                fps += [Fingerprint.from_json(d) for d in data]
            except (ValueError, TypeError, KeyError) as exc:
                print(f"error: {item}: not a fingerprint JSON file ({exc})", file=sys.stderr)
                return [], 1
        else:
            refs.append(item)
    failed = 0
    if refs:
        outcomes = _run(refs, args)
        for o in outcomes:
            if o.fingerprint:
                fps.append(o.fingerprint)
            else:
                print(f"error: {o.error}", file=sys.stderr)
                failed += 1
    return fps, failed


def cmd_compare(args: argparse.Namespace) -> int:
    fps, failed = _load_fingerprints(args.items, args)
    if len(fps) < 2:
        print("error: compare needs at least two fingerprints", file=sys.stderr)
        return 1
    pairs = [compare_pair(fps[i], fps[j]) for i in range(len(fps)) for j in range(i + 1, len(fps))]
    if args.format == "json":
        print(comparison_json(pairs))
    elif args.format == "csv":
        print(comparison_csv(pairs), end="")
    else:
        print(comparison_table(pairs))
    return 1 if failed else 0


def cmd_verdict(args: argparse.Namespace) -> int:
    from .lineage.evidence import verdicts

    if why := _unwritable(args.json):
        print(f"error: cannot write {args.json}: {why}", file=sys.stderr)
        return 2
    cancel = threading.Event()
    opts = _options(args, cancel)
    show = _progress_printer(args.quiet)
    pair = (args.a, args.b)
    try:
        run = verdicts([pair], opts, progress=lambda step: show(step.progress) if step.progress else None)
        if not args.quiet and sys.stderr.isatty():
            sys.stderr.write("\r" + " " * 100 + "\r")
    except KeyboardInterrupt:
        cancel.set()
        raise
    if pair not in run.verdicts:
        errors = [str(e) for e in run.failed_models.values()] or [_pair_error(pair, run.failed_pairs.get(pair))]
        for error in errors:
            print(f"error: {error}", file=sys.stderr)
        return 1
    v = run.verdicts[pair]
    print(verdict_text(v))
    if args.json:
        if why := _write_atomically(args.json, json.dumps(v.to_json(), indent=2, ensure_ascii=False) + "\n"):
            print(f"error: cannot write {args.json}: {why}", file=sys.stderr)
            return 2
        print(f"\nwrote {args.json}")
    return 0


def _pair_error(pair: tuple[str, str], exc: Exception | None) -> str:
    if isinstance(exc, FingerprintError):
        return str(exc)
    what = f"unexpected {type(exc).__name__} while comparing: {exc}" if exc else "cancelled"
    return str(InternalError(what, model=f"{pair[0]} vs {pair[1]}"))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m fingerprint", description="LLM weight fingerprints (σ-curves) from the Hub or local files."
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--token", help="Hugging Face token for gated/private repos (default: HF_TOKEN or your login); never printed"
    )
    common.add_argument("--no-cache", action="store_true", help="neither read nor write the fingerprint cache")
    common.add_argument(
        "--cache", help="path of the cache database (default: $FINGERPRINT_CACHE or ~/.cache/llm-fingerprint)"
    )
    common.add_argument("--file", help="the weight file to use inside a Hub repo (e.g. a particular .gguf)")
    common.add_argument(
        "--map",
        action="append",
        metavar="ROLE=PATTERN",
        help="explicit tensor-name mapping for an unknown architecture, e.g. q='blocks.{layer}.attn.wq'; repeat per role",
    )
    common.add_argument(
        "--deadline",
        type=float,
        metavar="SECONDS",
        help="give up on a model whose reads take longer than this in all (default: $FINGERPRINT_DEADLINE or 900; "
        "0 = no limit); waits for the Hub's rate limit do not count",
    )
    common.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    common.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser(
        "inspect", parents=[common], help="architecture, layers, tensors per role, bytes a fingerprint will read"
    )
    s.add_argument("models", nargs="+")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=cmd_inspect)

    s = sub.add_parser("compute", parents=[common], help="compute fingerprints")
    s.add_argument("models", nargs="+", help="Hub IDs (org/name[@rev], org/name/file.gguf) or local files/folders")
    s.add_argument("--json", metavar="PATH", help="write the fingerprints as a JSON array")
    s.add_argument("--mode", choices=["auto", "exact", "sampled"], default="auto")
    s.set_defaults(func=cmd_compute)

    s = sub.add_parser("compare", parents=[common], help="compare fingerprints (JSON files or model references)")
    s.add_argument("items", nargs="+", help="fingerprint JSON files and/or model references")
    s.add_argument("--format", choices=["table", "csv", "json"], default="table")
    s.add_argument("--mode", choices=["auto", "exact", "sampled"], default="auto")
    s.set_defaults(func=cmd_compare)

    s = sub.add_parser(
        "verdict", parents=[common], help="lineage verdict for a pair: every signal against unrelated pairs"
    )
    s.add_argument("a", help="model reference")
    s.add_argument("b", help="model reference")
    s.add_argument("--json", metavar="PATH", help="also write the verdict and its evidence as JSON")
    s.set_defaults(func=cmd_verdict, mode="auto")

    library_commands.register(sub, common, _options)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if not args.verbose:
        for noisy in ("httpx2", "httpx", "huggingface_hub"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    command: Callable[[argparse.Namespace], int] = args.func
    try:
        return command(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
