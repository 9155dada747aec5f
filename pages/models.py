"""Models: choose what to fingerprint (Hub IDs, presets, local paths), compute with progress, see what was done."""

import streamlit as st

from fingerprint.demo import PRESETS, demo_paths
from fingerprint.export import human_bytes, hub_commit_url
from pages.common import PAGES, fingerprints, init_state, label_of, persist, run_compute, save

init_state()
st.title("Models")
st.markdown(
    "Add the models to fingerprint. Each is read once; results are kept on this computer, so the next time a model "
    "pinned to the same revision (or the same local file) is asked for, nothing is read again."
)

left, right = st.columns([3, 2], gap="large")
with left:
    persist("w_hub_ids", "hub_ids", "")
    st.text_area(
        "Hugging Face Hub models, one per line",
        key="w_hub_ids",
        height=130,
        placeholder="Qwen/Qwen2.5-7B\nQwen/Qwen2.5-7B-Instruct@main\nbartowski/some-model-GGUF/model.Q8_0.gguf",
        help="Write `org/name`. Optionally add `@revision` (a branch, tag or commit sha) to pin a version, "
        "or `/file.gguf` to choose one GGUF file inside the repository.",
    )
    save("w_hub_ids", "hub_ids")
    persist("w_local_paths", "local_paths", "")
    st.text_area(
        "Files or folders on this computer, one per line",
        key="w_local_paths",
        height=90,
        placeholder="/data/models/my-model            (a folder with .safetensors or .gguf)\n/data/models/model.Q4_K_M.gguf",
        help="A folder holding safetensors (single or sharded) or a GGUF file; or a .safetensors / .gguf file. "
        "Pickle checkpoints (.bin, .pt) are refused: opening them can run code.",
    )
    save("w_local_paths", "local_paths")

with right:
    st.markdown("**Presets: well-known cases**")

    def _add_preset(models: tuple[str, ...]) -> None:
        lines = [ln for ln in st.session_state.get("w_hub_ids", "").splitlines() if ln.strip()]
        for m in models:
            if m not in lines:
                lines.append(m)
        st.session_state["w_hub_ids"] = "\n".join(lines)

    for i, p in enumerate(PRESETS):
        st.button(p.title, key=f"preset_{i}", help=p.explanation, on_click=_add_preset, args=(p.models,), width="stretch")
    st.caption("A preset adds its Hub IDs to the list on the left. Hover over a preset for what it shows.")

    def _add_demo() -> None:
        lines = [ln for ln in st.session_state.get("w_local_paths", "").splitlines() if ln.strip()]
        st.session_state["w_local_paths"] = "\n".join(lines + [p for p in demo_paths() if p not in lines])

    st.button("The demo models (offline)", key="preset_demo", on_click=_add_demo, width="stretch",
              help="The four tiny trained models shipped with this tool.")

with st.expander("Options: token and reading mode"):
    if st.session_state.get("hf_token"):
        st.success("A Hugging Face token is set for this browser session. It is never shown again or exported.")
        if st.button("Forget the token"):
            del st.session_state["hf_token"]
            st.rerun()
    else:
        token = st.text_input(
            "Hugging Face token (only for gated or private models)",
            type="password",
            key="w_token",
            help="Kept only in this browser session's memory, passed to the Hub, never written anywhere or exported. "
            "Create one at huggingface.co/settings/tokens (read access is enough).",
        )
        if token:
            st.session_state["hf_token"] = token
            del st.session_state["w_token"]
            st.rerun()
    persist("w_mode", "mode", "auto")
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
    save("w_mode", "mode")

refs = [ln.strip() for ln in (st.session_state["hub_ids"] + "\n" + st.session_state["local_paths"]).splitlines()]
refs = list(dict.fromkeys(r for r in refs if r))
go = st.button(
    f"Fingerprint {len(refs)} model{'s' if len(refs) != 1 else ''}" if refs else "Fingerprint",
    type="primary",
    disabled=not refs,
    icon=":material/play_arrow:",
    key="compute",
)
if go:
    run_compute(refs, mode=st.session_state["mode"], token=st.session_state.get("hf_token"))

runs = st.session_state["runs"]
fps = st.session_state["fps"]
if runs:
    for ref, run in runs.items():
        if run["status"] == "failed":
            st.error(run["message"], icon=":material/error:")
    st.subheader("Models fingerprinted in this session")
    rows = []
    for ref, run in runs.items():
        fp = fps.get(ref)
        rows.append(
            {
                "model": label_of(ref),
                "status": {"computed": "done", "from cache": "done (from the cache, nothing read)"}.get(run["status"], "failed"),
                "architecture": fp.architecture if fp else None,
                "layers": fp.layers if fp else None,
                "format": fp.format if fp else None,
                "mode": fp.mode if fp else None,
                "revision": (("sha256:" if fp.source == "local" else "") + fp.short_revision) if fp else None,
                "on the Hub": hub_commit_url(fp) if fp else None,
                "bytes read": f"{human_bytes(fp.bytes_read)} of {human_bytes(fp.bytes_total)}" if fp else None,
                "reference": ref,
            }
        )
    st.dataframe(
        rows,
        hide_index=True,
        width="stretch",
        column_config={
            "on the Hub": st.column_config.LinkColumn(
                "commit", help="The exact Hub commit every byte was read from", display_text=r"/commit/([0-9a-f]{7})"
            ),
            "revision": st.column_config.TextColumn(
                "revision", help="Hub: the commit sha. Local: the sha256 of the file(s), as the Hub shows for LFS files."
            ),
            "bytes read": st.column_config.TextColumn("bytes read", help="bytes read of the weight files' total size"),
        },
    )
    if fingerprints():
        st.page_link(PAGES["compare"], label="Compare these models", icon=":material/arrow_forward:")
