"""Which known model is this one derived from? A scan weighs one model against a reference library in two stages.

1. Facts: every entry's cheap facts (kept in the manifest, so no probe file is opened) are compared with the
   model's - width, attention shape, depth, vocabulary, the tokens its probe kept, its norms - and rank the whole
   library. The entries some signal could link to the model (the same width: weights compared position by
   position; any width: hidden dimensions lined up through shared tokens, or else through their weight profiles)
   are weighed, the closest by facts first, up to a bound; the others are set aside, and the result says how many
   and why. Different widths and tokenizers are not excluded: a pruned model is linked all the same.
2. Verdicts: the probe of each entry picked is loaded and the model's verdict against it computed (every lineage
   signal, σ from the fingerprints both sides keep); related entries come first, the strongest first.

What the model declares as its base (its model card, its GGUF metadata) is only a claim: it is checked against the
same verdicts (a declared base in the library is always weighed), and one that is not in the library can be read,
weighed and added when asked.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import threading
import time
import zipfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Literal

from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # no stubs

from ..errors import Cancelled, FingerprintError
from ..fingerprinting import Options, Progress
from ..lineage import sigma
from ..lineage.evidence import sigma_between, verdict_from
from ..lineage.plan import ProbeBudget
from ..lineage.probe import Probe
from ..lineage.signals import MIN_SHARED_TOKENS
from ..lineage.verdict import DECISIVE, Verdict
from ..lineage.vocab import tokens_are_numbers
from ..reference import parse_reference
from ..result import Fingerprint
from .build import read_model
from .facts import Facts, facts_of
from .store import Library, LibraryEntry, name_in_library, pinned_name

MAX_CANDIDATES = 16  # entries weighed at most (a declared base in the library is weighed on top)
CLOSEST_BY_FACTS = 3  # weighed even when no signal seems able to link them: the verdict says what could not be checked

# how much each fact counts in the facts score (0..1 = the share of the comparable facts that agree)
_WEIGHTS = {
    "width": 4.0,
    "attention": 2.0,
    "depth": 1.0,
    "vocabulary": 1.0,
    "tokens": 2.0,
    "norms": 1.0,
    "architecture": 1.0,
    "experts": 0.5,
}


@dataclass(frozen=True)
class FactsMatch:
    """How an entry's facts compare with the model's: a score from 0 to 1 (the share of the facts both have that
    agree, weighted), whether any signal could link the two, and the facts that agree and differ, in words."""

    entry: LibraryEntry
    score: float
    linkable: bool  # the same width, or hidden dimensions that shared tokens or weight profiles can line up
    agree: tuple[str, ...]
    differ: tuple[str, ...]
    shared_tokens: int  # kept tokens both probes read (what AWM lines the hidden dimensions up with)


SetAsideReason = Literal["no_link", "bound"]
SET_ASIDE_REASONS: dict[SetAsideReason, str] = {
    "no_link": "no signal could link them (another width, and no layers to line the hidden dimensions up by)",
    "bound": "a plausible link, but below the bound of entries weighed by their facts",
}


@dataclass(frozen=True)
class SetAside:
    """An entry not weighed, and why."""

    match: FactsMatch
    reason: SetAsideReason


@dataclass(frozen=True)
class ScanMatch:
    """An entry weighed against the model: its verdict, or why it could not be weighed."""

    entry: LibraryEntry
    facts: FactsMatch
    verdict: Verdict | None = None
    error: str | None = None

    @property
    def related(self) -> bool:
        return self.verdict is not None and self.verdict.related


DeclaredHow = Literal["library", "fetched", "not_in_library", "unreadable", "itself"]


@dataclass(frozen=True)
class DeclaredBase:
    """One base the model declares, and what was found: an entry of the library (``how`` = "library"), a model
    read because it was not there ("fetched", ``added`` when it was added to the library), nothing ("not_in_library":
    fetching was not allowed; "unreadable": reading it failed, ``note`` says why), or the model itself."""

    name: str
    how: DeclaredHow
    found: str | None = None  # the library entry's model, or the reference read
    verdict: Verdict | None = None
    added: bool = False
    note: str = ""


DeclaredOutcome = Literal["consistent", "no_evidence", "undecided", "not_checked", "none_declared"]


@dataclass(frozen=True)
class DeclaredCheck:
    """What the model declares against what its weights show. ``closest``: the library's best related entry."""

    bases: tuple[DeclaredBase, ...]
    closest: ScanMatch | None

    @property
    def outcome(self) -> DeclaredOutcome:
        """consistent: a declared base is related; no_evidence: every one weighed shows no evidence of lineage;
        undecided: one weighed could not be judged; not_checked: none could be weighed; none_declared."""
        if not self.bases:
            return "none_declared"
        weighed = [b.verdict for b in self.bases if b.verdict is not None]
        if any(v.related for v in weighed):
            return "consistent"
        if not weighed:
            return "not_checked"
        return "no_evidence" if all(v.verdict == "no_evidence" for v in weighed) else "undecided"


