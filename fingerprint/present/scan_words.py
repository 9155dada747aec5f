"""A library scan in words: the table of the closest known models with their verdicts, what the model declares
against what its weights show, and what was set aside - for the terminal (``scan_text``) and as JSON
(``scan_json``). No plotly here."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import PurePath
from typing import Any

from .. import __version__
from ..library.scan import SET_ASIDE_REASONS, DeclaredBase, DeclaredCheck, ScanMatch, ScanResult
from ..lineage.verdict import DECISIVE, Verdict
from .evidence_words import relation_short, strength_phrase
from .formatting import number_or_na
from .terminal_text import text_table

NO_KNOWN_BASE = "no known base matches"
FACTS_AGREE = (
    "facts agree: how far the library model's shapes, depth and vocabulary agree with this one's (0 to 1); the "
    "verdict rests on the weights alone."
)
# the evidence a scan row shows: the decisive signals, then the weaker ones
_EVIDENCE = {"elementwise": "weights r", "awm": "AWM", "moe": "MoE", "vectors": "norms r", "sigma": "σ r"}


def closest_text(result: ScanResult) -> str:
    """The answer in one line: the closest known base and how it relates, or that none matches."""
    m = result.closest
    if m is None or m.verdict is None:
        return "No known base matches: no library entry weighed is related (which is not proof of independence)"
    return f"Closest known: {m.entry.model} - {m.verdict.sentence}; {strength_phrase(m.verdict)}"


def _base_text(b: DeclaredBase) -> str:
    v = b.verdict
    found, note = "", ""
    if b.how == "fetched":  # not in the library: read to check it
        found = f" (not in the library; read as {b.found}{', and added to it' if b.added else ''})"
        note = f" ({b.note})" if b.note else ""
    if b.how == "itself":
        return f"declares {b.name}, which is this very model"
    if b.how == "not_in_library":
        return f"declares {b.name}, which is not in the library (not read: fetching declared bases was not asked for)"
    if b.how == "unreadable":
        return f"declares {b.name}, which is not in the library and could not be read: {b.note}"
    if v is None:
        return f"declares {b.name} - it could not be weighed" + (f": {b.note}" if b.note else "")
    if v.related:
        return f"declares {b.name}{found} - the weights are consistent with {b.name} ({relation_short(v)}){note}"
    if v.verdict == "no_evidence":
        return f"declares {b.name}{found} - no evidence for {b.name}{note}"
    return f"declares {b.name}{found} - {b.name} could not be judged ({strength_phrase(v)}){note}"


def declared_text(check: DeclaredCheck) -> str:
    """Declared against measured, e.g. 'declares X - the weights are consistent with X (fine-tune)', 'declares X -
    no evidence for X; closest known: Y', 'declares nothing - closest known: Y'."""
    c = check.closest
    closest = (
        f"closest known: {c.entry.model} ({relation_short(c.verdict)})"
        if c is not None and c.verdict
        else NO_KNOWN_BASE
    )
    if not check.bases:
        return f"declares nothing - {closest}"
    text = "; ".join(_base_text(b) for b in check.bases)
    declared_models = {b.found for b in check.bases if b.verdict is not None and b.verdict.related}
    if check.outcome != "consistent" or (c is not None and c.entry.model not in declared_models):
        text += f"; {closest}"
    return text


def revision_text(revision: str) -> str:
    """Which weights were read: 'Hub commit <sha>', or 'content hash sha256:<hex> (a local model)'."""
    if revision.startswith("sha256:"):
        return f"content hash {revision} (a local model)"
    if len(revision) == 40 and all(c in "0123456789abcdef" for c in revision):
        return f"Hub commit {revision}"
    return revision


def with_evidence(result: ScanResult) -> tuple[ScanMatch, ...]:
    """The candidates of the table (``scan_rows``) that have a verdict, in its order: the strongest first."""
    return tuple(m for m in result.best if m.verdict is not None)


def candidate_label(m: ScanMatch) -> str:
    """A candidate in a list: 'stories260k (quantized copy)'."""
    return (
        f"{m.entry.model} ({relation_short(m.verdict)})" if m.verdict is not None else f"{m.entry.model} (not weighed)"
    )


def _evidence(v: Verdict) -> str:
    return ", ".join(
        f"{label} {number_or_na(s.value)}"
        for name, label in _EVIDENCE.items()
        if (s := v.signals.get(name)) is not None and s.available
    )


def _row(rank: int, m: ScanMatch) -> list[str]:
    v = m.verdict
    if v is None:
        return [str(rank), m.entry.model, "not weighed", m.error or "", "", f"{m.facts.score:.2f}"]
    return [str(rank), m.entry.model, relation_short(v), strength_phrase(v), _evidence(v), f"{m.facts.score:.2f}"]


def _not_checked(matches: tuple[ScanMatch, ...]) -> list[tuple[str, str]]:
    """(entry, what could not be checked and why): every signal of a verdict that could be reached; for one that
    could not ("can't tell"), only why the decisive signals could not be computed."""
    out = []
    for m in matches:
        v = m.verdict
        if v is None:
            continue
        if v.verdict == "insufficient_data":
            why = [s.reason for n in DECISIVE if (s := v.signals.get(n)) is not None and not s.available and s.reason]
            reasons = [r for r in why if not r.startswith("does not apply")]
            out.append((m.entry.model, "nothing decisive: " + "; ".join(reasons)))
        else:
            out += [(m.entry.model, n) for n in v.not_checked]
    return out


