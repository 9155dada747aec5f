"""run_per_model: one piece of work per model, on threads or as Ray tasks, with the same outcomes.

The work is real: each model's lineage probe, read from the four demo models, plus a path that does not exist
and two scripted models (one that fails once with a network error, one whose repository is missing). The tests
marked ``ray`` are CI's Ray run: a real local Ray cluster (a second one stands in for a cluster at an address).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from fingerprint.demo import demo_paths
from fingerprint.errors import BadReference, NetworkError, RepoNotFound
from fingerprint.fingerprinting import Options
from fingerprint.library import distributed
from fingerprint.library.distributed import ClusterNotReady, RayNotInstalled, RunProgress, run_per_model
from fingerprint.lineage.evidence import get_probe
from fingerprint.lineage.probe import Probe

ROOT = Path(__file__).resolve().parent.parent
MISSING = "/no/such/model/folder"
TRANSIENT = "scripted/fails-once-with-a-network-error"
GONE = "scripted/repository-deleted"
CRASH = "scripted/worker-dies-once"
MODELS = [*demo_paths(), MISSING, TRANSIENT, GONE]


def probe_or_scripted(folder: str, reference: str) -> Probe | str:
    """The work of the tests (top level, so that Ray can send it): reads the model's probe, or does what a
    scripted model says. Each attempt is logged ("start REF", then "end REF" when it succeeds) in a file that
    threads and Ray workers alike append to."""
    log = Path(folder) / "events.log"
    attempt = 1 + sum(line == f"start {reference}" for line in _lines(log))
    _append(log, f"start {reference}")
    if reference == TRANSIENT and attempt == 1:
        raise NetworkError("the Hub answered HTTP 503", model=reference)
    if reference == GONE:
        raise RepoNotFound(f"{reference} was not found on the Hub (or is private)", model=reference)
    if reference == CRASH and attempt == 1:
        os._exit(1)  # the worker process dies, as when the machine kills it
    outcome = f"read on attempt {attempt}" if reference.startswith("scripted/") else get_probe(reference, NO_CACHE)[0]
    _append(log, f"end {reference}")
    return outcome


NO_CACHE = Options(use_cache=False)  # every run reads the models itself


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _append(path: Path, line: str) -> None:
    with open(path, "a") as f:  # one short write in append mode: lines from several processes never interleave
        f.write(line + "\n")


def events(folder: Path) -> list[str]:
    return _lines(folder / "events.log")


def attempts_of(folder: Path) -> dict[str, int]:
    starts = [line.split(" ", 1)[1] for line in events(folder) if line.startswith("start ")]
    return {ref: starts.count(ref) for ref in set(starts)}


def run(tmp_path: Path, references: list[str], **how: object) -> tuple[dict[str, object], dict[str, int]]:
    folder = tmp_path / f"log-{how.get('ray') or 'threads'}"
    folder.mkdir()
    outcomes = dict(run_per_model(partial(probe_or_scripted, str(folder)), references, **how))
    return outcomes, attempts_of(folder)


def assert_same_probe(a: Probe, b: Probe) -> None:
    meta_a, meta_b = a.meta(), b.meta()
    meta_a.pop("computed_at"), meta_b.pop("computed_at")
    assert meta_a == meta_b
    assert a.vectors.keys() == b.vectors.keys() and a.matrices.keys() == b.matrices.keys()
    for role, layers in a.vectors.items():
        assert layers.keys() == b.vectors[role].keys()
        for layer, v in layers.items():
            np.testing.assert_array_equal(v, b.vectors[role][layer])
    for role, layers in a.matrices.items():
        assert layers.keys() == b.matrices[role].keys()
        for layer, s in layers.items():
            np.testing.assert_array_equal(s.rows, b.matrices[role][layer].rows)
            np.testing.assert_array_equal(s.kept, b.matrices[role][layer].kept)
    assert (a.embedding_rows is None) == (b.embedding_rows is None)
    if a.embedding_rows is not None and b.embedding_rows is not None:
        np.testing.assert_array_equal(a.embedding_rows.kept, b.embedding_rows.kept)


def assert_expected_outcomes(outcomes: dict[str, object], attempts: dict[str, int], retries: int) -> None:
    for path in demo_paths():
        probe = outcomes[path]
        assert isinstance(probe, Probe), f"{path}: {probe!r}"
        assert probe.model == path and probe.n_layers == 5 and probe.matrices
    missing = outcomes[MISSING]
    assert isinstance(missing, BadReference) and missing.model == MISSING
    assert "no such file or folder" in str(missing)
    gone = outcomes[GONE]
    assert isinstance(gone, RepoNotFound) and gone.model == GONE
    assert attempts[GONE] == 1  # a missing repository is not tried again
    if retries:
        assert outcomes[TRANSIENT] == "read on attempt 2" and attempts[TRANSIENT] == 2
    else:
        assert isinstance(outcomes[TRANSIENT], NetworkError) and attempts[TRANSIENT] == 1
    assert all(attempts[path] == 1 for path in demo_paths())


@pytest.fixture(scope="module")
def on_threads(tmp_path_factory) -> dict[str, object]:
    outcomes, attempts = run(tmp_path_factory.mktemp("threads"), MODELS, hub_slots=2, retries=1)
    assert_expected_outcomes(outcomes, attempts, retries=1)
    return outcomes


def test_threads_read_every_model_and_report_each_failure_without_stopping_the_others(tmp_path):
    seen: list[RunProgress] = []
    outcomes, attempts = run(tmp_path, [*MODELS, MODELS[0]], hub_slots=3, retries=1, progress=seen.append)
    assert set(outcomes) == set(MODELS)  # the duplicate is read once: attempts and progress count it once
    assert_expected_outcomes(outcomes, attempts, retries=1)
    assert seen[0] == RunProgress(0, len(MODELS), where="3 threads")
    assert [p.done for p in seen[1:]] == list(range(1, len(MODELS) + 1))
    assert {p.reference for p in seen[1:]} == set(MODELS)
    assert {p.reference for p in seen[1:] if p.error is not None} == {MISSING, GONE}  # TRANSIENT: read on a retry


def test_a_transient_failure_is_reported_when_no_retry_is_allowed(tmp_path):
    outcomes, attempts = run(tmp_path, MODELS, retries=0)
    assert_expected_outcomes(outcomes, attempts, retries=0)


def test_bad_arguments_are_refused_before_anything_runs(tmp_path):
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="hub_slots"):
            run_per_model(str, ["a"], hub_slots=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="retries"):
        run_per_model(str, ["a"], retries=-1)


def test_without_ray_installed_the_ray_path_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails as when it is not installed
    with pytest.raises(RayNotInstalled) as caught:
        run_per_model(str, ["a"], ray="local")
    assert "pip install '.[scale]'" in str(caught.value)


def test_the_thread_path_never_imports_ray():
    code = textwrap.dedent(
        """
        import sys
        from fingerprint.library.distributed import run_per_model
        assert dict(run_per_model(len, ["ab", "abc"])) == {"ab": 2, "abc": 3}
        print("ray" in sys.modules)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


