"""Reading known models into a library: for each model its probe (the lineage evidence's sample of its
weights), the σ fingerprint from that probe, and what it declares as its base. One model's failure is reported
and the others carry on; models already in the library are not read again unless asked."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from ..errors import FingerprintError, InternalError
from ..fingerprinting import Options, ProgressFn
from ..lineage.evidence import get_probe, probe_fingerprint
from ..lineage.plan import ProbeBudget
from ..lineage.probe import Probe
from ..result import Fingerprint
from .declared import declared_bases
from .store import Library, LibraryEntry, name_in_library


@dataclass(frozen=True)
class ReadModel:
    """What the library keeps of one model, read but not yet added."""

    reference: str
    probe: Probe
    fingerprint: Fingerprint
    declared_base: tuple[str, ...]


def read_model(
    reference: str,
    opts: Options | None = None,
    *,
    budget: ProbeBudget | int | None = None,
    progress: ProgressFn | None = None,
) -> ReadModel:
    """One model's probe (from the probe cache when it is there), its σ fingerprint and its declared base.
    ``progress`` hears the probe's stages and every wait for the Hub's rate limit."""
    opts = opts or Options()
    declared: list[str] = []
    probe, _ = get_probe(
        reference, opts, budget=budget, progress=progress, inspect=lambda ckpt: declared.extend(declared_bases(ckpt))
    )
    fingerprint = probe_fingerprint(probe, reference, opts)
    return ReadModel(reference, probe, fingerprint, tuple(declared))


def read_model_portable(reference: str, budget: int | None = None) -> tuple[bytes, dict[str, Any], tuple[str, ...]]:
    """``read_model`` as a Ray task runs it on any node: with that node's own options (its HF_TOKEN, its cache),
    returning plain data - the probe's file bytes, the fingerprint's JSON, the declared bases - not objects or
    files on the worker's disk."""
    model = read_model(reference, Options(), budget=budget)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "probe.npz"
        model.probe.save(path)
        data = path.read_bytes()
    return data, model.fingerprint.to_json(), model.declared_base


def from_portable(reference: str, portable: tuple[bytes, dict[str, Any], tuple[str, ...]]) -> ReadModel:
    data, fingerprint, declared = portable
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "probe.npz"
        path.write_bytes(data)
        probe = Probe.load(path)  # our own npz format: arrays and JSON, no pickle
    return ReadModel(reference, probe, Fingerprint.from_json(fingerprint), tuple(declared))


@dataclass
class BuildReport:
    added: list[LibraryEntry] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already in the library
    failed: dict[str, FingerprintError] = field(default_factory=dict)


@dataclass(frozen=True)
class BuildStep:
    reference: str
    done: int
    total: int
    outcome: str  # "added", "skipped", "failed"
    message: str = ""


def build_library(
    library: Library,
    models: Iterable[tuple[str, str]],
    opts: Options | None = None,
    *,
    workers: int = 2,
    refresh: bool = False,
    budget: ProbeBudget | int | None = None,
    progress: Callable[[BuildStep], None] | None = None,
    ray: str | None = None,
) -> BuildReport:
    """Add ``models`` ((reference, family) pairs) to the library, ``workers`` at a time on threads - or, with
    ``ray`` ("local" or a cluster's address), as Ray tasks, ``workers`` Hub reads at once across the cluster (each
    worker uses its own HF_TOKEN and cache). A model whose repository (or name) is already in the library is skipped
    unless ``refresh``."""
    opts = opts or Options()
    report = BuildReport()
    show = progress or (lambda step: None)
    todo: list[tuple[str, str]] = []
    for reference, family in dict(models).items():
        if not refresh and library.find(name_in_library(reference)) is not None:
            report.skipped.append(reference)
        else:
            todo.append((reference, family))
    total, done = len(todo), 0
    for reference in report.skipped:
        show(BuildStep(reference, done, total, "skipped", "already in the library"))
    families = dict(todo)
    outcomes = _each(todo, opts, workers, budget) if ray is None else _each_on_ray(todo, ray, workers, budget)
    with library.saves_deferred():
        for reference, outcome in outcomes:
            done += 1
            if isinstance(outcome, FingerprintError):
                report.failed[reference] = outcome
                show(BuildStep(reference, done, total, "failed", str(outcome)))
                continue
            entry = library.add(
                outcome.probe, outcome.fingerprint, family=families[reference], declared_base=outcome.declared_base
            )
            report.added.append(entry)
            show(BuildStep(reference, done, total, "added", entry.model))
    return report


def _each_on_ray(
    todo: list[tuple[str, str]], ray: str, workers: int, budget: ProbeBudget | int | None
) -> Iterator[tuple[str, ReadModel | FingerprintError]]:
    from .distributed import run_per_model

    if budget is not None and not isinstance(budget, int):
        budget = budget.bytes
    work = partial(read_model_portable, budget=budget)
    for reference, outcome in run_per_model(work, [r for r, _ in todo], ray=ray, hub_slots=workers):
        if isinstance(outcome, FingerprintError):
            outcome.model = outcome.model or reference
            yield reference, outcome
        elif isinstance(outcome, Exception):
            yield reference, InternalError(f"unexpected {type(outcome).__name__}: {outcome}", model=reference)
        else:
            yield reference, from_portable(reference, outcome)


def _each(
    todo: list[tuple[str, str]], opts: Options, workers: int, budget: ProbeBudget | int | None
) -> Iterator[tuple[str, ReadModel | FingerprintError]]:
    """(reference, what was read or the error) as each model finishes."""

    def one(reference: str) -> ReadModel | FingerprintError:
        try:
            return read_model(reference, opts, budget=budget)
        except FingerprintError as exc:
            exc.model = exc.model or reference
            return exc
        except Exception as exc:  # one model's bug must not end the build
            return InternalError(f"unexpected {type(exc).__name__}: {exc}", model=reference)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        pending: dict[Future[ReadModel | FingerprintError], str] = {pool.submit(one, r): r for r, _ in todo}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for f in finished:
                yield pending.pop(f), f.result()
