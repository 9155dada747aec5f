"""What only the dashboard needs, without streamlit: share links, settings, shared mode, uploads, presets, Hub
suggestions, background runs and Stop."""

from __future__ import annotations

import dataclasses
import io
import json
import sys
import time
from pathlib import Path

import pytest
from test_present import fake

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboard.presets import PRESETS
from fingerprint import Options
from fingerprint.demo import demo_paths


def test_presets_name_the_well_known_cases():
    ids = {m for p in PRESETS for m in p.models}
    assert {
        "IntervitensInc/pangu-pro-moe-model",
        "Qwen/Qwen2.5-14B",
        "meta-llama/Llama-2-7b-hf",
        "deepseek-ai/deepseek-llm-7b-base",
        "Qwen/Qwen2.5-7B",
        "Qwen/Qwen2.5-7B-Instruct",
    } <= ids
    assert all(p.explanation for p in PRESETS)


# ---------------------------------------------------------------- share links


def test_share_link_round_trip():
    from dashboard.links import (
        LinkView,
        app_base_url,
        link_params,
        link_signature,
        parse_link,
        share_url,
        shareable_reference,
    )

    sha = "0123456789abcdef0123456789abcdef01234567"
    hub = dataclasses.replace(fake("org/model", {"q": [1, 2, 3]}), revision=sha)
    assert shareable_reference(hub) == f"org/model@{sha}"
    hub = dataclasses.replace(hub, model="org/model@main")
    assert shareable_reference(hub) == f"org/model@{sha}"  # branch names are pinned to what was read
    gguf = fake("org/repo-GGUF/model.Q8_0.gguf", {"q": [1, 2, 3]}, fmt="gguf")
    gguf = dataclasses.replace(gguf, repo_id="org/repo-GGUF", revision=sha)
    assert shareable_reference(gguf) == f"org/repo-GGUF/model.Q8_0.gguf@{sha}"
    assert shareable_reference(fake("/data/x", {"q": [1, 2, 3]}, source="local")) is None
    assert shareable_reference(fake(demo_paths()[0], {"q": [1, 2, 3]}, source="local")) == "demo:stories260k"

    v = LinkView(models=[f"org/a@{sha}", "demo:stories260k", "org/b"], role="k", order="input", view="raw", pair=(2, 0))
    params = link_params(v)
    assert params == {
        "models": f"org/a@{sha},demo:stories260k,org/b",
        "role": "k",
        "order": "input",
        "view": "raw",
        "pair": "2,0",
    }
    back, problems = parse_link(params)
    assert back == v and problems == []
    assert link_signature(params) == link_signature({**params, "embed": "true"})
    url = share_url("http://h:8501/base", "compare", params)
    assert (
        url
        == f"http://h:8501/base/compare?models=org/a@{sha},demo:stories260k,org/b&role=k&order=input&view=raw&pair=2,0"
    )
    assert share_url(None, "compare", {"role": "k"}) == "compare?role=k"
    assert app_base_url("http://h:8501/base/export", "export") == "http://h:8501/base"
    assert app_base_url("http://h:8501/", "") == "http://h:8501" and app_base_url(None) is None

    # what "All pairs" shows travels when the visitor chose it; without it the page picks (verdicts once computed)
    chose = dataclasses.replace(v, signal="sigma")
    assert link_params(chose)["signal"] == "sigma" and parse_link(link_params(chose))[0] == chose

    bad, problems = parse_link(
        {"models": "a/b,c/d", "role": "K; drop", "order": "x", "view": "y", "pair": "1,1", "signal": "vibes"}
    )
    assert (bad.role, bad.order, bad.view, bad.pair, bad.signal) == ("mean", "clustered", "normalised", None, None)
    assert len(problems) == 5 and "signal='vibes' is not one of verdict, elementwise" in problems[3]
    assert parse_link({"role": "k"}) == (None, [])