# ---- Ray: CI's Ray run ----


@pytest.fixture(scope="module")
def ray_module():
    try:
        ray = distributed.import_ray()
    except RayNotInstalled:
        pytest.fail("ray is part of the test extra: pip install -e '.[test]'")
    # Ray workers cannot import this test file (pytest puts tests/ on the path of this process only), so its
    # work function travels by value; the library's own work lives in the installed package.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    return ray


@pytest.mark.ray
@pytest.mark.slow  # 5-7 s: a cluster starts and stops
def test_a_local_ray_cluster_gives_the_threads_outcomes(ray_module, on_threads, tmp_path):
    seen: list[RunProgress] = []
    outcomes, attempts = run(tmp_path, [*MODELS, CRASH], ray="local", hub_slots=2, retries=1, progress=seen.append)
    assert_expected_outcomes(outcomes, attempts, retries=1)
    for path in demo_paths():
        assert_same_probe(outcomes[path], on_threads[path])
    for failed in (MISSING, GONE, TRANSIENT):
        assert type(outcomes[failed]) is type(on_threads[failed])
        assert str(outcomes[failed]) == str(on_threads[failed])
    # Ray runs a task again when its worker dies (max_retries), which threads cannot survive
    assert outcomes[CRASH] == "read on attempt 2" and attempts[CRASH] == 2
    assert seen[0].where == "a local Ray cluster (2 hf_hub slots)" and seen[-1].done == len(MODELS) + 1
    assert not ray_module.is_initialized()  # the runner's own cluster is gone