ScanStage = Literal["reading", "weighing", "declared"]


@dataclass(frozen=True)
class ScanStep:
    """Where a scan is: reading the model (with its reading's own progress once it reports), weighing entry
    ``index`` of ``total``, or reading a declared base that is not in the library."""

    stage: ScanStage
    index: int
    total: int
    model: str = ""
    progress: Progress | None = None


@dataclass(frozen=True)
class ScanResult:
    """A model against a library: every entry weighed, best first; the entries set aside; the model's own entries
    (this very revision, not compared with itself); the declared base checked; how long each stage took."""

    model: str
    revision: str
    facts: Facts
    library: str
    library_size: int
    top: int
    matches: tuple[ScanMatch, ...]
    set_aside: tuple[SetAside, ...]
    itself: tuple[LibraryEntry, ...]
    declared: DeclaredCheck
    cancelled: bool = False
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def best(self) -> tuple[ScanMatch, ...]:
        """The top ``top`` matches (all of them when ``top`` <= 0)."""
        return self.matches if self.top <= 0 else self.matches[: self.top]

    @property
    def related(self) -> tuple[ScanMatch, ...]:
        return tuple(m for m in self.matches if m.related)

    @property
    def closest(self) -> ScanMatch | None:
        """The best related entry; None: no known base matches."""
        return next(iter(self.related), None)

    @property
    def set_aside_counts(self) -> dict[SetAsideReason, int]:
        out: dict[SetAsideReason, int] = {}
        for s in self.set_aside:
            out[s.reason] = out.get(s.reason, 0) + 1
        return out


# ---------------------------------------------------------------------------------------------- stage 1: facts


def _architecture(name: str | None) -> str:
    """'LlamaForCausalLM' and GGUF's 'llama' alike: lower case, without the head's suffix."""
    text = "".join(c for c in (name or "").lower() if c.isalnum())
    for suffix in ("forcausallm", "forconditionalgeneration", "lmheadmodel", "model"):
        text = text.removesuffix(suffix)
    return text


def _numbered(f: Facts) -> bool:
    return not f.vocab_source or tokens_are_numbers(f.vocab_source)


def shared_tokens(a: Facts, b: Facts, a_tokens: frozenset[str] | None = None) -> int:
    """How many kept tokens both probes read, as AWM matches them: by text; tokens that stand for their number only
    when the vocabulary sizes agree (as lineage.signals.hidden_alignment decides)."""
    if not a.embedding_rows or not b.embedding_rows:
        return 0
    if (_numbered(a) or _numbered(b)) and a.vocab_size != b.vocab_size:
        return 0
    mine = a_tokens if a_tokens is not None else frozenset(a.tokens)
    return len(mine.intersection(b.tokens))


