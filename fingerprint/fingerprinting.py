"""From a model reference to a Fingerprint: resolve the revision, look the cache up, open the checkpoint,
map roles, plan reads, stream statistics, store the result.

This is the Python API the command line and the dashboard call. Errors are typed
(FingerprintError) and carry the model reference; ``compute_many`` lets every model
carry on when one fails.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from . import __version__
from .checkpoint import Checkpoint, open_checkpoint, sha256_file
from .errors import Cancelled, FingerprintError, InternalError, read_failure
from .reference import ModelRef, parse_reference
from .result import Fingerprint, Mode, ModeChoice
from .roles import RoleMap, assign_roles
from .sources.base import ReadContext
from .sources.ratelimit import RateLimitWait
from .stats import LayerStat, ReadPlan, choose_mode, compute_stats, make_plan, needed_bytes
from .store import Store, model_key
from .store import default_path as default_store_path

if TYPE_CHECKING:
    from .sources.hub import HubSnapshot

# resolving -> headers -> reading -> done, or cached / failed; "probing" for a lineage probe; "rate_limited"
# whenever a read waits for the Hub's rate limit (the stage before it resumes after)
Stage = Literal["resolving", "headers", "reading", "probing", "rate_limited", "done", "cached", "failed"]


@dataclass
class Progress:
    """What the dashboard or CLI shows while a model is being fingerprinted."""

    model: str
    stage: Stage
    bytes_done: int = 0
    bytes_needed: int = 0
    mode: Mode | None = None
    message: str = ""  # rate_limited: what is awaited and why, e.g. "waiting 42 s for the Hub's rate limit (...)"


ProgressFn = Callable[[Progress], None]


@dataclass
class Options:
    """How to fingerprint: mode, credentials, cache, cancel flag and deadline, shared by every model of a run."""

    mode: ModeChoice = "auto"
    token: str | None = field(default=None, repr=False)  # None: huggingface_hub's own (HF_TOKEN or login); never shown
    endpoint: str | None = None  # None: HF_ENDPOINT or huggingface.co
    store: Store | None = None
    use_cache: bool = True
    mapping: dict[str, str] | None = None  # explicit role -> tensor name pattern
    file: str | None = None  # a file to pick inside a Hub repo
    cancel: threading.Event | None = None
    max_exact_bytes: int | None = None  # a shared server's cap: bigger exact reads are sampled instead
    deadline: float | None = field(default_factory=lambda: default_deadline())  # seconds per model, all reads included


DEADLINE = 900.0  # seconds; waits for the Hub's rate limit do not count


def default_deadline() -> float | None:
    """FINGERPRINT_DEADLINE (seconds; 0 or 'none' for no limit), else DEADLINE."""
    raw = os.environ.get("FINGERPRINT_DEADLINE", "").strip().lower()
    if not raw:
        return DEADLINE
    if raw in ("0", "none", "off"):
        return None
    try:
        value = float(raw)
    except ValueError:
        return DEADLINE
    return value if value > 0 else None


def _read_context(opts: Options, model: str, progress: ProgressFn | None = None) -> ReadContext:
    """The context all of one model's reads share: its deadline, the cancel flag, and rate-limit waits
    reported as progress."""

    def on_wait(wait: RateLimitWait) -> None:
        if progress is not None:
            progress(Progress(model, "rate_limited", message=wait.message))

    return ReadContext(deadline=opts.deadline, cancel=opts.cancel, on_wait=on_wait)


@dataclass(frozen=True)
class Outcome:
    """One model's result: its fingerprint (``cached`` when it came from the store) or its error."""

    model: str
    fingerprint: Fingerprint | None = None
    error: FingerprintError | None = None
    cached: bool = False