def test_find_the_base_link_carries_one_pinned_model_never_a_local_path(tmp_path):
    from dashboard.links import SCAN_LINK_KEYS, link_signature, parse_scan_link, scan_link_params, scan_reference

    sha = "0123456789abcdef0123456789abcdef01234567"
    assert scan_reference("org/model", f"org/model@{sha}") == f"org/model@{sha}"  # pinned to the commit read
    assert scan_reference("org/repo/m.gguf@main", f"org/repo/m.gguf@{sha}") == f"org/repo/m.gguf@{sha}"
    assert scan_reference(demo_paths()[1], "stories260k-q8_0.gguf") == "demo:stories260k-q8_0.gguf"
    mine = tmp_path / "org@0123456789abcdef0123456789abcdef01234567"  # a folder named like a pinned model
    mine.mkdir()
    assert scan_reference(str(mine), mine.name) is None and scan_reference("/no/such/model", "model") is None

    params = scan_link_params(f"org/model@{sha}", fetch=True)
    assert params == {"model": f"org/model@{sha}", "fetch": "1"} and parse_scan_link(params) == (params["model"], True)
    assert parse_scan_link({"model": " demo:stories260k "}) == ("demo:stories260k", False)
    assert parse_scan_link({"models": "a/b"}) is None and parse_scan_link({"model": ""}) is None
    assert link_signature({**params, "role": "k"}, SCAN_LINK_KEYS) == (("model", params["model"]), ("fetch", "1"))
    assert link_signature(params) == ()  # not a Compare link


# ---------------------------------------------------------------- settings, shared mode, uploads


def test_settings_from_env_and_secrets():
    from dashboard.settings import Settings, apply_secrets

    local = Settings.from_env({})
    assert (local.shared, local.max_models, local.max_upload_mb, local.hf_token) == (False, 50, 2000, None)
    shared = Settings.from_env({"FINGERPRINT_SHARED_MODE": "true", "HF_TOKEN": "hf_secret"})
    assert (shared.shared, shared.max_models, shared.max_upload_mb) == (True, 8, 200)
    assert "hf_secret" not in repr(shared) and shared.token_for(None) == "hf_secret"
    assert shared.token_for(" hf_visitor ") == "hf_visitor"  # the visitor's own token first
    custom = Settings.from_env(
        {"FINGERPRINT_SHARED_MODE": "1", "FINGERPRINT_MAX_MODELS": "3", "FINGERPRINT_MAX_UPLOAD_MB": "50"}
    )
    assert (custom.max_models, custom.max_upload_mb) == (3, 50)
    odd = Settings.from_env({"FINGERPRINT_SHARED_MODE": "maybe", "FINGERPRINT_MAX_MODELS": "-2"})
    assert not odd.shared and odd.max_models == 50 and len(odd.problems) == 2
    assert shared.upload_limit_mb(100) == 100 and shared.upload_limit_mb(2000) == 200
    assert shared.consistency_problems(2000) and not shared.consistency_problems(200)
    env: dict[str, str] = {}
    assert apply_secrets({"FINGERPRINT_SHARED_MODE": True, "FINGERPRINT_MAX_MODELS": 4, "section": {"a": 1}}, env) == [
        "FINGERPRINT_SHARED_MODE",
        "FINGERPRINT_MAX_MODELS",
    ]
    assert Settings.from_env(env).shared and Settings.from_env(env).max_models == 4


def test_a_shared_server_caps_exact_reads_by_default():
    from dashboard.settings import Settings

    assert Settings.from_env({"FINGERPRINT_SHARED_MODE": "1"}).max_exact_mb == 2000
    assert Settings.from_env({}).max_exact_mb == 0
    assert Settings.from_env({"FINGERPRINT_MAX_EXACT_MB": "5"}).max_exact_mb == 5


