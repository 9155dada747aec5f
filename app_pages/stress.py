"""Stress test: change a small model without changing what it computes, and see which lineage signals notice."""

from pathlib import Path

import streamlit as st

from dashboard.lineage_runs import collect_finished_lineage, lineage_run, lineage_running, start_lineage
from dashboard.panels import glossary, lineage_panel
from dashboard.state import init_state, keep_widget_value, seed_widget, settings
from fingerprint.demo import DEMO_MODELS, demo_name
from fingerprint.errors import FingerprintError
from fingerprint.lineage.stress import StressReport, stress_test
from fingerprint.lineage.transforms import TRANSFORMS
from fingerprint.present.evidence_words import has_calibration
from fingerprint.present.labels import SHORT_SIGNAL
from fingerprint.present.stress_figure import stress_figure
from fingerprint.present.tables import stress_rows
from fingerprint.present.texts import NO_CALIBRATION_STRESS, STRESS_EXPLANATION

init_state()
collect_finished_lineage()
st.title("Stress test")
st.markdown(STRESS_EXPLANATION)

s = settings()
# the demo models the stress test can load: local safetensors folders with a config.json
STRESSABLE_DEMOS = {str(m.absolute): m for m in DEMO_MODELS if (m.absolute / "config.json").is_file()}
OTHER = "__other__"

c1, c2 = st.columns([2, 3])
with c1:
    options = list(STRESSABLE_DEMOS) + ([] if s.shared else [OTHER])
    seed_widget("w_stress_model", "stress_model", options[0])
    if st.session_state["w_stress_model"] not in options:
        st.session_state["w_stress_model"] = options[0]
    st.selectbox(
        "Model",
        options,
        key="w_stress_model",
        format_func=lambda k: "another local folder…" if k == OTHER else f"{STRESSABLE_DEMOS[k].name} (demo model)",
        help="A small Llama-family model (llama, mistral, qwen2) stored as safetensors with its config.json: the "
        "stress test loads it whole and runs it, so at most 256 MiB.",
    )
    keep_widget_value("w_stress_model", "stress_model")
    path = st.session_state["stress_model"]
    if path == OTHER:
        path = st.text_input(
            "Folder",
            key="w_stress_path",
            placeholder="/path/to/model-folder",
            help="A folder with config.json and .safetensors weights.",
        ).strip()
    elif path in STRESSABLE_DEMOS:
        st.caption(STRESSABLE_DEMOS[path].description)
    if s.shared:
        st.caption(":material/public: On this shared server only the demo models can be stress-tested.")
with c2:
    st.markdown("**Transformations** (all by default; a few seconds each on a demo model)")
    picked = set(st.session_state.get("stress_transforms", list(TRANSFORMS)))
    cols = st.columns(2)
    for col, exact, title in (
        (cols[0], True, "function-preserving: the outputs do not change"),
        (cols[1], False, "output-changing: the outputs move (measured)"),
    ):
        with col:
            st.caption(title)
            for key, t in TRANSFORMS.items():
                if t.exact == exact:
                    seed_widget(f"w_stress_t_{key}", f"_stress_t_{key}", key in picked)
                    st.checkbox(t.label, key=f"w_stress_t_{key}", help=t.description)
    chosen = [k for k in TRANSFORMS if st.session_state[f"w_stress_t_{k}"]]
    st.session_state["stress_transforms"] = chosen
    for k in TRANSFORMS:
        st.session_state[f"_stress_t_{k}"] = k in chosen


def stress_worker(model: str, transforms: list[str]):
    """One transformation at a time, so Stop takes effect between two and the panel can say how far it is."""
    shown = demo_name(model) or model

    def work(task) -> dict:
        report = StressReport(model=shown)
        for i, t in enumerate(transforms):
            if task.cancel.is_set():
                report.notes.append(f"stopped after {i} of {len(transforms)} transformations")
                break
            task.status = f"Stress test of {shown}: {TRANSFORMS[t].label} ({i + 1} of {len(transforms)})"
            part = stress_test(model, [t])
            report.rows += part.rows
            report.notes += [n for n in part.notes if n not in report.notes]
        return {"model": model, "report": report}

    return work