@dataclass(frozen=True)
class Inspection:
    """What ``inspect`` tells about a model without reading any tensor data."""

    model: str
    revision: str
    format: str
    architecture: str | None
    layers: int
    files: list[dict[str, Any]]
    tensors_by_role: dict[str, int]
    bytes_total: int
    bytes_needed_exact: int
    bytes_needed_sampled: int
    default_mode: Mode
    config: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


_DEFAULT_STORES: dict[str, Store] = {}
_DEFAULT_LOCK = threading.Lock()


def _with_default_store(opts: Options) -> Options:
    """use_cache without an explicit store means the default store (FINGERPRINT_CACHE)."""
    if not opts.use_cache or opts.store is not None:
        return opts
    path = str(default_store_path())
    with _DEFAULT_LOCK:
        if path not in _DEFAULT_STORES:
            _DEFAULT_STORES[path] = Store(path)
        return replace(opts, store=_DEFAULT_STORES[path])


def _check_cancel(opts: Options) -> None:
    if opts.cancel is not None and opts.cancel.is_set():
        raise Cancelled("cancelled before it started")


def _with_model(exc: FingerprintError, model: str) -> FingerprintError:
    if exc.model is None:
        exc.model = model
    return exc


def _snapshot(ref: ModelRef, opts: Options, context: ReadContext) -> HubSnapshot | None:
    """A Hub reference's revision resolved to a commit sha, with the repo's files (one API call); None for local."""
    if ref.kind != "hub":
        return None
    from .sources.hub import resolve_snapshot

    return resolve_snapshot(ref.hub_repo_id, ref.revision, token=opts.token, endpoint=opts.endpoint, context=context)


def _open(ref: ModelRef, opts: Options, context: ReadContext, snapshot: HubSnapshot | None = None) -> Checkpoint:
    """Open the checkpoint (headers, config, file listing). Local files are identified by their sha256: one
    hashed before (same path, size and mtime) is known at once, a new one is hashed while its statistics are
    computed."""
    if ref.kind == "hub" and snapshot is None:
        snapshot = _snapshot(ref, opts, context)
    hashes = opts.store  # file hashes are remembered even when fingerprints are not (use_cache=False)

    def hash_file(path: Path) -> str:
        return sha256_file(path, cancel=opts.cancel)

    return open_checkpoint(
        ref,
        token=opts.token,
        endpoint=opts.endpoint,
        file_hash=lambda p: hashes.file_sha256(p, hash_file) if hashes else hash_file(p),
        known_hash=hashes.known_sha256 if hashes else None,
        snapshot=snapshot,
        context=context,
    )


def open_model(reference: str, opts: Options | None = None, progress: ProgressFn | None = None) -> Checkpoint:
    """Open a model's checkpoint (headers, config, file listing) without computing anything. Its
    ``context`` carries the model's deadline and cancel flag to every later read."""
    opts = _with_default_store(opts or Options())
    ref = parse_reference(reference, filename=opts.file)
    try:
        return _open(ref, opts, _read_context(opts, ref.text, progress))
    except FingerprintError as exc:
        raise _with_model(exc, ref.text) from None


def inspect(reference: str, opts: Options | None = None) -> Inspection:
    """Architecture, layers, tensors per role and the bytes each mode would read, from the headers alone."""
    opts = _with_default_store(opts or Options())
    ref = parse_reference(reference, filename=opts.file)
    try:
        ckpt = _open(ref, opts, _read_context(opts, ref.text))
        try:
            rmap = assign_roles(ckpt.tensors, ckpt.config, opts.mapping)
            exact = make_plan(rmap, "exact").tensor_bytes + ckpt.header_bytes
            sampled = make_plan(rmap, "sampled", header_bytes=ckpt.header_bytes).tensor_bytes + ckpt.header_bytes
            return Inspection(
                model=ref.text,
                revision=ckpt.revision,
                format=ckpt.format,
                architecture=ckpt.config.architecture,
                layers=rmap.n_layers,
                files=[vars(f) for f in ckpt.files],
                tensors_by_role=rmap.count_by_role(),
                bytes_total=ckpt.total_bytes,
                bytes_needed_exact=exact,
                bytes_needed_sampled=sampled,
                default_mode=choose_mode(rmap, "auto"),
                config=_config_summary(ckpt),
                notes=ckpt.notes + rmap.notes,
            )
        finally:
            ckpt.close()
    except FingerprintError as exc:
        raise _with_model(exc, ref.text) from None