def facts_match(model: Facts, entry: LibraryEntry, model_tokens: frozenset[str] | None = None) -> FactsMatch:
    """How ``entry``'s facts compare with the model's (``model_tokens``: the model's kept tokens as a set, when
    many entries are matched)."""
    f = entry.facts
    got: dict[str, float] = {}  # fact -> agreement 0..1, for the facts both sides have
    agree: list[str] = []
    differ: list[str] = []

    def fact(name: str, value: float, words: str) -> None:
        got[name] = value
        (agree if value >= 1 else differ).append(words)

    if model.hidden and f.hidden:
        fact(
            "width",
            float(model.hidden == f.hidden),
            f"width {f.hidden}" + ("" if model.hidden == f.hidden else f" (model: {model.hidden})"),
        )
    shape = [
        (x, y)
        for x, y in ((model.heads, f.heads), (model.kv_heads, f.kv_heads), (model.head_dim, f.head_dim))
        if x and y
    ]
    if shape:
        same = sum(x == y for x, y in shape) / len(shape)
        fact(
            "attention",
            same,
            f"{f.heads}/{f.kv_heads} heads of {f.head_dim}"
            + ("" if same == 1 else f" (model: {model.heads}/{model.kv_heads} of {model.head_dim})"),
        )
    if model.layers and f.layers:
        fact(
            "depth",
            min(model.layers, f.layers) / max(model.layers, f.layers),
            f"{f.layers} layers" + ("" if model.layers == f.layers else f" (model: {model.layers})"),
        )
    if model.vocab_size and f.vocab_size:
        same_vocab = model.vocab_size == f.vocab_size
        fact(
            "vocabulary",
            float(same_vocab),
            f"vocabulary of {f.vocab_size:,}" + ("" if same_vocab else f" (model: {model.vocab_size:,})"),
        )
    shared = shared_tokens(model, f, model_tokens)
    if model.tokens and f.tokens and not _numbered(model) and not _numbered(f):
        share = shared / max(1, min(len(model.tokens), len(f.tokens)))
        fact("tokens", share, f"{share:.0%} of the kept tokens shared")
    roles = model.vector_lengths.keys() | f.vector_lengths.keys()
    if roles:
        same_norms = sum(model.vector_lengths.get(r) == f.vector_lengths.get(r) for r in roles) / len(roles)
        fact(
            "norms",
            same_norms,
            "norms and biases of the same shapes" if same_norms == 1 else "norms or biases of other shapes",
        )
    if model.architecture and f.architecture:
        same_arch = _architecture(model.architecture) == _architecture(f.architecture)
        fact(
            "architecture",
            float(same_arch),
            f"architecture {f.architecture}" + ("" if same_arch else f" (model: {model.architecture})"),
        )
    if model.moe or f.moe:
        fact(
            "experts",
            float(model.experts == f.experts),
            f"{f.experts or 'no'} experts"
            + ("" if model.experts == f.experts else f" (model: {model.experts or 'dense'})"),
        )
    total = sum(_WEIGHTS[k] for k in got)
    score = sum(_WEIGHTS[k] * v for k, v in got.items()) / total if total else 0.0
    # the same width: weights compared position by position; shared tokens, or else the hidden dims' weight
    # profiles layer by layer (lineage.signals.profile_alignment): AWM lines the hidden dims up
    linkable = (
        bool(model.hidden and model.hidden == f.hidden)
        or shared >= MIN_SHARED_TOKENS
        or bool(model.layers and f.layers and model.vector_lengths and f.vector_lengths)
    )
    return FactsMatch(entry, score, linkable, tuple(agree), tuple(differ), shared)


def pick_candidates(
    model: Facts,
    entries: Iterable[LibraryEntry],
    *,
    max_candidates: int = MAX_CANDIDATES,
    closest: int = CLOSEST_BY_FACTS,
) -> tuple[list[FactsMatch], list[SetAside]]:
    """(entries to weigh, best first by facts; entries set aside, with why). Weighed: every entry some signal could
    link to the model, and the ``closest`` by facts whatever they are, ``max_candidates`` at most."""
    tokens = frozenset(model.tokens)
    ranked = sorted(
        (facts_match(model, e, tokens) for e in entries),
        # between equal facts, a model that declares no base (an original) before a derivative
        key=lambda m: (-m.score, -m.shared_tokens, bool(m.entry.declared_base), m.entry.model.lower()),
    )
    top = set(id(m) for m in ranked[:closest])
    picked = [m for m in ranked if m.linkable or id(m) in top][: max(0, max_candidates)]
    chosen = set(id(m) for m in picked)
    aside = [SetAside(m, "bound" if m.linkable else "no_link") for m in ranked if id(m) not in chosen]
    return picked, aside


# ---------------------------------------------------------------------------------------------- stage 2: verdicts


def _closeness(v: Verdict) -> tuple[float, ...]:
    """The decisive signals' values (element-wise, AWM, MoE): between verdicts of equal strength, the closer copy
    wins (a fine-tune's parent over the parent's quantized copy)."""
    return tuple(
        s.value
        if (s := v.signals.get(n)) is not None and s.available and s.value is not None and math.isfinite(s.value)
        else -math.inf
        for n in DECISIVE
    )


def rank_key(m: ScanMatch) -> tuple[object, ...]:
    """Related first, the strongest first; then no evidence, the closest first; then those that could not be judged
    or weighed."""
    v = m.verdict
    if v is None:
        return (3, 0.0, (), -m.facts.score)
    if v.related:
        return (0, -round(v.strength, 6), tuple(-x for x in _closeness(v)), -m.facts.score)
    if v.verdict == "no_evidence":
        return (1, 0.0, tuple(-x for x in _closeness(v)), -m.facts.score)
    return (2, 0.0, (), -m.facts.score)


class _Model:
    """The model scanned: its probe (named as the library would name it) and its σ fingerprint."""

    def __init__(self, probe: Probe, fingerprint: Fingerprint | None, name: str):
        self.probe = replace(probe, model=name) if probe.model != name else probe
        self.fingerprint = fingerprint
        self.name = name

    def verdict(self, other: Probe, other_fp: Fingerprint | None, why: str | None = None) -> Verdict:
        return verdict_from(self.probe, other, sigma_between(self.fingerprint, other_fp, why))


