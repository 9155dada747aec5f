"""The lineage API the command line and the dashboard call: probes (cached), and verdicts for pairs.

``verdicts`` is the one entry point for pairs: each model's probe is read once, then every pair is
weighed; a model or a pair that fails is kept with its error while the others carry on, the cancel
flag is checked between steps, and every step is reported.
"""

from __future__ import annotations

import logging
import threading
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from ..checkpoint import Checkpoint
from ..compare import compare_pair
from ..errors import Cancelled, FingerprintError, InternalError, read_failure
from ..fingerprinting import Options, Progress, ProgressFn, compute, open_model
from ..reference import ModelRef, parse_reference
from ..result import Fingerprint
from ..store import default_path, model_key
from . import calibration, sigma
from .plan import ProbeBudget, as_budget
from .probe import Probe, probe_key
from .reading import build_probe
from .signals import Signal, all_signals, missing, sigma_signal
from .verdict import Verdict, decide

log = logging.getLogger(__name__)
Pair = tuple[str, str]


def probe_dir(opts: Options) -> Path:
    """Where probes are cached: next to the fingerprint cache."""
    base = opts.store.path.parent if opts.store is not None else default_path().parent
    return base / "probes"


def _load_cached(path: Path, model: str) -> Probe | None:
    if not path.is_file():
        return None
    try:
        probe = Probe.load(path)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        path.unlink(missing_ok=True)  # unreadable cache entry: recompute it
        return None
    return replace(probe, model=model)


def _cache_path(ref: ModelRef, budget: ProbeBudget, revision: str, opts: Options) -> Path:
    return probe_dir(opts) / f"{probe_key(model_key(ref) + f'|{budget.key()}', revision)}.npz"


def probe_cached(
    reference: str, revision: str, opts: Options | None = None, *, budget: ProbeBudget | int | None = None
) -> bool:
    """Whether the probe of this model at this revision is in the cache (nothing is opened or read)."""
    opts = opts or Options()
    if not opts.use_cache or not revision:
        return False
    ref = parse_reference(reference, filename=opts.file)
    return _cache_path(ref, as_budget(budget), revision, opts).is_file()


def get_probe(
    reference: str,
    opts: Options | None = None,
    *,
    budget: ProbeBudget | int | None = None,
    revision: str | None = None,
    progress: ProgressFn | None = None,
    inspect: Callable[[Checkpoint], None] | None = None,
) -> tuple[Probe, bool]:
    """The probe of one model, from the cache when present: (probe, cached). ``revision`` (the commit sha or
    file hash, e.g. from the model's fingerprint) lets a cached probe be found without opening the model.
    ``budget``: a ProbeBudget, or bytes (with the default request budget). ``progress`` hears the stages
    ("resolving", "probing") and every wait for the Hub's rate limit ("rate_limited"). ``inspect`` is
    called with the opened model (whenever it is opened), so a caller that needs more of it - its model card -
    does not open it a second time."""
    opts = opts or Options()
    budget = as_budget(budget)
    ref = parse_reference(reference, filename=opts.file)
    if opts.use_cache and revision and (hit := _load_cached(_cache_path(ref, budget, revision, opts), ref.text)):
        return hit, True
    report = progress or (lambda p: None)
    report(Progress(ref.text, "resolving"))
    ckpt = open_model(reference, opts, progress)
    try:
        if inspect is not None:
            inspect(ckpt)
        report(Progress(ref.text, "probing", ckpt.context.bytes))
        path = _cache_path(ref, budget, ckpt.revision, opts) if opts.use_cache else None
        if path is not None and (hit := _load_cached(path, ref.text)):
            return hit, True
        try:
            probe = build_probe(ckpt, ref.text, budget=budget, cancel=opts.cancel)
        except FingerprintError as exc:
            exc.model = exc.model or ref.text
            raise
        except OSError as exc:
            raise read_failure(exc, model=ref.text, local=ref.kind == "local") from None
        if path is not None:
            probe.save(path)
        return probe, False
    finally:
        ckpt.close()


def probe_fingerprint(probe: Probe, reference: str, opts: Options | None = None) -> Fingerprint:
    """The σ fingerprint a verdict uses: from the probe's own rows, or - when it has no Q/K/V/O rows, e.g. MLA
    (no V of the hidden state) or a fused QKV whose shape the head counts do not fit - a sampled fingerprint read
    separately."""
    opts = opts or Options()
    ref = parse_reference(reference, filename=opts.file)
    fp = sigma.fingerprint_of(probe, source=ref.kind, repo_id=ref.repo_id)
    if fp is not None:
        return fp
    out = compute(reference, replace(opts, mode="sampled"))
    if out.fingerprint is None:
        raise out.error or InternalError("no fingerprint and no error", model=reference)
    return out.fingerprint


def sigma_between(fa: Fingerprint | None, fb: Fingerprint | None, why: str | None = None) -> Signal:
    """The σ-curve signal of a pair; missing (with ``why``) when either fingerprint is."""
    if fa is None or fb is None:
        return missing("sigma", why or "no fingerprint")
    c = compare_pair(fa, fb)
    return sigma_signal(c.score, c.resampled)


