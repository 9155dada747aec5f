"""Figure builders (fingerprint.plots) and exports (fingerprint.export), without streamlit."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import time

import numpy as np
import pytest

from fingerprint import Fingerprint, Options, compare_pair, compute_many
from fingerprint.demo import DEMO_MODELS, PRESETS, demo_name, demo_paths
from fingerprint.export import (
    curves_csv,
    fingerprints_json,
    html_report,
    matrix_csv,
    pair_caveats,
    pairs_rows,
    strength,
)
from fingerprint.plots import (
    cluster_order,
    curves_figure,
    display_names,
    heatmap_figure,
    pair_figure,
    roles_present,
)


def fake(
    model: str,
    curves: dict[str, list[float]],
    *,
    source="hub",
    fmt="safetensors",
    mode="exact",
    arch="LlamaForCausalLM",
    err=None,
) -> Fingerprint:
    n = len(next(iter(curves.values())))
    stats = {r: {"std_err": [err or 0.0] * n} for r in curves}
    return Fingerprint(
        model=model,
        revision=(model.encode().hex() * 40)[:40],
        source=source,
        format=fmt,
        architecture=arch,
        layers=n,
        mode=mode,
        curves=curves,
        stats=stats,
        bytes_read=1,
        bytes_total=2,
        tool_version="t",
        computed_at="2026-01-01T00:00:00+00:00",
        repo_id=model if source == "hub" else None,
    )


def random_fps(n_models: int, layers: int = 24, seed: int = 0) -> list[Fingerprint]:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=layers)
    out = []
    for i in range(n_models):
        curve = base + rng.normal(scale=0.3 + i % 3, size=layers)
        out.append(fake(f"org/model-{i}", {r: list(curve + rng.normal(scale=0.1, size=layers) + 5) for r in "qkvo"}))
    return out


@pytest.fixture(scope="module")
def demo_fps() -> list[Fingerprint]:
    outs = compute_many(demo_paths(), Options(use_cache=False))
    assert all(o.fingerprint for o in outs)
    return [o.fingerprint for o in outs]


def heat_trace(fig) -> dict:
    return next(t for t in fig.to_plotly_json()["data"] if t["type"] == "heatmap")


def test_demo_set_and_presets():
    assert all(m.absolute.exists() for m in DEMO_MODELS)
    assert [demo_name(p) for p in demo_paths()] == [m.name for m in DEMO_MODELS]
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


def test_display_names_are_short_and_unique(demo_fps):
    assert display_names(demo_fps) == [m.name for m in DEMO_MODELS]
    a = fake("/data/a/model", {"q": [1, 2, 3]}, source="local")
    b = fake("/data/b/model", {"q": [1, 2, 3]}, source="local")
    h = fake("org/model", {"q": [1, 2, 3]})
    assert display_names([a, b, h]) == ["a/model", "b/model", "org/model"]


def test_heatmap_fixed_scale_and_clustered_order(demo_fps):
    fig = heatmap_figure(demo_fps, "mean", "clustered")
    t = heat_trace(fig)
    assert (t["zmin"], t["zmax"]) == (-1, 1)
    assert t["texttemplate"] == "%{text}"  # values written in cells for a small N
    x = t["x"]
    assert abs(x.index("babyllama-tok361") - x.index("babyllama-tok105")) == 1
    assert "resampl" in t["customdata"][0][1]  # hover says whether depths were resampled
    assert any(tr["type"] == "scatter" for tr in fig.to_plotly_json()["data"])  # the dendrogram
    t_in = heat_trace(heatmap_figure(demo_fps, "q", "input"))
    assert t_in["x"] == display_names(demo_fps)


def test_cluster_order_groups_blocks():
    m = np.array([[1, 0.1, 0.9, 0.1], [0.1, 1, 0.1, 0.95], [0.9, 0.1, 1, 0.1], [0.1, 0.95, 0.1, 1]])
    order, link = cluster_order(m)
    assert link is not None
    pos = {v: i for i, v in enumerate(order)}
    assert abs(pos[0] - pos[2]) == 1 and abs(pos[1] - pos[3]) == 1
    assert cluster_order(np.eye(2))[0] == [0, 1]


def test_fifty_models_are_comfortable():
    fps = random_fps(50)
    t0 = time.process_time()  # CPU seconds: what other work on the machine does not change
    fig = heatmap_figure(fps)
    curves_figure(fps)
    rows = pairs_rows(fps)
    assert time.process_time() - t0 < 10
    t = heat_trace(fig)
    assert len(t["z"]) == 50 and t.get("texttemplate") is None  # no cell text at 50
    assert len(rows) == 50 * 49 // 2


def test_curves_mark_resampled_depths():
    a = fake("org/deep", {r: list(np.linspace(1, 2, 8) ** 2) for r in "qkvo"})
    b = fake("org/shallow", {r: list(np.linspace(1, 2, 4) ** 2) for r in "qkvo"})
    fig = curves_figure([a, b], normalise=True)
    traces = fig.to_plotly_json()["data"]
    shallow = [t for t in traces if t["legendgroup"] == "org/shallow"]
    assert shallow and all(t["line"]["dash"] == "dash" for t in shallow)
    assert "resampled" in shallow[0]["name"]
    assert fig.layout.xaxis.title.text.startswith("relative depth")
    c = compare_pair(a, b)
    assert c.resampled
    assert any("Different depths" in x for x in pair_caveats(a, b, c, "deep", "shallow"))
    pair_figure(a, b, "deep", "shallow", c)


def test_pair_caveats_quantized_and_sampled(demo_fps):
    st, gguf = demo_fps[0], demo_fps[1]
    cav = pair_caveats(st, gguf, compare_pair(st, gguf), "stories260k", "q8")
    assert any("GGUF" in x and "format gguf" in x for x in cav)
    assert not any("Different architectures" in x for x in cav)  # LlamaForCausalLM and llama are one family
    assert "not proof" in cav[-1]
    s = fake("org/s", {"q": [1.0, 2.0, 3.0, 2.5]}, mode="sampled", err=0.01)
    assert any("sampled mode" in x for x in pair_caveats(s, s, compare_pair(s, s), "s", "s"))
    assert strength(0.999).startswith("near-identical") and strength(0.95).startswith("very high")
    assert strength(None).startswith("undefined")


def test_exports_roundtrip(demo_fps):
    names = display_names(demo_fps)
    fig_t = heat_trace(heatmap_figure(demo_fps, "mean", "clustered", names))
    rows = list(csv.reader(io.StringIO(matrix_csv(demo_fps, "mean", "clustered", names))))
    assert rows[0][1:] == fig_t["x"]
    assert np.allclose([[float(v) for v in r[1:]] for r in rows[1:]], fig_t["z"], atol=1e-6)

    long = list(csv.DictReader(io.StringIO(curves_csv(demo_fps, names))))
    first = next(r for r in long if r["name"] == "stories260k" and r["role"] == "q" and r["layer"] == "0")
    assert float(first["sigma"]) == pytest.approx(demo_fps[0].curves["q"][0])

    back = [Fingerprint.from_json(d) for d in json.loads(fingerprints_json(demo_fps))]
    assert [f.curves for f in back] == [f.curves for f in demo_fps]
    assert all(f.revision.startswith("sha256:") for f in back)

    page = html_report(demo_fps, names=names, failures=["/x: no such file or folder."])
    assert page.startswith("<!DOCTYPE html>") and "plotly" in page.lower()
    assert (
        page.count("<script") >= 3 and "<script src" not in page and len(page) > 1_000_000
    )  # plotly.js inlined: works offline
    assert all(n in page for n in names) and "/x: no such file or folder." in page
    assert "not proof" in page


def test_roles_present_needs_two_models():
    a = fake("org/a", {"q": [1, 2, 3], "q_bias": [1, 3, 2]})
    b = fake("org/b", {"q": [1, 2, 3]})
    assert roles_present([a, b]) == ["q"]
    assert roles_present([a]) == ["q", "q_bias"]


# ---------------------------------------------------------------- 50 models stay comfortable


def test_fifty_models_each_figure_under_a_second_and_labels_readable():
    from fingerprint.plots import pair_matrix, tick_label, tick_labels

    fps = [  # long, realistic names
        dataclasses.replace(fp, model=f"some-organisation/Some-Model-Family-{i}-7B-Instruct-GPTQ-Int4")
        for i, fp in enumerate(random_fps(50))
    ]
    pairs = pair_matrix(fps)
    heatmap_figure(fps[:3], pairs=pair_matrix(fps[:3]))  # imports (scipy) out of the timing
    for build in (
        lambda: heatmap_figure(fps, "mean", "clustered", pairs=pairs),  # heatmap + dendrogram
        lambda: heatmap_figure(fps, "mean", "input", pairs=pairs),
        lambda: curves_figure(fps),
    ):
        t0 = time.process_time()  # CPU seconds: what other work on the machine does not change
        fig = build()
        assert time.process_time() - t0 < 1.0
    fig = heatmap_figure(fps, "mean", "clustered", pairs=pairs)
    t = heat_trace(fig)
    names = display_names(fps)
    assert sorted(t["x"]) == sorted(names)  # full names stay the data (and the hover)
    axis = fig.layout.xaxis2
    assert axis.tickfont.size <= 9 and list(axis.tickvals) == t["x"]
    assert all(len(s) <= 24 for s in axis.ticktext) and all("…" in s for s in axis.ticktext)
    assert len(set(axis.ticktext)) == 50  # cut in the middle: the model number survives
    assert names[7] in t["customdata"][t["y"].index(names[7])][0]
    assert tick_label("abcdefghij", 5) == "ab…ij" and tick_label("short", 10) == "short"
    assert tick_labels(["org/a", "org/b"], 24) == ["org/a", "org/b"]
    legend = [tr.name for tr in curves_figure(fps).data if tr.showlegend]
    assert len(set(legend)) == 50 and all(len(n) <= 36 for n in legend)


def test_pinned_hub_names_are_short():
    a = fake("org/m@" + "a" * 40, {"q": [1, 2, 3]})
    b = fake("org/m@" + "b" * 40, {"q": [1, 2, 3]})
    assert display_names([a, b]) == ["org/m@aaaaaaa", "org/m@bbbbbbb"]


# ---------------------------------------------------------------- share links


def test_share_link_round_trip():
    from fingerprint.export import (
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

    bad, problems = parse_link({"models": "a/b,c/d", "role": "K; drop", "order": "x", "view": "y", "pair": "1,1"})
    assert (bad.role, bad.order, bad.view, bad.pair) == ("mean", "clustered", "normalised", None)
    assert len(problems) == 4
    assert parse_link({"role": "k"}) == (None, [])


# ---------------------------------------------------------------- settings, shared mode, uploads


def test_settings_from_env_and_secrets():
    from fingerprint.settings import Settings, apply_secrets

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


def test_shared_mode_refuses_local_paths_but_not_demo_uploads_or_hub(tmp_path):
    from fingerprint.settings import Settings, count_refusal, shared_mode_refusal

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
    from fingerprint.settings import Settings, UploadFolder, safe_filename, upload_refusal

    s = Settings(max_upload_mb=1)
    assert "can run code" in upload_refusal("pytorch_model.bin", 10, s)
    assert "not a .safetensors or .gguf" in upload_refusal("notes.txt", 10, s)
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

    from fingerprint.demo import Hit, SuggestionsUnavailable, format_hit, search_hub

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


# ---------------------------------------------------------------- static images


def test_static_images_without_chromium_or_kaleido(monkeypatch, demo_fps):
    import builtins

    import fingerprint.export as export

    monkeypatch.setattr(export, "find_chromium", lambda: None)
    problem = export.static_image_problem()
    assert "Static images need Chromium" in problem and "camera icon" in problem and "HTML report" in problem
    with pytest.raises(export.StaticImageUnavailable):
        export.static_image(heatmap_figure(demo_fps), "png")
    real_import = builtins.__import__

    def no_kaleido(name, *a, **k):
        if name == "kaleido":
            raise ImportError("no kaleido")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_kaleido)
    assert "kaleido is not installed" in export.static_image_problem()


def test_static_image_png_and_svg_where_chromium_is(demo_fps):
    import fingerprint.export as export

    if export.static_image_problem():
        pytest.skip("kaleido or Chromium not available here")
    fig = heatmap_figure(demo_fps)
    assert export.static_image(fig, "png", width=800).startswith(b"\x89PNG")
    assert b"<svg" in export.static_image(fig, "svg", width=800)[:200]


# ---------------------------------------------------------------- background runs and Stop (no streamlit)


def test_job_stop_keeps_finished_models_and_cancels_the_rest(monkeypatch):
    import importlib
    import sys
    import threading
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from app_pages.jobs import Job

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
    job = Job([(p, p) for p in paths], Options(use_cache=False), parallel=2).start()
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
    from fingerprint.settings import Settings, shared_mode_refusal

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
    from fingerprint.settings import MB, Settings, upload_refusal

    shared = Settings.from_env(
        {"FINGERPRINT_SHARED_MODE": "1", "FINGERPRINT_SESSION_UPLOADS": "3", "FINGERPRINT_SESSION_UPLOAD_MB": "10"}
    )
    assert upload_refusal("a.safetensors", 4 * MB, shared, held=[1 * MB, 1 * MB]) is None
    too_many = upload_refusal("a.safetensors", 1 * MB, shared, held=[1 * MB] * 3)
    assert "already holds 3 uploaded files (at most 3)" in too_many
    too_big = upload_refusal("a.safetensors", 6 * MB, shared, held=[3 * MB, 2 * MB])
    assert "would take 11 MB (at most 10 MB)" in too_big
    assert Settings.from_env({"FINGERPRINT_SHARED_MODE": "1"}).session_uploads == 8  # the shared default