def compute(reference: str, opts: Options | None = None, progress: ProgressFn | None = None) -> Outcome:
    """Fingerprint one model. Never raises FingerprintError: it is returned in the Outcome."""
    opts = _with_default_store(opts or Options())
    report = progress or (lambda p: None)
    try:
        ref = parse_reference(reference, filename=opts.file)
    except FingerprintError as exc:
        return Outcome(reference, error=_with_model(exc, reference))
    try:
        _check_cancel(opts)
        return _compute(ref, opts, report)
    except FingerprintError as exc:
        report(Progress(ref.text, "failed"))
        return Outcome(ref.text, error=_with_model(exc, ref.text))
    except OSError as exc:
        report(Progress(ref.text, "failed"))
        return Outcome(ref.text, error=read_failure(exc, model=ref.text, local=ref.kind == "local"))
    except Exception as exc:
        report(Progress(ref.text, "failed"))
        return Outcome(ref.text, error=InternalError(f"unexpected {type(exc).__name__}: {exc}", model=ref.text))


def _compute(ref: ModelRef, opts: Options, report: ProgressFn) -> Outcome:
    store = opts.store if opts.use_cache else None
    key = model_key(ref)
    # the cache first: a pinned Hub reference or a local file hashed before is answered without reading weights
    if store and (sha := ref.pinned_sha) and (hit := store.get(key, sha, opts.mode)):
        if _needs_access_check(hit):
            _check_access(ref, opts)
        return _cached(ref, hit, report)
    report(Progress(ref.text, "resolving"))
    context = _read_context(opts, ref.text, report)
    snapshot = _snapshot(ref, opts, context)
    if store and snapshot and (hit := store.get(key, snapshot.sha, opts.mode)):
        return _cached(ref, hit, report)
    ckpt = _open(ref, opts, context, snapshot)
    if store and ref.kind == "local" and ckpt.revision_known and (hit := store.get(key, ckpt.revision, opts.mode)):
        ckpt.close()
        return _cached(ref, hit, report)
    try:
        report(Progress(ref.text, "headers", ckpt.context.bytes, 0))
        rmap = assign_roles(ckpt.tensors, ckpt.config, opts.mapping)
        mode = choose_mode(rmap, opts.mode)
        plan = make_plan(rmap, mode, header_bytes=ckpt.context.bytes)
        capped: list[str] = []
        if mode == "exact" and opts.max_exact_bytes and plan.tensor_bytes > opts.max_exact_bytes:
            capped.append(
                f"exact mode would read {plan.tensor_bytes / 1e9:.1f} GB, above this server's cap of "
                f"{opts.max_exact_bytes / 1e9:.1f} GB: sampled instead"
            )
            mode = "sampled"
            plan = make_plan(rmap, mode, header_bytes=ckpt.context.bytes)
        needed = plan.tensor_bytes

        def on_bytes(done: int, total: int) -> None:
            report(Progress(ref.text, "reading", done, needed, mode))

        stats = compute_stats(rmap, plan, progress=on_bytes, cancel=opts.cancel)
        fp = _build(ref, ckpt, rmap, plan, stats, capped)
    finally:
        ckpt.close()
    if store:
        store.put(key, fp)
    report(Progress(ref.text, "done", fp.bytes_read, fp.bytes_read, fp.mode))
    return Outcome(ref.text, fingerprint=fp)


def _needs_access_check(fp: Fingerprint) -> bool:
    """A cached Hub result of a repo that is not known to be public: the caller must show it may read the repo."""
    return fp.source == "hub" and fp.access != "public"