def verdict_from(pa: Probe, pb: Probe, sigma: Signal) -> Verdict:
    """Every signal of a pair of probes, and the verdict they add up to (named by the probes' models)."""
    return decide(
        pa.model,
        pb.model,
        all_signals(pa, pb, sigma),
        calibration.load(),
        formats=(pa.config.get("packed") or pa.format, pb.config.get("packed") or pb.format),
        depths=(pa.n_layers, pb.n_layers),
        widths=(pa.config.get("hidden"), pb.config.get("hidden")),
        moe=(pa.is_moe, pb.is_moe),
        reads={
            p.model: {
                "bytes_read": p.bytes_read,
                "requests": p.requests,
                "bytes_total": p.bytes_total,
                "mode": p.mode,
                "parts": p.reads,
            }
            for p in (pa, pb)
        },
        notes=[f"{p.model}: {n}" for p in (pa, pb) for n in p.notes],
    )


@dataclass(frozen=True)
class PairsStep:
    """Where a run of ``verdicts`` is: reading the probe of model ``index`` of ``total`` ("probing", with that
    model's own progress - stages, waits for the Hub's rate limit - in ``progress`` once it reports), or weighing
    pair ``index`` of ``total`` ("weighing")."""

    stage: Literal["probing", "weighing"]
    index: int  # from 0
    total: int
    model: str = ""  # probing: the model
    pair: Pair | None = None  # weighing: the pair
    progress: Progress | None = None  # probing: what the model's reading last reported


@dataclass(frozen=True)
class PairsResult:
    """What a run of ``verdicts`` produced: the probes it read, a verdict per pair weighed, and the errors of
    the models that could not be probed and of the pairs that could not be weighed (a pair whose model failed
    carries that model's error). Pairs not reached before a cancel are in neither."""

    probes: dict[str, Probe] = field(default_factory=dict)
    verdicts: dict[Pair, Verdict] = field(default_factory=dict)
    failed_models: dict[str, FingerprintError] = field(default_factory=dict)
    failed_pairs: dict[Pair, Exception] = field(default_factory=dict)


def verdicts(
    pairs: Sequence[Pair],
    opts: Options | None = None,
    *,
    probes: Mapping[str, Probe] | None = None,
    fingerprints: Mapping[str, Fingerprint] | None = None,
    names: Mapping[str, str] | None = None,
    budget: ProbeBudget | int | None = None,
    progress: Callable[[PairsStep], None] | None = None,
) -> PairsResult:
    """The verdict of each pair of model references: probes first (once per model, from ``probes`` already
    read or the cache when they are there), then every pair. ``fingerprints``: the σ-curves to use, by model
    (a model without one has no σ signal); None: from each probe's own rows (``probe_fingerprint``).
    ``names``: how each model is named in its verdicts (default: its reference). ``opts.cancel`` is checked
    between steps: what is done stays. Never raises FingerprintError: failures are in the result."""
    opts = opts or Options()
    known = dict(probes or {})
    names = names or {}
    report = progress or (lambda step: None)
    cancel = opts.cancel or threading.Event()
    result = PairsResult()
    sigmas: dict[str, Fingerprint] = dict(fingerprints or {})
    need = [k for k in dict.fromkeys(k for p in pairs for k in p) if k not in known]
    for i, key in enumerate(need):
        if cancel.is_set():
            return result

        def on_progress(p: Progress, key: str = key, i: int = i) -> None:
            report(PairsStep("probing", i, len(need), model=key, progress=p))

        report(PairsStep("probing", i, len(need), model=key))
        try:
            fp = sigmas.get(key)
            probe = get_probe(key, opts, budget=budget, revision=fp.revision if fp else None, progress=on_progress)[0]
            result.probes[key] = probe
            if fingerprints is None:
                sigmas[key] = probe_fingerprint(probe, key, opts)
        except FingerprintError as exc:
            result.failed_models[key] = exc
    if fingerprints is None:
        for key in known.keys() - sigmas.keys():
            try:
                sigmas[key] = probe_fingerprint(known[key], key, opts)
            except FingerprintError as exc:
                result.failed_models[key] = exc
    have = {**known, **result.probes}
    for i, (a, b) in enumerate(pairs):
        if cancel.is_set():
            break
        if failed := result.failed_models.get(a) or result.failed_models.get(b):
            result.failed_pairs[(a, b)] = failed
            continue
        report(PairsStep("weighing", i, len(pairs), pair=(a, b)))
        try:
            pa, pb = (_named(have[k], names.get(k)) for k in (a, b))
            result.verdicts[(a, b)] = verdict_from(pa, pb, sigma_between(sigmas.get(a), sigmas.get(b)))
        except Exception as exc:
            log.exception("lineage evidence failed for %s vs %s", a, b)
            result.failed_pairs[(a, b)] = exc
    return result


def _named(probe: Probe, name: str | None) -> Probe:
    return probe if name is None or name == probe.model else replace(probe, model=name)


def verdict(
    a: str,
    b: str,
    opts: Options | None = None,
    *,
    budget: ProbeBudget | int | None = None,
    progress: ProgressFn | None = None,
) -> Verdict:
    """The verdict of one pair (``verdicts`` for one pair, σ from the probes). Raises FingerprintError naming
    the model that failed, or InternalError for an unexpected failure while weighing."""

    def show(step: PairsStep) -> None:
        if progress is not None and step.progress is not None:
            progress(step.progress)

    run = verdicts([(a, b)], opts, budget=budget, progress=show)
    for key in (a, b):
        if key in run.failed_models:
            raise run.failed_models[key]
    if (a, b) in run.failed_pairs:
        exc = run.failed_pairs[(a, b)]
        if isinstance(exc, FingerprintError):
            raise exc
        raise InternalError(f"unexpected {type(exc).__name__} while comparing: {exc}", model=f"{a} vs {b}") from exc
    if (a, b) not in run.verdicts:
        raise Cancelled("cancelled", model=f"{a} vs {b}")
    return run.verdicts[(a, b)]
