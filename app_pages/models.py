"""Models: choose what to fingerprint (Hub IDs with suggestions, presets, local paths, uploads), run it in the
background with progress and a Stop button, see what was done."""

import time

import streamlit as st

from dashboard.fingerprinting import fingerprint_running, start_fingerprinting
from dashboard.hub_search import SuggestionsUnavailable, format_hit, search_hub
from dashboard.navigation import PAGES
from dashboard.panels import glossary
from dashboard.policy import count_refusal
from dashboard.presets import PRESETS
from dashboard.state import (
    check_request,
    fingerprints,
    init_state,
    keep_widget_value,
    label_of,
    reference_shown,
    resolve_keys,
    seed_widget,
    settings,
    upload_folder,
)
from dashboard.uploads import PICKLE_EXPLANATION, UPLOAD_TYPES, upload_refusal
from fingerprint.demo import DEMO_MODELS, demo_paths
from fingerprint.present.formatting import human_bytes
from fingerprint.present.labels import format_label, hub_commit_url

init_state()
s = settings()
upload_limit = s.upload_limit_mb(st.get_option("server.maxUploadSize"))
st.title("Models")
st.markdown(
    "Add the models to fingerprint. Each is read once; results are kept on this "
    + ("server" if s.shared else "computer")
    + ", so the next time a model pinned to the same revision (or the same file) is asked for, nothing is read again."
)


def _add_ids(models) -> None:
    lines = [ln for ln in st.session_state.get("w_hub_ids", "").splitlines() if ln.strip()]
    for m in models:
        if m not in lines:
            lines.append(m)
    st.session_state["w_hub_ids"] = "\n".join(lines)


@st.cache_data(ttl=600, show_spinner=False, max_entries=500)
def _suggest(query: str) -> list:
    return search_hub(query, limit=10)


@st.fragment
def hub_search() -> None:
    """Suggestions while typing (one Hub search per pause); offline it says so and nothing else changes."""
    query = st.text_input(
        "Search the Hub",
        key="w_hub_search",
        type="search",
        live="400ms",
        placeholder="Type part of a model name, e.g. qwen2.5 7b",
        help="Suggestions come from the Hub's model search, most downloaded first. Click one to add it to the list.",
    ).strip()
    if len(query) < 2:
        return
    if time.monotonic() < st.session_state.get("search_offline_until", 0.0):
        st.caption(
            ":material/cloud_off: Suggestions are unavailable (the Hub could not be reached a moment ago). "
            "Type full IDs like `org/name` in the list above."
        )
        return
    try:
        hits = _suggest(query)
    except SuggestionsUnavailable as exc:
        st.session_state["search_offline_until"] = time.monotonic() + 30
        st.caption(
            f":material/cloud_off: Suggestions are unavailable (the Hub could not be reached: {exc}). "
            "Type full IDs like `org/name` in the list above; everything else works as usual."
        )
        return
    if not hits:
        st.caption(f"No Hub model ID contains “{query}”.")
        return
    st.caption("Click to add (downloads: last 30 days, as the Hub counts them):")
    for i, hit in enumerate(hits):
        if st.button(
            format_hit(hit),
            key=f"hit_{i}",
            icon=":material/add:",
            type="tertiary",
            on_click=_add_ids,
            args=((hit.id,),),
        ):
            st.rerun()  # the list above is outside this fragment: redraw the page