CLUSTER = textwrap.dedent(
    """
    import sys, ray
    ray.init(address="local", num_cpus=2, resources={"hf_hub": 2}, include_dashboard=False)
    print(ray.get_runtime_context().gcs_address, flush=True)
    for line in sys.stdin:  # each line: is the cluster still there? (a task runs on it)
        print(ray.get(ray.remote(lambda: "alive").remote()), flush=True)
    ray.shutdown()
    """
)


@pytest.fixture
def running_cluster():
    """A Ray cluster started by another process, as a cluster at an address is: (address, ask_if_alive)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CLUSTER], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdin is not None and proc.stdout is not None
    address = proc.stdout.readline().strip()
    assert address, "the cluster did not start"

    def alive() -> bool:
        proc.stdin.write("?\n")
        proc.stdin.flush()
        return proc.stdout.readline().strip() == "alive"

    yield address, alive
    proc.stdin.close()
    assert proc.wait(timeout=60) == 0


@pytest.mark.ray
@pytest.mark.slow  # 5-7 s: a cluster starts and stops
def test_a_running_cluster_at_an_address_is_used_capped_and_left_running(
    ray_module, running_cluster, on_threads, tmp_path, monkeypatch
):
    address, alive = running_cluster
    seen: list[RunProgress] = []
    folder = tmp_path / "log"
    folder.mkdir()
    refs = demo_paths()[:3]
    work = partial(probe_or_scripted, str(folder))
    outcomes = dict(run_per_model(work, refs, ray=address, hub_slots=1, progress=seen.append))
    for path in refs:
        assert_same_probe(outcomes[path], on_threads[path])
    assert seen[0].where == f"the Ray cluster at {address} (2 hf_hub slots, at most 1 of this run's models at once)"
    # hub_slots=1 caps the run across the cluster (whose nodes offer 2 hf_hub units): one model at a time
    order = events(folder)
    assert order == [
        f"{kind} {ref}" for ref in [line.split(" ", 1)[1] for line in order[::2]] for kind in ("start", "end")
    ]
    assert not ray_module.is_initialized() and alive()  # disconnected; the cluster itself still runs

    monkeypatch.setattr(distributed, "HUB_RESOURCE", "hf_hub_nobody_declared")
    with pytest.raises(ClusterNotReady, match=r"ray start \.\.\. --resources"):
        list(run_per_model(str, refs, ray=address))
    assert alive()


def test_work_that_cannot_travel_to_ray_is_refused_at_once_without_showing_its_arguments(ray_module):
    opts = Options(token="hf_NotARealTokenButSecret", cancel=threading.Event())  # an Event cannot be pickled
    with pytest.raises(TypeError, match="cannot be sent to Ray workers") as caught:
        run_per_model(partial(get_probe, opts=opts), ["a"], ray="local")
    assert "hf_NotARealTokenButSecret" not in str(caught.value)
    assert not ray_module.is_initialized()  # refused before any cluster started


def test_an_address_where_no_cluster_answers_is_refused_at_once(ray_module):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        with pytest.raises(ClusterNotReady, match=f"nothing answers at the Ray cluster address {address}"):
            run_per_model(len, ["a"], ray=address)
    assert not ray_module.is_initialized()