def test_verdicts_start_unasked_only_up_to_the_configured_reads():
    from dashboard.settings import Settings

    assert Settings.from_env({}).auto_lineage_mb == 256
    assert Settings.from_env({"FINGERPRINT_SHARED_MODE": "1"}).auto_lineage_mb == 64
    assert Settings.from_env({"FINGERPRINT_AUTO_LINEAGE_MB": "0"}).auto_lineage_mb == 0  # always wait for a click
    odd = Settings.from_env({"FINGERPRINT_AUTO_LINEAGE_MB": "-1"})
    assert odd.auto_lineage_mb == 256 and "non-negative whole number" in odd.problems[0]


def test_shared_mode_refuses_local_paths_but_not_demo_uploads_or_hub(tmp_path):
    from dashboard.policy import count_refusal, shared_mode_refusal
    from dashboard.settings import Settings

    shared = Settings(shared=True, max_models=3)
    (tmp_path / "m.safetensors").write_bytes(b"x")
    assert "cannot be read on this shared server" in shared_mode_refusal(str(tmp_path / "m.safetensors"), shared)
    assert shared_mode_refusal(str(tmp_path / "m.safetensors"), Settings()) is None  # local mode: fine
    assert shared_mode_refusal(str(tmp_path / "m.safetensors"), shared, [tmp_path]) is None  # an upload
    assert shared_mode_refusal(demo_paths()[0], shared) is None
    assert shared_mode_refusal("demo:stories260k", shared) is None
    assert shared_mode_refusal("org/model@main", shared) is None
    assert count_refusal(["a", "b"], ["b", "c"], shared) is None
    msg = count_refusal(["a", "b"], ["c", "d"], shared)
    assert "at most 3" in msg and "4 (2 already in the session + 2 new)" in msg


def test_uploads_checked_and_written_whole(tmp_path):
    from dashboard.settings import Settings
    from dashboard.uploads import UploadFolder, safe_filename, upload_refusal

    s = Settings(max_upload_mb=1)
    assert "can run code" in upload_refusal("weights.pkl", 10, s)
    assert upload_refusal("pytorch_model.bin", 10, s) is None  # read as a zip checkpoint, never unpickled
    assert "not a .safetensors, .gguf or PyTorch" in upload_refusal("notes.txt", 10, s)
    assert "over the 1 MB limit" in upload_refusal("m.gguf", 2 * 1024 * 1024, s)
    assert upload_refusal("M.SafeTensors", 10, s) is None
    assert safe_filename("../../etc/passwd.gguf") == "passwd.gguf" and safe_filename("a b$c.GGUF") == "a_b_c.gguf"

    folder = UploadFolder(tmp_path / "uploads")
    path = folder.save(io.BytesIO(b"abc" * 1000), "My Model.gguf", chunk=100)
    assert path.read_bytes() == b"abc" * 1000 and path.name == "My_Model.gguf"

    class Broken(io.BytesIO):
        def read(self, n=-1):
            if self.tell() > 200:
                raise OSError("connection lost")
            return super().read(n)

    with pytest.raises(OSError):
        folder.save(Broken(b"x" * 1000), "half.gguf", chunk=100)
    assert [p.name for p in folder.path.rglob("*") if p.is_file()] == ["My_Model.gguf"]  # no half-written file
    folder.remove(path)
    assert not path.exists()
    root = folder.path
    folder.cleanup()
    assert not root.exists()


# ---------------------------------------------------------------- Hub suggestions