def _weigh(model: _Model, library: Library, match: FactsMatch) -> ScanMatch:
    entry = match.entry
    try:
        probe = library.probe(entry)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        return ScanMatch(entry, match, error=f"its probe file cannot be read ({exc}): add the model again")
    fp, why = None, None
    try:
        fp = library.fingerprint(entry)
    except (OSError, ValueError, KeyError) as exc:
        why = f"the library's σ fingerprint of {entry.model} cannot be read ({exc})"
    return ScanMatch(entry, match, model.verdict(replace(probe, model=entry.model), fp, why))


def _weigh_all(
    model: _Model,
    library: Library,
    picked: Sequence[FactsMatch],
    opts: Options,
    report: Callable[[ScanStep], None],
    workers: int,
) -> dict[str, ScanMatch]:
    """Every picked entry weighed, ``workers`` at once (the heavy steps - matrix products, the assignment of hidden
    dimensions - run outside Python's lock, so two threads use two cores), in the order picked. An entry not yet
    started when ``opts.cancel`` is set is left out."""
    started = itertools.count()
    lock = threading.Lock()

    def weigh(match: FactsMatch) -> ScanMatch | None:
        if opts.cancel is not None and opts.cancel.is_set():
            return None
        with lock:
            report(ScanStep("weighing", next(started), len(picked), match.entry.model))
        return _weigh(model, library, match)

    # each verdict on its own core: BLAS's own threads on top would oversubscribe the cores (measured: slower than
    # one verdict at a time)
    blas = threadpool_limits(limits=1, user_api="blas") if workers > 1 else contextlib.nullcontext()
    with blas, ThreadPoolExecutor(max(1, workers), thread_name_prefix="scan") as pool:
        done = list(pool.map(weigh, picked))
    return {m.entry.key: w for m, w in zip(picked, done, strict=True) if w is not None}


# ---------------------------------------------------------------------------------------------- the scan


def scan(
    reference_or_probe: str | Probe,
    library: Library,
    opts: Options | None = None,
    *,
    top: int = 5,
    budget: ProbeBudget | int | None = None,
    progress: Callable[[ScanStep], None] | None = None,
    fingerprint: Fingerprint | None = None,
    declared: Sequence[str] | None = None,
    max_candidates: int = MAX_CANDIDATES,
    fetch_declared: bool = False,
    add_declared: bool = False,
    resolve_declared: Callable[[str], str] | None = None,
    workers: int = 2,
) -> ScanResult:
    """Scan one model (a reference, read with the probe cache; or a probe already read) against ``library``.

    ``fingerprint`` (with a probe): its σ fingerprint (default: from the probe's own rows). ``declared``: the bases
    the model declares (default: read from a reference's model card or GGUF metadata; none for a probe).
    ``fetch_declared``: read a declared base that is not in the library (``budget`` and ``opts`` as for the model)
    and weigh it; ``add_declared``: then add it to the library when the library's folder is writable.
    ``resolve_declared``: the reference to read for a declared Hub id (default: the id itself).
    ``workers``: entries weighed at once. ``opts.cancel`` is checked between entries: what was weighed stays, and the
    result says it was cancelled.
    Raises FingerprintError when the model itself cannot be read."""
    opts = opts or Options()
    report = progress or (lambda step: None)
    clock = time.perf_counter()
    seconds: dict[str, float] = {}
    if isinstance(reference_or_probe, Probe):
        probe = reference_or_probe
        fp = fingerprint if fingerprint is not None else _own_fingerprint(probe)
        claims = tuple(dict.fromkeys(declared or ()))
        name = pinned_name(probe, fp)[0] if fp is not None else name_in_library(probe.model)
    else:
        reference = reference_or_probe
        report(ScanStep("reading", 0, 1, reference))
        read = read_model(
            reference,
            opts,
            budget=budget,
            progress=lambda p: report(ScanStep("reading", 0, 1, reference, p)),
        )
        probe, fp = read.probe, fingerprint or read.fingerprint
        claims = tuple(dict.fromkeys(declared)) if declared is not None else read.declared_base
        name = pinned_name(probe, fp)[0]
    model = _Model(probe, fp, name)
    facts = facts_of(probe)
    seconds["model"] = time.perf_counter() - clock

    clock = time.perf_counter()
    itself = tuple(e for e in library.entries if e.revision == probe.revision)
    others = [e for e in library.entries if e.revision != probe.revision]
    picked, set_aside = pick_candidates(facts, others, max_candidates=max_candidates)
    resolve = resolve_declared or (lambda name: name)
    declared_entries = {n: _find_declared(library, n, resolve(n)) for n in claims}
    for entry in declared_entries.values():  # a declared base in the library is always weighed
        if entry is not None and entry.revision != probe.revision and all(m.entry.key != entry.key for m in picked):
            kept = [s for s in set_aside if s.match.entry.key == entry.key]
            picked.append(kept[0].match if kept else facts_match(facts, entry))
            set_aside = [s for s in set_aside if s.match.entry.key != entry.key]
    seconds["facts"] = time.perf_counter() - clock

    clock = time.perf_counter()
    weighed = _weigh_all(model, library, picked, opts, report, workers)
    cancelled = len(weighed) < len(picked)
    seconds["verdicts"] = time.perf_counter() - clock

    clock = time.perf_counter()
    bases: list[DeclaredBase] = []
    for n in claims:
        if cancelled:
            break
        entry = declared_entries[n]
        if entry is not None and entry.revision == probe.revision:
            bases.append(DeclaredBase(n, "itself", entry.model))
        elif entry is not None:
            got = weighed.get(entry.key)
            verdict, note = (got.verdict, got.error or "") if got is not None else (None, "")
            bases.append(DeclaredBase(n, "library", entry.model, verdict, note=note))
        elif not fetch_declared:
            bases.append(DeclaredBase(n, "not_in_library"))
        else:
            report(ScanStep("declared", len(bases), len(claims), n))
            base, added = _fetch_declared(model, library, n, resolve(n), opts, budget, add_declared)
            bases.append(base)
            if added is not None:
                weighed[added.key] = ScanMatch(added, facts_match(facts, added), base.verdict)
    seconds["declared"] = time.perf_counter() - clock

    matches = tuple(sorted(weighed.values(), key=rank_key))
    closest = next((m for m in matches if m.related), None)
    return ScanResult(
        model=name,
        revision=probe.revision,
        facts=facts,
        library=str(library.path),
        library_size=len(library),
        top=top,
        matches=matches,
        set_aside=tuple(set_aside),
        itself=itself,
        declared=DeclaredCheck(tuple(bases), closest),
        cancelled=cancelled,
        seconds=seconds,
    )