left, right = st.columns([3, 2], gap="large")
with left:
    seed_widget("w_hub_ids", "hub_ids", "")
    st.text_area(
        "Hugging Face Hub models, one per line",
        key="w_hub_ids",
        height=130,
        placeholder="Qwen/Qwen2.5-7B\nQwen/Qwen2.5-7B-Instruct@main\nbartowski/some-model-GGUF/model.Q8_0.gguf",
        help="Write `org/name`. Optionally add `@revision` (a branch, tag or commit sha) to pin a version, "
        "or `/file.gguf` to choose one GGUF file inside the repository. `demo:<name>` is one of the demo models "
        "shipped with this tool.",
    )
    keep_widget_value("w_hub_ids", "hub_ids")
    hub_search()
    if s.shared:
        st.caption(
            ":material/lock: This is a shared server: files and folders on the server cannot be read. "
            "Use Hub IDs, or upload a file below."
        )
    else:
        seed_widget("w_local_paths", "local_paths", "")
        st.text_area(
            "Files or folders on this computer, one per line",
            key="w_local_paths",
            height=90,
            placeholder="/data/models/my-model            (a folder with .safetensors, .gguf or .bin)\n"
            "/data/models/model.Q4_K_M.gguf",
            help="A folder holding safetensors, PyTorch .bin (single or sharded) or a GGUF file; or one such file. "
            "PyTorch checkpoints are read without unpickling; legacy (pre-1.6) pickles are refused.",
        )
        keep_widget_value("w_local_paths", "local_paths")

    files = st.file_uploader(
        f"Upload .safetensors, .gguf or PyTorch .bin/.pt files (up to {upload_limit:,} MB each)",
        type=list(UPLOAD_TYPES),  # the browser refuses other types before sending anything
        accept_multiple_files=True,
        max_upload_size=upload_limit,
        key="w_uploads",
        help="Each file is one model. A sharded checkpoint (several .safetensors or .bin files) cannot be uploaded: use "
        "its Hub ID"
        + ("." if s.shared else ", or its folder above.")
        + " Uploads are kept for this browser session only.",
    )
    seen = st.session_state.setdefault("upload_ids", {})  # uploader file_id -> saved path, or None if refused
    refused = st.session_state.setdefault("upload_refused", {})
    uploads = st.session_state["uploads"]
    current = []
    for f in files or []:
        current.append(f.file_id)
        if f.file_id in seen:
            continue
        why = upload_refusal(f.name, f.size, s, upload_limit, held=[u["size"] for u in uploads.values()])
        if why:
            seen[f.file_id] = None
            refused[f.file_id] = why
            continue
        f.seek(0)
        path = str(upload_folder().save(f, f.name))
        taken = {u["name"] for u in uploads.values()}
        name, n = f.name, 2
        while name in taken:
            stem, dot, ext = f.name.rpartition(".")
            name = f"{stem} ({n}).{ext}" if dot else f"{f.name} ({n})"
            n += 1
        uploads[path] = {"name": name, "original": f.name, "size": f.size}
        seen[f.file_id] = path
    for fid in [fid for fid in seen if fid not in current]:  # removed from the uploader: delete the file
        path = seen.pop(fid)
        refused.pop(fid, None)
        if path:
            upload_folder().remove(path)
            if path not in st.session_state["fps"]:
                uploads.pop(path, None)
    st.caption(f":material/block: {PICKLE_EXPLANATION}")
    for fid in current:
        if refused.get(fid):
            st.error(refused[fid], icon=":material/block:")
    upload_keys = [seen[fid] for fid in current if seen.get(fid)]
    if upload_keys:
        st.caption(
            "Uploaded, ready to fingerprint: "
            + ", ".join(f"{uploads[k]['name']} ({human_bytes(uploads[k]['size'])})" for k in upload_keys)
        )

with right:
    st.markdown("**Presets: well-known cases**")
    for i, p in enumerate(PRESETS):
        st.button(p.title, key=f"preset_{i}", help=p.explanation, on_click=_add_ids, args=(p.models,), width="stretch")
    st.caption("A preset adds its Hub IDs to the list on the left. Hover over a preset for what it shows.")

    def _add_demo() -> None:
        if s.shared:
            _add_ids(tuple(f"demo:{m.name}" for m in DEMO_MODELS))
            return
        lines = [ln for ln in st.session_state.get("w_local_paths", "").splitlines() if ln.strip()]
        st.session_state["w_local_paths"] = "\n".join(lines + [p for p in demo_paths() if p not in lines])

    st.button(
        "The demo models (offline)",
        key="preset_demo",
        on_click=_add_demo,
        width="stretch",
        help="The four tiny trained models shipped with this tool.",
    )

with st.expander("Options: token and reading mode"):
    if s.shared and s.hf_token:
        st.caption(
            "This server reads the Hub with its own token (never shown). For a gated or private model that token "
            "cannot open, give your own below."
        )
    if st.session_state.get("hf_token"):
        st.success("Your Hugging Face token is set for this browser session. It is never shown again or exported.")
        if st.button("Forget the token"):
            del st.session_state["hf_token"]
            st.rerun()
    else:
        token = st.text_input(
            "Your Hugging Face token (only for gated or private models)",
            type="password",
            key="w_token",
            help="Kept only in this browser session's memory, passed to the Hub, never written anywhere or exported. "
            "Create one at huggingface.co/settings/tokens (read access is enough).",
        )
        if token:
            st.session_state["hf_token"] = token
            del st.session_state["w_token"]
            st.rerun()
    seed_widget("w_mode", "mode", "auto")
    st.radio(
        "Reading mode",
        ["auto", "exact", "sampled"],
        key="w_mode",
        horizontal=True,
        format_func={
            "auto": "auto (exact under 1 GB, else sampled)",
            "exact": "exact (every weight)",
            "sampled": "sampled (~30 MB per model)",
        }.get,
        help="Sampled mode reads a few evenly spread blocks of rows of each tensor; each σ then carries a "
        "standard error. Exact mode reads every attention weight.",
    )
    keep_widget_value("w_mode", "mode")