def set_aside_text(result: ScanResult) -> str:
    """How many entries were not weighed, and why ('' when none was)."""
    counts = result.set_aside_counts
    if not counts:
        return ""
    parts = [f"{n} entr{'y' if n == 1 else 'ies'}: {SET_ASIDE_REASONS[reason]}" for reason, n in counts.items()]
    return "Set aside by their facts, not weighed: " + "; ".join(parts)


def scan_text(result: ScanResult) -> str:
    """What ``scan`` prints: the answer, declared against measured, the top entries with their verdicts, what
    could not be checked, what was set aside."""
    lines = [
        f"{result.model}  against the library {PurePath(result.library).name} ({result.library_size} entries)",
        "",
    ]
    if result.itself:
        lines.append(f"This exact model is in the library: {', '.join(e.model for e in result.itself)} (not compared)")
    lines.append(closest_text(result))
    lines.append("Declared base: " + declared_text(result.declared))
    if result.cancelled:
        lines.append("Cancelled: only the entries weighed before are shown.")
    best = result.best
    if best:
        rows = [_row(i, m) for i, m in enumerate(best, start=1)]
        lines += ["", text_table(rows, ["#", "library entry", "verdict", "strength", "evidence", "facts"])]
        if len(result.matches) > len(best):
            lines.append(f"({len(result.matches) - len(best)} more weighed, none of them closer)")
    else:
        lines += ["", "No library entry was weighed."]
    if unchecked := _not_checked(best):
        lines += ["", "Could not be checked:"] + [f"  - {model}: {n}" for model, n in unchecked]
    if aside := set_aside_text(result):
        lines += ["", aside]
    lines += [
        "",
        "facts: how far the library entry's shapes, depth and vocabulary agree with the model's (0 to 1); the "
        "verdict rests on the weights alone, and no verdict proves or disproves derivation.",
    ]
    return "\n".join(lines)


def _match_json(rank: int, m: ScanMatch) -> dict[str, Any]:
    e = m.entry
    d: dict[str, Any] = {
        "rank": rank,
        "model": e.model,
        "repo_id": e.repo_id,
        "revision": e.revision,
        "family": e.family,
        "declared_base": list(e.declared_base),
        "facts": {
            "score": round(m.facts.score, 4),
            "linkable": m.facts.linkable,
            "shared_tokens": m.facts.shared_tokens,
            "agree": list(m.facts.agree),
            "differ": list(m.facts.differ),
        },
        "related": m.related,
        "error": m.error,
    }
    if m.verdict is not None:
        d["verdict"] = {**m.verdict.to_json(), "strength_text": strength_phrase(m.verdict)}
    else:
        d["verdict"] = None
    return d


def _base_json(b: DeclaredBase) -> dict[str, Any]:
    return {
        "name": b.name,
        "how": b.how,
        "found": b.found,
        "verdict": b.verdict.verdict if b.verdict is not None else None,
        "related": b.verdict.related if b.verdict is not None else None,
        "strength": round(b.verdict.strength, 3) if b.verdict is not None else None,
        "added": b.added,
        "note": b.note,
    }


def scan_json(result: ScanResult) -> str:
    """The scan for ``--json``: the top entries with their whole verdicts (every signal, placement, what could not
    be checked), the declared check in words and as data, the entries set aside and why."""
    closest = result.closest
    payload = {
        "tool": "llm-fingerprint",
        "tool_version": __version__,
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": result.model,
        "revision": result.revision,
        "library": {"name": PurePath(result.library).name, "entries": result.library_size},
        "in_library": [e.model for e in result.itself],
        "closest": closest.entry.model if closest is not None else None,
        "answer": closest_text(result),
        "declared": {
            "outcome": result.declared.outcome,
            "text": declared_text(result.declared),
            "bases": [_base_json(b) for b in result.declared.bases],
        },
        "top": [_match_json(i, m) for i, m in enumerate(result.best, start=1)],
        "weighed": len(result.matches),
        "set_aside": {
            "counts": {reason: n for reason, n in result.set_aside_counts.items()},
            "reasons": {reason: SET_ASIDE_REASONS[reason] for reason in result.set_aside_counts},
            "entries": [
                {"model": s.match.entry.model, "reason": s.reason, "facts_score": round(s.match.score, 4)}
                for s in result.set_aside
            ],
        },
        "cancelled": result.cancelled,
        "seconds": {k: round(v, 3) for k, v in result.seconds.items()},
    }
    return json.dumps(payload, indent=1, ensure_ascii=False)


def scan_rows(result: ScanResult) -> list[dict[str, str]]:
    """The top entries as a table for a page or a CSV: rank, library entry, verdict, how strong, the evidence."""
    rows = []
    for rank, m in enumerate(result.best, start=1):
        v = m.verdict
        rows.append(
            {
                "rank": str(rank),
                "library entry": m.entry.model,
                "family": m.entry.family,
                "verdict": relation_short(v) if v is not None else "not weighed",
                "how strong": strength_phrase(v) if v is not None else (m.error or ""),
                "evidence": _evidence(v) if v is not None else "",
                "facts agree": f"{m.facts.score:.2f}",
            }
        )
    return rows