def _own_fingerprint(probe: Probe) -> Fingerprint | None:
    """A probe's σ fingerprint from its own rows, named as a Hub or a local model as its name says."""
    try:
        ref = parse_reference(probe.model)
    except FingerprintError:
        return sigma.fingerprint_of(probe)
    return sigma.fingerprint_of(probe, source="local" if ref.kind == "local" else "hub", repo_id=ref.repo_id)


def _find_declared(library: Library, name: str, reference: str) -> LibraryEntry | None:
    """The library entry a declared base names: by its Hub id (any case, as the Hub resolves it), or by the name
    the library gives the reference it resolves to."""
    for key in dict.fromkeys((name, name_in_library(reference))):
        if (entry := library.find(key)) is not None:
            return entry
    low = name.lower()
    found = [e for e in library.entries if (e.repo_id or e.model.rsplit("@", 1)[0]).lower() == low]
    return max(found, key=lambda e: e.added_at) if found else None


def _fetch_declared(
    model: _Model,
    library: Library,
    name: str,
    reference: str,
    opts: Options,
    budget: ProbeBudget | int | None,
    add: bool,
) -> tuple[DeclaredBase, LibraryEntry | None]:
    """Read a declared base that is not in the library, weigh it, and add it when asked and allowed."""
    try:
        read = read_model(reference, opts, budget=budget)
    except Cancelled:
        return DeclaredBase(name, "unreadable", reference, note="cancelled"), None
    except FingerprintError as exc:
        return DeclaredBase(name, "unreadable", reference, note=str(exc)), None
    if read.probe.revision == model.probe.revision:
        return DeclaredBase(name, "itself", reference), None
    base_name = pinned_name(read.probe, read.fingerprint)[0]
    verdict = model.verdict(replace(read.probe, model=base_name), read.fingerprint)
    if not add:
        return DeclaredBase(name, "fetched", base_name, verdict), None
    if not os.access(library.path, os.W_OK):
        return DeclaredBase(name, "fetched", base_name, verdict, note="the library's folder is not writable"), None
    try:
        entry = library.add(read.probe, read.fingerprint, declared_base=read.declared_base)
    except OSError as exc:
        return DeclaredBase(name, "fetched", base_name, verdict, note=f"could not be added ({exc})"), None
    return DeclaredBase(name, "fetched", entry.model, verdict, added=True), entry
