"""The Hub path, end to end, against a local server speaking the Hub's protocol (no internet).

The real huggingface_hub client resolves revisions and the core reads with Range requests;
the server counts every byte it sends, so the tests can hold the tool to 'only what it needs'.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import FIXTURES, fixture_files
from safetensors.numpy import load_file, save_file

from fingerprint import Options, Store, compute
from fingerprint.cli import main as cli_main
from fingerprint.errors import (
    BadToken,
    FileNotInRepo,
    GatedRepo,
    NetworkError,
    NoWeights,
    Offline,
    PickleRefused,
    RateLimited,
    RepoNotFound,
    RevisionNotFound,
)

STORIES = FIXTURES / "stories260k"


def attention_bytes(model_file) -> int:
    sd = load_file(str(model_file))
    return sum(v.nbytes for k, v in sd.items() if ".self_attn." in k or "input_layernorm" in k)


def run(ref, hub, **kw):
    return compute(ref, Options(endpoint=hub.url, use_cache=False, **kw))


def test_hub_fingerprint_equals_local_and_reads_only_attention(hub):
    sha = hub.add_repo("org/stories", fixture_files(STORIES))
    local = compute(str(STORIES), Options(use_cache=False)).fingerprint
    out = run("org/stories", hub)
    assert out.error is None, out.error
    fp = out.fingerprint
    assert fp.revision == sha and fp.model == "org/stories" and fp.source == "hub"
    for role in local.curves:
        np.testing.assert_allclose(fp.curves[role], local.curves[role], rtol=1e-12)
    served = hub.bytes_served["org/stories"]
    assert fp.bytes_read == served
    header = 8 + int.from_bytes((STORIES / "model.safetensors").read_bytes()[:8], "little")
    config = (STORIES / "config.json").stat().st_size
    # exact mode: the attention tensors, the header and config.json, and nothing else
    assert served <= 1.02 * (attention_bytes(STORIES / "model.safetensors") + header + config)
    assert served < 0.3 * (STORIES / "model.safetensors").stat().st_size
    ranges = [r for m, path, r in hub.requests if "/resolve/" in path and path.endswith(".safetensors")]
    assert ranges and all(r and r.startswith("bytes=") for r in ranges), "every weight read is a Range request"


def test_revision_is_pinned_and_old_commits_stay_readable(hub):
    first = hub.add_repo("org/m", fixture_files(STORIES))
    second = hub.add_repo("org/m", fixture_files(FIXTURES / "babyllama-tok361"))
    assert first != second
    old = run(f"org/m@{first}", hub).fingerprint
    new = run("org/m@main", hub).fingerprint
    assert old.revision == first and new.revision == second
    assert old.model == f"org/m@{first}"
    assert old.curves["q"] != new.curves["q"]


def test_pinned_model_second_compute_reads_nothing(hub, tmp_path):
    sha = hub.add_repo("org/stories", fixture_files(STORIES))
    store = Store(tmp_path / "c.sqlite")
    first = compute(f"org/stories@{sha}", Options(endpoint=hub.url, store=store))
    assert first.fingerprint and not first.cached
    hub.reset_counters()
    again = compute(f"org/stories@{sha}", Options(endpoint=hub.url, store=store))
    assert again.cached and again.fingerprint.curves == first.fingerprint.curves
    assert hub.requests == [] and hub.bytes_served["org/stories"] == 0
    # a branch name costs one metadata call to resolve the sha, and no weight bytes
    branch = compute("org/stories", Options(endpoint=hub.url, store=store))
    assert branch.cached
    assert all("/resolve/" not in path for _, path, _ in hub.requests)


def test_sharded_repo_with_index(hub, tmp_path):
    sd = load_file(str(STORIES / "model.safetensors"))
    names = sorted(sd)
    half = len(names) // 2
    shards = {"model-00001-of-00002.safetensors": names[:half], "model-00002-of-00002.safetensors": names[half:]}
    files = {"config.json": STORIES / "config.json"}
    for fname, keys in shards.items():
        save_file({k: sd[k] for k in keys}, str(tmp_path / fname))
        files[fname] = tmp_path / fname
    index = {
        "metadata": {"total_size": sum(v.nbytes for v in sd.values())},
        "weight_map": {k: f for f, ks in shards.items() for k in ks},
    }
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    files["model.safetensors.index.json"] = tmp_path / "model.safetensors.index.json"
    hub.add_repo("org/sharded", files)
    fp = run("org/sharded", hub).fingerprint
    local = compute(str(STORIES), Options(use_cache=False)).fingerprint
    assert [f["name"] for f in fp.files] == sorted(shards)
    np.testing.assert_allclose(fp.curves["k"], local.curves["k"], rtol=1e-12)


def test_gguf_repo_picks_highest_fidelity_or_the_named_file(hub):
    gguf = FIXTURES / "stories260k-q8_0.gguf"
    hub.add_repo("org/stories-GGUF", {"stories.Q2_K.gguf": gguf, "stories.Q8_0.gguf": gguf, "README.md": b"# x"})
    fp = run("org/stories-GGUF", hub).fingerprint
    assert fp.format == "gguf" and [f["name"] for f in fp.files] == ["stories.Q8_0.gguf"]
    assert all("Q2_K" not in path for _, path, _ in hub.requests)
    named = run("org/stories-GGUF/stories.Q2_K.gguf", hub).fingerprint
    assert [f["name"] for f in named.files] == ["stories.Q2_K.gguf"]
    by_option = run("org/stories-GGUF", hub, file="stories.Q2_K.gguf").fingerprint
    assert [f["name"] for f in by_option.files] == ["stories.Q2_K.gguf"]
    missing = run("org/stories-GGUF/nope.gguf", hub)
    assert isinstance(missing.error, FileNotInRepo) and "stories.Q8_0.gguf" in str(missing.error)


@pytest.mark.parametrize(
    "setup, ref, error",
    [
        (lambda h: None, "org/missing", RepoNotFound),
        (lambda h: h.add_repo("org/gated", fixture_files(STORIES), gated="manual"), "org/gated", GatedRepo),
        (lambda h: h.add_repo("org/m", fixture_files(STORIES)), "org/m@no-such-branch", RevisionNotFound),
        (lambda h: h.add_repo("org/docs", {"README.md": b"# nothing"}), "org/docs", NoWeights),
        (lambda h: h.add_repo("org/private", fixture_files(STORIES), private=True), "org/private", RepoNotFound),
    ],
)
def test_hub_errors_are_typed_and_name_the_model(hub, setup, ref, error):
    setup(hub)
    out = run(ref, hub)
    assert isinstance(out.error, error), out.error
    msg = str(out.error)
    assert msg.startswith(f"{ref}: ") and "\n" not in msg
    assert out.error.fix and out.error.fix in msg


def test_gated_repo_with_tokens(hub):
    hub.add_repo("org/gated", fixture_files(STORIES), gated="manual")
    hub.add_token("hf_granted", gated_access={"org/gated"})
    hub.add_token("hf_not_granted")
    assert isinstance(run("org/gated", hub, token="hf_not_granted").error, GatedRepo)
    assert isinstance(run("org/gated", hub, token="hf_wrong").error, BadToken)
    ok = run("org/gated", hub, token="hf_granted")
    assert ok.error is None and ok.fingerprint.layers == 5


def test_legacy_pickle_repo_is_refused_after_its_first_bytes(hub):
    hub.add_repo("org/old", {"pytorch_model.bin": b"\x80\x04not really", "config.json": STORIES / "config.json"})
    out = run("org/old", hub)
    assert isinstance(out.error, PickleRefused) and "pytorch_model.bin" in str(out.error)
    assert "legacy PyTorch pickle" in str(out.error)


def test_offline_gives_a_clear_error():
    out = compute("org/anything", Options(endpoint="http://127.0.0.1:9", use_cache=False))
    assert isinstance(out.error, Offline)
    assert str(out.error).startswith("org/anything: ")


def test_transient_failures_are_retried(hub, fast_retries):
    hub.add_repo("org/stories", fixture_files(STORIES))
    expected = run("org/stories", hub).fingerprint.curves
    hub.fail_next(2, 503)
    assert run("org/stories", hub).fingerprint.curves == expected
    hub.fail_next(2, 429)
    assert run("org/stories", hub).fingerprint.curves == expected
    hub.drop_next(2)
    assert run("org/stories", hub).fingerprint.curves == expected
    hub.truncate_next(1)
    assert run("org/stories", hub).fingerprint.curves == expected
    hub.truncate_next(1, mode="cut")
    assert run("org/stories", hub).fingerprint.curves == expected


def test_persistent_rate_limit_and_server_errors(hub, fast_retries):
    hub.add_repo("org/stories", fixture_files(STORIES))
    hub.fail_next(1000, 429)
    assert isinstance(run("org/stories", hub).error, RateLimited)
    hub.clear_faults()
    hub.fail_next(1000, 500)
    err = run("org/stories", hub).error
    assert isinstance(err, NetworkError) and "HTTP 500" in str(err)


def test_server_ignoring_range_is_refused(hub):
    hub.add_repo("org/stories", fixture_files(STORIES))
    hub.ignore_range = True
    out = run("org/stories", hub)
    assert isinstance(out.error, NetworkError) and "Range" in str(out.error)
    size = (STORIES / "model.safetensors").stat().st_size
    assert hub.bytes_served["org/stories"] < size, "the whole file must not be downloaded"


def test_lfs_redirect_to_another_origin(hub):
    hub.redirect_lfs = True
    hub.add_repo("org/stories", fixture_files(STORIES))
    out = run("org/stories", hub)
    assert out.error is None, out.error


def test_cli_never_prints_or_writes_the_token(hub, tmp_path, capsys, caplog, monkeypatch):
    secret = "hf_SECRETtoken1234567890"
    hub.add_repo("org/gated", fixture_files(STORIES), gated="manual")
    hub.add_token(secret, gated_access={"org/gated"})
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "ENDPOINT", hub.url)
    out_json = tmp_path / "fps.json"
    code = cli_main(
        [
            "compute",
            "org/gated",
            "org/missing",
            "--token",
            secret,
            "--json",
            str(out_json),
            "-v",
            "--cache",
            str(tmp_path / "c.sqlite"),
        ]
    )
    captured = capsys.readouterr()
    assert code == 1  # org/missing failed, org/gated worked
    assert "org/gated" in captured.out and "org/missing" in captured.err
    everything = captured.out + captured.err + caplog.text + out_json.read_text()
    everything += (tmp_path / "c.sqlite").read_bytes().decode("latin-1")
    assert secret not in everything
    data = json.loads(out_json.read_text())
    assert [d["model"] for d in data] == ["org/gated"]


def test_local_copy_and_hub_file_agree_on_identity(hub, tmp_path):
    """A local file's revision is its sha256: the value the Hub shows as the file's LFS sha256."""
    shutil.copytree(STORIES, tmp_path / "m")
    fp = compute(str(tmp_path / "m"), Options(use_cache=False)).fingerprint
    from huggingface_hub import HfApi

    hub.add_repo("org/stories", fixture_files(STORIES))
    info = HfApi(endpoint=hub.url).model_info("org/stories", files_metadata=True)
    lfs = {s.rfilename: s.lfs.sha256 for s in info.siblings if s.lfs}
    assert fp.files[0]["sha256"] == lfs["model.safetensors"]
    assert fp.revision == "sha256:" + lfs["model.safetensors"]


def test_hf_prefix_forces_the_hub_even_when_a_folder_has_that_name(hub, tmp_path, monkeypatch):
    hub.add_repo("org/stories", fixture_files(STORIES))
    (tmp_path / "org" / "stories").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert compute("org/stories", Options(endpoint=hub.url, use_cache=False)).fingerprint is None  # the empty folder
    out = compute("hf://org/stories", Options(endpoint=hub.url, use_cache=False))
    assert out.error is None and out.fingerprint.source == "hub"


@pytest.mark.parametrize("kind", ["private", "gated"])
def test_a_cached_private_or_gated_result_is_shown_only_to_who_may_read_the_repo(hub, tmp_path, kind):
    """Shared server, one cache: visitor A (token) computed org/secret; visitor B (no token) asks for it pinned."""
    sha = hub.add_repo(
        "org/secret", fixture_files(STORIES), **({"private": True} if kind == "private" else {"gated": True})
    )
    hub.add_token("hf_visitor_a", gated_access={"org/secret"}, private_access={"org/secret"})
    store = Store(tmp_path / "shared.sqlite")
    pinned = f"org/secret@{sha}"
    a = compute(pinned, Options(endpoint=hub.url, store=store, token="hf_visitor_a"))
    assert a.error is None and a.fingerprint.access == kind
    b = compute(pinned, Options(endpoint=hub.url, store=store, token=None))
    assert b.fingerprint is None and isinstance(b.error, (RepoNotFound, GatedRepo)), b.error
    again = compute(pinned, Options(endpoint=hub.url, store=store, token="hf_visitor_a"))
    assert again.cached and again.fingerprint.curves == a.fingerprint.curves


def test_a_cached_public_result_needs_no_network(hub, tmp_path):
    sha = hub.add_repo("org/open", fixture_files(STORIES))
    store = Store(tmp_path / "c.sqlite")
    assert compute(f"org/open@{sha}", Options(endpoint=hub.url, store=store)).fingerprint.access == "public"
    hub.reset_counters()
    again = compute(f"org/open@{sha}", Options(endpoint=hub.url, store=store))
    assert again.cached and hub.api_calls == 0 and hub.resolver_calls == 0