typed = st.session_state["hub_ids"] + "\n" + ("" if s.shared else st.session_state.get("local_paths", ""))
refs = list(dict.fromkeys(r.strip() for r in typed.splitlines() if r.strip())) + upload_keys
running = fingerprint_running()
go = st.button(
    f"Fingerprint {len(refs)} model{'s' if len(refs) != 1 else ''}" if refs else "Fingerprint",
    type="primary",
    disabled=not refs or running,
    icon=":material/play_arrow:",
    key="compute",
    help="A run is in progress: wait for it or stop it (top of the page)." if running else None,
)
if go:
    keys, problems = resolve_keys(refs)
    keys, refusals = check_request(keys, s)
    problems += refusals
    too_many = count_refusal(st.session_state["fps"], keys, s)
    if too_many:
        problems.append(too_many)
        keys = []
    st.session_state["request_problems"] = problems
    if keys:
        start_fingerprinting(keys, mode=st.session_state["mode"])
        st.rerun()
for p in st.session_state.get("request_problems", []):
    st.error(p, icon=":material/block:")

runs = st.session_state["runs"]
fps = st.session_state["fps"]
if runs:
    if summary := st.session_state.get("last_summary"):
        st.caption(f"Last run: {summary}.")

    def _forget(keys: list[str]) -> None:
        for k in keys:
            runs.pop(k, None)
            fps.pop(k, None)

    failed = [k for k, run in runs.items() if run["status"] == "failed"]
    for i, key in enumerate(failed):  # one box per model: its latest attempt only
        row = st.container(horizontal=True, wrap=False, vertical_alignment="center")  # the close button stays beside
        row.error(runs[key]["message"], icon=":material/error:", width="stretch")
        row.button(
            "",
            icon=":material/close:",
            key=f"forget_failed_{i}",
            help="Remove this model and its error from the list",
            on_click=_forget,
            args=([key],),
        )
    if len(failed) > 1:
        st.button("Remove the failed models", icon=":material/delete_sweep:", on_click=_forget, args=(failed,))
    st.subheader("Models fingerprinted in this session")
    rows = []
    for ref, run in runs.items():
        fp = fps.get(ref)
        rows.append(
            {
                "model": label_of(ref),
                "format": format_label(fp.format, len(fp.files), fp.notes) if fp else "",
                "status": {
                    "computed": "done",
                    "from cache": "done (from the cache, nothing read)",
                    "cancelled": "cancelled",
                }.get(run["status"], "failed"),
                "architecture": (fp.architecture or "") if fp else "",
                "layers": str(fp.layers) if fp else "",
                "mode": fp.mode if fp else "",
                "revision": (("sha256:" if fp.source == "local" else "") + fp.short_revision) if fp else "",
                "on the Hub": (hub_commit_url(fp) or "") if fp else "",
                "bytes read": f"{human_bytes(fp.bytes_read)} of {human_bytes(fp.bytes_total)}" if fp else "",
                "reference": reference_shown(ref) if s.shared or ref in st.session_state["uploads"] else ref,
            }
        )
    st.dataframe(
        rows,
        hide_index=True,
        width="stretch",
        column_config={
            "status": st.column_config.TextColumn(
                "status", help="cancelled: stopped with the Stop button before it finished; run it again to finish it"
            ),
            "layers": st.column_config.TextColumn("layers", help="transformer blocks with attention tensors"),
            "format": st.column_config.TextColumn(
                "format",
                width="large",
                help="The file format and how the weights were read: a PyTorch pickle checkpoint is read without "
                "unpickling; packed GPTQ, AWQ, bitsandbytes or compressed-tensors weights are dequantized",
            ),
            "on the Hub": st.column_config.LinkColumn(
                "commit", help="The exact Hub commit every byte was read from", display_text=r"/commit/([0-9a-f]{7})"
            ),
            "revision": st.column_config.TextColumn(
                "revision",
                help="Hub: the commit sha. Local: the sha256 of the file(s), as the Hub shows for LFS files.",
            ),
            "bytes read": st.column_config.TextColumn("bytes read", help="bytes read of the weight files' total size"),
        },
    )
    if fingerprints():
        st.page_link(PAGES["compare"], label="Compare these models", icon=":material/arrow_forward:")

glossary()
