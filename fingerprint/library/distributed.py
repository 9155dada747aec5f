"""Run one piece of work per model over many models: on a thread pool here, or as Ray tasks across a cluster.

    for reference, outcome in run_per_model(partial(build_entry, ...), references, ray="local", hub_slots=8):
        ...  # outcome: what work(reference) returned, or the exception it raised

Outcomes arrive as models finish. One model's failure is its outcome; the others carry on. A transient network
failure (NetworkError, Offline) is tried again, up to ``retries`` times; nothing else is (a missing repository
stays missing). Both ways give the same outcomes; Ray also runs a model again when its worker or node dies, and
runs past one machine.

How many models read the Hub at once: ``hub_slots`` and the ``hf_hub`` resource
-------------------------------------------------------------------------------
The Hub counts requests per IP (anonymous) or per account (with a token) in 5-minute windows: an anonymous IP
gets 500 API calls and 3,000 resolver calls. A model costs 1 API call and one resolver call per file read (2-5);
its hundreds of Range reads go to the storage host, which those quotas do not count (BENCHMARKS.md, section 4).
What spends a quota is how many models start per window, so what is capped is how many are read at once:

- no ``ray``: ``hub_slots`` threads, drawing on this process's rate limiter (sources/ratelimit.py).
- ``ray="local"``: the runner starts a one-machine Ray cluster that advertises ``hub_slots`` units of the
  custom resource ``hf_hub``; each task needs one unit, so at most ``hub_slots`` models are read at once.
- ``ray="<address>"``: each node advertises its own units when it starts (``ray start --resources='{"hf_hub":
  8}'``; on KubeRay, ``rayStartParams`` of a worker group), sized for its egress. A node with its own IP and no
  token has its own anonymous quota: its units bound its share. Nodes that share one quota (one NAT address,
  or one token for the whole cluster) share it: their units summed are the cap. ``hub_slots``, if given, caps
  this run across the cluster as well: at most that many of its models are in flight at once, wherever they
  run (Ray's pattern for limiting pending tasks with ``ray.wait``). Every worker process's rate limiter learns
  what is left of a window from the Hub's RateLimit headers, so processes sharing a quota wait rather than fail.

The token never passes through Ray
----------------------------------
``work`` reads the Hub as huggingface_hub does on the machine that runs it: HF_TOKEN, or the login there. A
local cluster's workers inherit this process's environment; a cluster's nodes take HF_TOKEN from their own
(on KubeRay, a Kubernetes Secret in the worker pods' env). The token is never a task's name, option or
runtime_env: Ray's dashboard and state API (``ray list tasks --detail``) show each task's runtime_env, its
env_vars included. Give ``work`` no token argument when it runs on Ray (Options(token=None)).
"""

from __future__ import annotations

import logging
import socket
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar

from .. import __version__
from ..errors import FingerprintError, NetworkError, Offline

R = TypeVar("R")

HUB_RESOURCE = "hf_hub"  # the Ray custom resource a task needs one unit of: one model read from the Hub
DEFAULT_HUB_SLOTS = 4  # threads, or a local Ray cluster's hf_hub units
DEFAULT_RETRIES = 2  # runs after the first, on a transient network failure (Ray: or a dead worker or node)
TRANSIENT: tuple[type[Exception], ...] = (NetworkError, Offline)
# Memory Ray reserves for each task, so that a small node is not handed more models than it holds: a process
# probing a pair of 7B-shaped models peaked at 566 MiB (BENCHMARKS.md, section 4); one model per worker stays below.
TASK_MEMORY = 768 * 2**20


class RayNotInstalled(FingerprintError):
    fix = "Install it with pip install '.[scale]' (from a checkout) or pip install 'llm-fingerprint[scale]'."


class ClusterNotReady(FingerprintError):
    """The Ray cluster cannot run this work as it is: no hf_hub resource, or another llm-fingerprint version."""


@dataclass(frozen=True)
class RunProgress:
    """Where a run stands, told in the caller's thread: once when it has started, then after each model."""

    done: int
    total: int
    reference: str | None = None  # the model that has just finished; None: the run has started
    error: Exception | None = None  # what that model failed with
    where: str = ""  # e.g. "4 threads", "a local Ray cluster (4 hf_hub slots)"


ProgressFn = Callable[[RunProgress], None]


