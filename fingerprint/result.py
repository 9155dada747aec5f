"""The fingerprint object and its stable JSON form (see SCHEMA.md for the documented schema)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

SCHEMA_VERSION = 1

Mode = Literal["exact", "sampled"]  # how a fingerprint was read: every element, or row blocks spread over each tensor
ModeChoice = Literal["auto", "exact", "sampled"]  # auto: exact when the needed tensors are small, else sampled
WeightFormat = Literal["safetensors", "gguf", "pytorch"]  # pytorch: a torch.save zip, read without unpickling
Source = Literal["hub", "local"]
Access = Literal["public", "gated", "private", "local", "unknown"]  # who may be shown a result


@dataclass(frozen=True)
class Fingerprint:
    """One model's σ-curves and the provenance of its numbers; never changed once built (``dataclasses.replace``
    makes a copy under another name)."""

    model: str  # the reference as given: org/name, org/name@rev, a path
    revision: str  # commit sha (Hub) or "sha256:<hex>" (local files)
    source: Source
    format: WeightFormat
    architecture: str | None
    layers: int
    mode: Mode
    curves: dict[str, list[float | None]]  # role -> per-layer population std (None: layer lacks the role)
    stats: dict[str, dict[str, list[float | None]]]  # role -> {mean, rms, std_err, mean_err, rms_err}
    bytes_read: int
    bytes_total: int  # size of the weight files
    tool_version: str
    computed_at: str  # ISO 8601 UTC
    repo_id: str | None = None
    files: list[dict[str, Any]] = field(default_factory=list)  # [{name, size, sha256?}]
    config: dict[str, Any] = field(default_factory=dict)  # heads, kv heads, head_dim, hidden size as found
    notes: list[str] = field(default_factory=list)
    # who may be shown it: "public", "gated" or "private" (Hub), "local"; "unknown" in files written before this
    # field existed. A cached gated or private result is shown only after the Hub confirms the caller's access.
    access: Access = "unknown"
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["curves"] = {r: [_num(v) for v in vals] for r, vals in self.curves.items()}
        d["stats"] = {r: {k: [_num(v) for v in vals] for k, vals in s.items()} for r, s in self.stats.items()}
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Fingerprint:
        version = d.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"fingerprint schema_version {version!r} is not {SCHEMA_VERSION}")
        known = {f for f in cls.__dataclass_fields__}
        fp = cls(**{k: v for k, v in d.items() if k in known})
        fp.check()
        return fp

    def check(self) -> None:
        """Raise ValueError unless every field has the type the rest of the tool relies on (a cache row or a
        JSON file may have been edited or damaged)."""
        for name in ("model", "revision", "source", "format", "mode", "tool_version", "computed_at"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"fingerprint field {name} is not a string")
        if not isinstance(self.layers, int) or isinstance(self.layers, bool) or not 0 < self.layers < 100_000:
            raise ValueError("fingerprint field layers is not a layer count")
        for name in ("bytes_read", "bytes_total"):
            if not isinstance(getattr(self, name), int):
                raise ValueError(f"fingerprint field {name} is not an integer")
        if not isinstance(self.curves, dict) or not self.curves:
            raise ValueError("fingerprint has no curves")
        for role, values in self.curves.items():
            if not isinstance(role, str) or not _numbers(values, self.layers):
                raise ValueError(f"fingerprint curve {role!r} is not {self.layers} numbers")
        if not isinstance(self.stats, dict) or not all(
            isinstance(s, dict) and all(_numbers(v, self.layers) for v in s.values()) for s in self.stats.values()
        ):
            raise ValueError("fingerprint stats are not per-layer numbers")
        if not isinstance(self.notes, list) or not isinstance(self.files, list) or not isinstance(self.config, dict):
            raise ValueError("fingerprint notes, files or config have the wrong type")

    @property
    def roles(self) -> list[str]:
        return list(self.curves)

    @property
    def short_revision(self) -> str:
        return self.revision.removeprefix("sha256:")[:12]


def _numbers(values: object, n: int) -> bool:
    return (
        isinstance(values, list)
        and len(values) == n
        and all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values)
    )


def _num(v: float | None) -> float | None:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return None
    return float(v)