def test_hub_search_and_hits(monkeypatch):
    import http.server
    import threading

    from dashboard.hub_search import Hit, SuggestionsUnavailable, format_hit, search_hub

    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append((self.path, self.headers.get("Authorization")))
            body = json.dumps(
                [
                    {"id": "Qwen/Qwen2.5-7B", "downloads": 1234567, "likes": 890, "pipeline_tag": "text-generation"},
                    {"id": "meta-llama/Llama-2-7b-hf", "downloads": 999, "likes": 0, "gated": "manual"},
                ]
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HF_TOKEN", "hf_should_not_be_sent")
    try:
        hits = search_hub("qwen 7b", endpoint=f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
    assert [h.id for h in hits] == ["Qwen/Qwen2.5-7B", "meta-llama/Llama-2-7b-hf"]
    path, auth = seen[0]
    assert path.startswith("/api/models?") and "search=qwen" in path and "limit=10" in path and "sort=downloads" in path
    assert auth is None  # public search only: never a token
    assert format_hit(hits[0]) == "Qwen/Qwen2.5-7B · 1.2M downloads/month · 890 likes · text-generation"
    assert format_hit(hits[1]) == "meta-llama/Llama-2-7b-hf · 999 downloads/month · gated: needs a token"
    assert format_hit(Hit("a/b")) == "a/b"

    t0 = time.perf_counter()
    with pytest.raises(SuggestionsUnavailable):
        search_hub("qwen")  # HF_ENDPOINT is a closed port in tests
    assert time.perf_counter() - t0 < 5  # one try, no 20-second retry loop
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SuggestionsUnavailable):
        search_hub("qwen")
    assert search_hub("  ") == []


# ---------------------------------------------------------------- background runs and Stop (no streamlit)


def test_job_stop_keeps_finished_models_and_cancels_the_rest(monkeypatch):
    import importlib
    import threading

    from dashboard.runs import FingerprintRun

    core = importlib.import_module("fingerprint.fingerprinting")
    real = core.compute
    started = threading.Event()

    def slow(ref, opts, progress=None):
        if "babyllama" in ref:
            started.set()
            opts.cancel.wait(30)
        return real(ref, opts, progress)

    monkeypatch.setattr(core, "compute", slow)
    paths = demo_paths()
    job = FingerprintRun([(p, p) for p in paths], Options(use_cache=False), parallel=2).start()
    assert started.wait(30)
    while not job.outcomes.get(paths[0]):
        time.sleep(0.01)
    job.stop()
    assert job.wait(30)
    stages = {line.key: line.stage for line in job.lines()}
    assert stages[paths[0]] == "done"
    assert stages[paths[2]] == "cancelled" and stages[paths[3]] == "cancelled"
    assert job.counts()["ok"] + job.counts()["cancelled"] == 4


def test_shared_mode_refuses_server_paths_with_the_same_words_whether_they_exist_or_not(tmp_path):
    from dashboard.policy import shared_mode_refusal
    from dashboard.settings import Settings

    shared = Settings(shared=True)
    real = tmp_path / "exists.safetensors"
    real.write_bytes(b"x")
    answers = [
        shared_mode_refusal(str(p), shared)
        for p in (real, tmp_path / "missing.safetensors", tmp_path, tmp_path / "nope")
    ]
    assert all(a is not None for a in answers)
    assert len({a.split(": ", 1)[1] for a in answers}) == 1  # the same sentence after the reference
    assert shared_mode_refusal("org/model", shared) is None and shared_mode_refusal("org/..", shared) is None


def test_a_shared_session_has_an_upload_quota_in_count_and_bytes():
    from dashboard.settings import Settings
    from dashboard.uploads import MB, upload_refusal

    shared = Settings.from_env(
        {"FINGERPRINT_SHARED_MODE": "1", "FINGERPRINT_SESSION_UPLOADS": "3", "FINGERPRINT_SESSION_UPLOAD_MB": "10"}
    )
    assert upload_refusal("a.safetensors", 4 * MB, shared, held=[1 * MB, 1 * MB]) is None
    too_many = upload_refusal("a.safetensors", 1 * MB, shared, held=[1 * MB] * 3)
    assert "already holds 3 uploaded files (at most 3)" in too_many
    too_big = upload_refusal("a.safetensors", 6 * MB, shared, held=[3 * MB, 2 * MB])
    assert "would take 11 MB (at most 10 MB)" in too_big
    assert Settings.from_env({"FINGERPRINT_SHARED_MODE": "1"}).session_uploads == 8  # the shared default


def test_preset_titles_fit_a_button():
    """A preset's title is a button label, which Streamlit cuts with '…' when it does not fit the column."""
    from dashboard.presets import PRESETS

    assert all(len(p.title) <= 48 for p in PRESETS), [p.title for p in PRESETS if len(p.title) > 48]
