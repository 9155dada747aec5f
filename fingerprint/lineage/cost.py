"""What the lineage evidence of some models will cost before anything is read: which models still need a probe
(neither already read nor in the probe cache), at most how many bytes that reads, and at most how many requests
it sends to the Hub - whose rate limit every visitor of a shared server shares."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from ..fingerprinting import Options
from ..result import Fingerprint
from .evidence import probe_cached
from .plan import ProbeBudget, as_budget


@dataclass(frozen=True)
class ProbeCost:
    to_read: tuple[str, ...]  # model keys whose probe must be read
    bytes: int  # at most, over them
    hub_models: int  # how many of them are read from the Hub
    hub_requests: int  # at most, over those

    @property
    def free(self) -> bool:
        return not self.to_read

    def cheap(self, max_bytes: int) -> bool:
        """Small enough to start without asking: nothing from the Hub (a probe is up to a third of an anonymous
        IP's 5-minute request allowance, and a shared server's visitors share one IP), and at most ``max_bytes``
        read from this machine's disk."""
        return self.hub_models == 0 and self.bytes <= max_bytes


def probe_cost(
    fingerprints: Mapping[str, Fingerprint],
    have: Collection[str] = (),
    opts: Options | None = None,
    *,
    budget: ProbeBudget | int | None = None,
) -> ProbeCost:
    """The cost of the probes of these models (model key -> its fingerprint, for the size and the revision);
    ``have``: keys whose probe is already in memory."""
    budget = as_budget(budget)
    to_read, total, hub, requests = [], 0, 0, 0
    for key, fp in fingerprints.items():
        if key in have or probe_cached(key, fp.revision, opts, budget=budget):
            continue
        to_read.append(key)
        total += min(fp.bytes_total, budget.bytes) if fp.bytes_total > 0 else budget.bytes
        if fp.source == "hub":
            hub += 1
            requests += budget.requests
    return ProbeCost(tuple(to_read), total, hub, requests)