def folder_problem(path: str) -> str | None:
    """Why ``path`` cannot be stress-tested, in words that say what to give instead; None if it can be tried."""
    p = Path(path).expanduser()
    if not p.exists():
        return f"{path}: no such file or folder. Give a folder with a model's config.json and .safetensors weights."
    if p.is_file():
        kind = "a GGUF file" if p.suffix == ".gguf" else "a file"
        return (
            f"{path}: {kind}, not a folder. The stress test loads a whole model to run it, so it needs a folder with "
            "the model's config.json and .safetensors weights (a small Llama-family model)."
        )
    if not (p / "config.json").is_file():
        return f"{path}: this folder has no config.json. Give the folder a model was saved to (save_pretrained)."
    return None


running = lineage_running()
busy = running and (t := lineage_run()) is not None and t.kind != "stress"
if st.button(
    "Run the stress test",
    key="run_stress",
    icon=":material/play_arrow:",
    type="primary",
    disabled=running or not chosen or not path,
):
    st.session_state.pop("lineage_error", None)  # a new attempt: only its own message is shown
    st.session_state.pop("stress", None)
    problem = None
    if s.shared and path not in STRESSABLE_DEMOS:
        problem = "Only the demo models can be stress-tested on this shared server."
    elif path not in STRESSABLE_DEMOS:
        problem = folder_problem(path)
    st.session_state["stress_problem"] = problem
    if problem is None:
        start_lineage("stress", stress_worker(str(Path(path).expanduser()), list(chosen)))
        st.rerun()
if problem := st.session_state.get("stress_problem"):
    st.error(problem, icon=":material/error:")
lineage_panel("stress")
if busy:
    st.caption("The lineage evidence of a pair is being computed (progress on Compare); run this afterwards.")
if not chosen:
    st.caption("Choose at least one transformation.")

error = st.session_state.get("lineage_error")
t = lineage_run()
if error and t is not None and t.kind == "stress" and t.collected:
    err = t.error
    st.error(
        str(err) if isinstance(err, FingerprintError) else f"The stress test failed: {error}", icon=":material/error:"
    )

result = st.session_state.get("stress")
if result:
    report: StressReport = result["report"]
    if not report.rows:
        st.info("No transformation was run.")
        st.stop()
    st.header("Which signals survived")
    st.caption(
        f"{len(report.rows)} transformation{'s' if len(report.rows) != 1 else ''} of {report.model} in "
        f"{result['seconds']:.1f} s."
    )
    if not has_calibration():
        st.info(NO_CALIBRATION_STRESS, icon=":material/info:")
    st.plotly_chart(stress_figure(report), width="stretch", theme=None, key="stress_figure")
    rows = stress_rows(report)

    def shown(k: str, x):
        if x is None:
            return "n/a"
        if isinstance(x, float) and k == "output change (nats)":
            return f"{x:.0e} (unchanged)" if x < 1e-9 else f"{x:.2g}"
        if isinstance(x, float):
            return f"{x:.3f}"
        return x

    first = ["transformation", "kind", "output change (nats)", "verdict (changed vs original)"]
    st.dataframe(
        [{k: shown(k, r[k]) for k in [*first, *(k for k in r if k not in first)]} for r in rows],
        hide_index=True,
        width="stretch",
        column_config={
            "transformation": st.column_config.TextColumn(pinned=True),
            "verdict (changed vs original)": st.column_config.TextColumn(width="large"),
            "output change (nats)": st.column_config.TextColumn(
                help="The largest change of any next-token log-probability over a few token sequences: about "
                "1e-12 means the same model."
            ),
        },
    )
    st.caption(
        "n/a: the signal does not apply or could not be computed for that pair (hover the cell in the chart "
        "for the reason)."
    )
    exact_broken = sorted({n for r in report.rows if r.exact for n, ok in r.survived.items() if ok is False})
    if exact_broken:
        st.warning(
            "Broken by an exact transformation, so defeatable on purpose at no cost: "
            + ", ".join(SHORT_SIGNAL[n] for n in exact_broken)
            + ". A low value on these is not evidence of independence.",
            icon=":material/warning:",
        )
    for note in report.notes:
        st.caption(f":material/info: {note}")

glossary()