def run_per_model(
    work: Callable[[str], R],
    references: Iterable[str],
    *,
    ray: str | None = None,
    hub_slots: int | None = None,
    retries: int = DEFAULT_RETRIES,
    progress: ProgressFn | None = None,
) -> Iterator[tuple[str, R | Exception]]:
    """``work(reference)`` for each reference (duplicates once), yielding ``(reference, result or exception)``
    as each model finishes.

    ``ray``: None runs on ``hub_slots`` threads here; "local" starts a Ray cluster on this machine for the
    run and stops it after; any other value is the address of a running cluster, as ``ray.init(address=...)``
    takes it ("auto", "host:6379", "ray://host:10001"), which is left running. ``work`` must pickle for Ray:
    a top-level function, or ``functools.partial`` of one with picklable arguments (no threading.Event, no
    open Store). ``hub_slots``: how many models are read at once (see the module's docstring); on a cluster,
    None leaves the cap to the nodes' hf_hub units. ``retries``: further runs of a model after a transient
    network failure. Raised here, before anything runs: bad arguments, a missing Ray, work that cannot be
    pickled, an address nothing answers at. Stopping early (closing the iterator) cancels the models not yet
    finished. On a cluster every result travels back to this process: return what the caller keeps."""
    if hub_slots is not None and (isinstance(hub_slots, bool) or not isinstance(hub_slots, int) or hub_slots < 1):
        raise ValueError(f"hub_slots must be a whole number of at least 1, not {hub_slots!r}")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be a whole number of at least 0, not {retries!r}")
    unique = list(dict.fromkeys(references))
    report = progress or (lambda _p: None)
    if ray is None:
        return _on_threads(work, unique, hub_slots or DEFAULT_HUB_SLOTS, retries, report)
    ray_module = import_ray()
    _check_sendable(ray_module, work)
    if ray != "local":
        _check_reachable(ray)
    return _on_ray(ray_module, ray, work, unique, hub_slots, retries, report)


def import_ray() -> ModuleType:
    """The ray package, or RayNotInstalled saying how to install it. Only the Ray path imports it."""
    try:
        import ray
    except ImportError:
        raise RayNotInstalled("running on Ray needs the ray package, which is not installed") from None
    return ray


# ---- threads ----


def _on_threads(
    work: Callable[[str], R], references: list[str], slots: int, retries: int, report: ProgressFn
) -> Iterator[tuple[str, R | Exception]]:
    pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="model")
    try:
        futures = {pool.submit(_with_retries, work, ref, retries): ref for ref in references}
        report(RunProgress(0, len(references), where=f"{slots} thread{'s' if slots > 1 else ''}"))
        for done, future in enumerate(as_completed(futures), 1):
            reference, outcome = futures[future], _thread_outcome(future)
            report(RunProgress(done, len(references), reference, _error(outcome)))
            yield reference, outcome
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # models already running finish; none start


def _with_retries(work: Callable[[str], R], reference: str, retries: int) -> R:
    """What Ray's retry_exceptions does for a task, for a thread: run again on a transient failure."""
    failures = 0
    while True:
        try:
            return work(reference)
        except TRANSIENT:
            failures += 1
            if failures > retries:
                raise


def _thread_outcome(future: Future[R]) -> R | Exception:
    exc = future.exception()
    if exc is None:
        return future.result()
    if isinstance(exc, Exception):
        return exc
    raise exc  # KeyboardInterrupt, SystemExit: not one model's failure


def _error(outcome: object) -> Exception | None:
    return outcome if isinstance(outcome, Exception) else None


# ---- Ray ----


def _run_one(work: Callable[[str], R], reference: str, tool_version: str) -> R:
    """One Ray task: ``work(reference)`` on a worker, refused when the worker's llm-fingerprint is not the
    caller's (a library must not mix the probes of two versions)."""
    if tool_version != __version__:
        raise ClusterNotReady(
            f"this Ray worker has llm-fingerprint {__version__}, the caller {tool_version}",
            f"Install llm-fingerprint {tool_version} on the cluster's nodes (the same as the caller's).",
            model=reference,
        )
    return work(reference)


