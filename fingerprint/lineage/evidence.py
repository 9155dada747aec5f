"""The lineage API the command line and the dashboard call: probes (cached) and verdicts."""

from __future__ import annotations

import zipfile
from dataclasses import replace
from pathlib import Path

from ..compare import compare_pair
from ..compute import Options, Progress, ProgressFn, cache_key, compute, io_error, open_model
from ..errors import FingerprintError, InternalError
from ..reference import parse_reference
from ..result import Fingerprint
from ..store import default_path
from . import calibration, sigma
from .plan import ProbeBudget, as_budget
from .probe import Probe, build_probe, probe_key
from .signals import Signal, all_signals, missing, sigma_signal
from .verdict import Verdict, decide


def probe_dir(opts: Options) -> Path:
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
    probe.model = model
    return probe


def get_probe(
    reference: str,
    opts: Options | None = None,
    *,
    budget: ProbeBudget | int | None = None,
    revision: str | None = None,
    progress: ProgressFn | None = None,
) -> tuple[Probe, bool]:
    """The probe of one model, from the cache when present: (probe, cached). ``revision`` (the commit sha or
    file hash, e.g. from the model's fingerprint) lets a cached probe be found without opening the model.
    ``budget``: a ProbeBudget, or bytes (with the default request budget). ``progress`` hears the stages
    ("resolving", "probing") and every wait for the Hub's rate limit ("rate_limited")."""
    opts = opts or Options()
    budget = as_budget(budget)
    ref = parse_reference(reference, filename=opts.file)
    key = cache_key(ref) + f"|{budget.key()}"
    if (
        opts.use_cache
        and revision
        and (hit := _load_cached(probe_dir(opts) / f"{probe_key(key, revision)}.npz", ref.text))
    ):
        return hit, True
    report = progress or (lambda p: None)
    report(Progress(ref.text, "resolving"))
    ckpt = open_model(reference, opts, progress)
    try:
        report(Progress(ref.text, "probing", ckpt.context.bytes))
        path = probe_dir(opts) / f"{probe_key(key, ckpt.revision)}.npz" if opts.use_cache else None
        if path is not None and (hit := _load_cached(path, ref.text)):
            return hit, True
        try:
            probe = build_probe(ckpt, ref.text, budget=budget, cancel=opts.cancel)
        except FingerprintError as exc:
            exc.model = exc.model or ref.text
            raise
        except OSError as exc:
            raise io_error(exc, ref) from None
        if path is not None:
            probe.save(path)
        return probe, False
    finally:
        ckpt.close()


def probe_fingerprint(probe: Probe, reference: str, opts: Options | None = None) -> Fingerprint:
    """The σ fingerprint a verdict uses: from the probe's own rows, or - when it has no Q/K/V/O rows,
    e.g. an interleaved fused QKV - a sampled fingerprint read separately."""
    opts = opts or Options()
    ref = parse_reference(reference, filename=opts.file)
    fp = sigma.fingerprint_of(probe, source=ref.kind, repo_id=ref.repo_id)
    if fp is not None:
        return fp
    out = compute(reference, replace(opts, mode="sampled"))
    if out.error is not None:
        raise out.error
    return out.fingerprint


def sigma_between(fa: Fingerprint | None, fb: Fingerprint | None, why: str | None = None) -> Signal:
    if fa is None or fb is None:
        return missing("sigma", why or "no fingerprint")
    c = compare_pair(fa, fb)
    return sigma_signal(c.score, c.resampled)


def verdict_from(pa: Probe, pb: Probe, sigma: Signal) -> Verdict:
    signals = all_signals(pa, pb, sigma)
    v = decide(
        pa.model,
        pb.model,
        signals,
        calibration.load(),
        formats=(pa.format, pb.format),
        depths=(pa.n_layers, pb.n_layers),
        widths=(pa.config.get("hidden"), pb.config.get("hidden")),
        moe=(pa.is_moe, pb.is_moe),
    )
    v.reads = {
        p.model: {
            "bytes_read": p.bytes_read,
            "requests": p.requests,
            "bytes_total": p.bytes_total,
            "mode": p.mode,
            "parts": p.reads,
        }
        for p in (pa, pb)
    }
    v.caveats += [f"{p.model}: {n}" for p in (pa, pb) for n in p.notes]
    return v


def verdict(
    a: str,
    b: str,
    opts: Options | None = None,
    *,
    budget: ProbeBudget | int | None = None,
    progress: ProgressFn | None = None,
) -> Verdict:
    """Probes, their σ-curves and every signal of one pair. Raises FingerprintError naming the model."""
    opts = opts or Options()
    probes = [get_probe(ref, opts, budget=budget, progress=progress)[0] for ref in (a, b)]
    fps = [probe_fingerprint(p, ref, opts) for p, ref in zip(probes, (a, b))]
    try:
        return verdict_from(probes[0], probes[1], sigma_between(*fps))
    except FingerprintError:
        raise
    except Exception as exc:
        raise InternalError(f"unexpected {type(exc).__name__} while comparing: {exc}", model=f"{a} vs {b}") from exc