def _check_access(ref: ModelRef, opts: Options) -> None:
    """With the caller's own token, one API call at the pinned sha (and for a gated repo one 1-byte read):
    raises RepoNotFound / GatedRepo when this caller may not read the repo, so a result cached for one
    visitor is never shown to another who may not."""
    from .sources.hub import HubFile, resolve_snapshot

    # a private repo this caller may not read: 404 here
    snap = resolve_snapshot(ref.hub_repo_id, ref.revision, token=opts.token, endpoint=opts.endpoint)
    if snap.access != "public" and snap.files:
        # a gated repo's metadata is public: only reading a file tells whether this caller was granted access
        name = (
            "config.json"
            if snap.files.get("config.json")
            else min(snap.files, key=lambda n: (snap.files[n] == 0, snap.files[n]))
        )
        if snap.files[name]:
            HubFile(snap, name).read(0, 1)


def _cached(ref: ModelRef, fp: Fingerprint, report: ProgressFn) -> Outcome:
    fp = replace(fp, model=ref.text)  # stored under the model key: shown under the reference as given
    report(Progress(ref.text, "cached", 0, 0, fp.mode))
    return Outcome(ref.text, fingerprint=fp, cached=True)


def _config_summary(ckpt: Checkpoint) -> dict[str, Any]:
    c = ckpt.config
    out = {
        "model_type": c.model_type,
        "num_hidden_layers": c.n_layers,
        "num_attention_heads": c.n_heads,
        "num_key_value_heads": c.n_kv_heads,
        "head_dim": c.head_dim,
        "hidden_size": c.hidden,
    }
    return {k: v for k, v in out.items() if v is not None}


def _build(
    ref: ModelRef,
    ckpt: Checkpoint,
    rmap: RoleMap,
    plan: ReadPlan,
    stats: dict[str, dict[int, LayerStat]],
    capped: list[str],
) -> Fingerprint:
    n = rmap.n_layers
    curves, extra = {}, {}
    for role in rmap.roles():
        per_layer = stats.get(role, {})
        row = [per_layer.get(i) for i in range(n)]
        curves[role] = [s.std if s else None for s in row]
        extra[role] = {
            "mean": [s.mean if s else None for s in row],
            "rms": [s.rms if s else None for s in row],
            "std_err": [s.std_err if s else None for s in row],
            "mean_err": [s.mean_err if s else None for s in row],
            "rms_err": [s.rms_err if s else None for s in row],
        }
    notes = ckpt.notes + capped + rmap.notes
    if plan.mode == "sampled":
        notes.append(
            f"sampled mode: {plan.tensor_bytes / 2**20:.1f} MiB of {needed_bytes(rmap) / 2**20:.1f} MiB of attention "
            "tensors read; each σ carries a jackknife standard error"
        )
    return Fingerprint(
        model=ref.text,
        revision=ckpt.revision,
        source=ref.kind,
        format=ckpt.format,
        architecture=ckpt.config.architecture,
        layers=n,
        mode=plan.mode,
        curves=curves,
        stats=extra,
        bytes_read=ckpt.context.bytes,
        bytes_total=ckpt.total_bytes,
        tool_version=__version__,
        computed_at=datetime.now(UTC).isoformat(timespec="seconds"),
        repo_id=ref.repo_id,
        files=[{k: v for k, v in vars(f).items() if v is not None} for f in ckpt.files],
        config=_config_summary(ckpt),
        notes=notes,
        access=ckpt.access,
    )


def compute_many(
    references: Sequence[str],
    opts: Options | None = None,
    progress: ProgressFn | None = None,
    parallel: int = 2,
) -> list[Outcome]:
    """Fingerprint several models; a failure in one leaves the others untouched. Order is kept."""
    opts = _with_default_store(opts or Options())
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        return list(pool.map(lambda r: compute(r, opts, progress), references))