def _check_sendable(ray: ModuleType, work: Callable[[str], Any]) -> None:
    """Refuse work that cannot travel to a worker, before any cluster starts. Tried here rather than left to
    ray.put, whose error prints the arguments' reprs (an Options would show its token)."""
    try:
        ray.cloudpickle.dumps(work)
    except Exception as exc:
        raise TypeError(
            f"work cannot be sent to Ray workers ({type(exc).__name__}: {exc}): give a top-level function, "
            "or functools.partial of one with picklable arguments (no threading.Event, no open Store)"
        ) from None


CONNECT_TIMEOUT = 10.0  # seconds to open a TCP connection to a cluster's address


def _check_reachable(address: str) -> None:
    """Refuse an address nothing answers at: ray.init would retry it for ever (measured: still waiting after
    400 s). "auto" and what is not host:port are left to ray.init."""
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise ClusterNotReady(
            f"nothing answers at the Ray cluster address {address} ({exc.strerror or type(exc).__name__})",
            "Give the head node's address: host:6379 from a machine of the cluster's network, or ray://host:10001 "
            "(Ray Client; the scale extra installs it).",
        ) from None


def _on_ray(
    ray: ModuleType,
    address: str,
    work: Callable[[str], R],
    references: list[str],
    hub_slots: int | None,
    retries: int,
    report: ProgressFn,
) -> Iterator[tuple[str, R | Exception]]:
    local = address == "local"
    slots = hub_slots or DEFAULT_HUB_SLOTS
    owned = not ray.is_initialized()  # a connection the caller already has is used, and left open
    if owned and local:
        # address="local" starts a new cluster even when RAY_ADDRESS names another; no dashboard (nobody
        # watches a one-machine run; without it Ray starts faster and reports no usage statistics)
        ray.init(
            address="local", resources={HUB_RESOURCE: slots}, include_dashboard=False, logging_level=logging.WARNING
        )
    elif owned:
        ray.init(address=address, logging_level=logging.WARNING)
    pending: dict[Any, str] = {}  # ObjectRef -> reference
    try:
        units = float(ray.cluster_resources().get(HUB_RESOURCE, 0))
        if units <= 0:
            raise ClusterNotReady(
                f"the Ray cluster at {address} has no {HUB_RESOURCE!r} resource, so no task would ever start",
                f"Start its nodes with ray start ... --resources='{{\"{HUB_RESOURCE}\": 8}}' (KubeRay: "
                f"rayStartParams resources on the worker groups; a group that scales from zero needs minReplicas "
                f"of 1 or more).",
            )
        cap = hub_slots if not local else None  # local: the cluster's own hf_hub units are the cap
        task = ray.remote(
            num_cpus=0,  # the hf_hub units are the cap, as threads are; a model's reads mostly wait on the network
            memory=TASK_MEMORY,
            resources={HUB_RESOURCE: 1},
            max_retries=retries,
            retry_exceptions=list(TRANSIENT),
        )(_run_one)
        shared = ray.put(work)  # once, however many models
        where = (
            f"a local Ray cluster ({slots} {HUB_RESOURCE} slots)"
            if local
            else f"the Ray cluster at {address} ({units:g} {HUB_RESOURCE} slots"
            + (f", at most {cap} of this run's models at once)" if cap else ")")
        )
        report(RunProgress(0, len(references), where=where))
        waiting = deque(references)
        done = 0
        while waiting or pending:
            while waiting and (cap is None or len(pending) < cap):
                reference = waiting.popleft()
                pending[task.options(name=reference).remote(shared, reference, __version__)] = reference
            ready, _ = ray.wait(list(pending), num_returns=1)
            reference = pending.pop(ready[0])
            outcome = _ray_outcome(ray, ready[0])
            done += 1
            report(RunProgress(done, len(references), reference, _error(outcome)))
            yield reference, outcome
    finally:
        for ref in pending:  # stopped early: the models not yet finished are not needed
            ray.cancel(ref)
        if owned:
            ray.shutdown()  # a local cluster stops; a cluster at an address only loses this connection


def _ray_outcome(ray: ModuleType, ref: Any) -> Any:
    """A task's return value, or the exception ``work`` raised (as the thread pool gives it), or Ray's own
    error when the task could not finish (its worker or node died more often than the retries allowed)."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        return exc.cause if isinstance(exc.cause, Exception) else exc
    except ray.exceptions.RayError as exc:
        return exc
