"""Compare: the N x N heatmap (σ-curves or any lineage signal), the σ-curves overlaid, and a pair view with its
caveats and the lineage evidence (every signal against the unrelated background, the verdict)."""

import streamlit as st

from dashboard.address_bar import link_in_address_bar, sync_link
from dashboard.fingerprinting import fingerprint_run, fingerprint_running, start_fingerprinting
from dashboard.lineage_runs import collect_finished_lineage, lineage_running, start_pairs
from dashboard.navigation import PAGES
from dashboard.panels import lineage_panel
from dashboard.state import fingerprints, init_state, keep_widget_value, seed_widget
from fingerprint.compare import pair_matrix
from fingerprint.present.evidence_figures import depth_figure, evidence_figure, moe_figure
from fingerprint.present.evidence_words import evidence_explanation, has_calibration, strength_text
from fingerprint.present.formatting import human_bytes
from fingerprint.present.labels import (
    MATRIX_SIGNALS,
    SHORT_SIGNAL,
    WHAT_SIGNAL,
    display_names,
    role_label,
    roles_present,
    score_label,
    short_role,
)
from fingerprint.present.sigma_figures import curves_figure, heatmap_figure, pair_figure
from fingerprint.present.sigma_words import certainty_sentence, interval_words, pair_caveats, strength
from fingerprint.present.signal_heatmap import signal_heatmap_figure
from fingerprint.present.tables import find_verdict, missing_pairs, pairs_rows, signal_matrix, signal_rows_text
from fingerprint.present.texts import (
    GLOSSARY,
    NO_CALIBRATION_VERDICT,
    PROBE_READS,
    SIGMA_CAVEAT_WITH_EXAMPLES,
    WHAT_IS_R,
)

LARGE_SET = 12  # more models than this: the lineage signals of every pair wait for a click

init_state()
collect_finished_lineage()
st.title("Compare")
lineage_panel("pairs")

all_fps = fingerprints()
running = (j := fingerprint_run()) is not None and not j.collected and j.then in ("restore", "compare")
if running and j.then == "restore":
    st.info(
        "Opening a shared view: fingerprinting the models of the link that are not in this session yet "
        "(pinned Hub models come from the cache when they were read before). Progress is above.",
        icon=":material/link:",
    )
elif running:
    st.info(
        "Fingerprinting the models: progress is above; the comparison appears here when they are done.",
        icon=":material/hourglass_top:",
    )
if not all_fps:
    if running:
        st.stop()
    st.info("No models fingerprinted yet. Run the demo on Home, or add models on the Models page.")
    st.page_link(PAGES["home"], label="Home: run the demo", icon=":material/play_arrow:")
    st.page_link(PAGES["models"], label="Models: add models", icon=":material/list:")
    st.stop()

refs = [fp_ref for fp_ref in st.session_state["fps"]]
names_all = dict(zip(refs, display_names(all_fps), strict=True))
kept = [r for r in st.session_state.get("compare_models", refs) if r in names_all] or refs
st.session_state["compare_models"] = kept
seed_widget("w_compare_models", "compare_models", kept)
st.session_state["w_compare_models"] = [r for r in st.session_state["w_compare_models"] if r in names_all]
if link_in_address_bar():
    st.caption(
        ":material/link: Opened from a share link: the models, role, order, curve view and pair it names. "
        "Change anything and the address bar becomes the link to the new view."
    )
st.multiselect(
    "Models to compare",
    refs,
    key="w_compare_models",
    format_func=names_all.get,
    help="All models fingerprinted in this session are offered; remove some to focus.",
)
keep_widget_value("w_compare_models", "compare_models")
chosen = st.session_state["compare_models"]
if not chosen:
    st.info("Choose at least one model above.")
    st.stop()

fps = [st.session_state["fps"][r] for r in chosen]
names = display_names(fps)
_sig = tuple((f.model, f.revision, f.mode, f.format, f.layers) for f in fps)
_cached = st.session_state.get("_pairs_cache")
if _cached and _cached[0] == _sig:  # comparing N models is N^2/2 correlations: once per set of models
    pairs = _cached[1]
else:
    pairs = pair_matrix(fps)
    st.session_state["_pairs_cache"] = (_sig, pairs)

# the explanation follows the signal the heatmap shows (the widget's value is current at the top of a rerun)
shown_signal = st.session_state.get("w_signal", st.session_state.get("signal", "sigma"))
if shown_signal in MATRIX_SIGNALS:
    st.info(
        f"The heatmap shows **{SHORT_SIGNAL[shown_signal]}**: {WHAT_SIGNAL[shown_signal]}, for every pair. Its subtitle "
        "says above which value a pair is clearly above every unrelated pair of the calibration; grey cells are "
        "pairs the signal cannot compare (the hover says why). The verdict for a pair, with all signals, is in the "
        "pair view below.",
        icon=":material/info:",
    )
else:
    st.info(WHAT_IS_R, icon=":material/info:")
    st.warning(SIGMA_CAVEAT_WITH_EXAMPLES, icon=":material/warning:")

# ---- heatmap
st.header("Correlation matrix")
roles = ["mean", *roles_present(fps)]
key_names = dict(zip(chosen, names, strict=True))
c0, c1, c2 = st.columns([2, 2, 3])
with c0:
    seed_widget("w_signal", "signal", "sigma")
    st.selectbox(
        "Signal",
        ["sigma", *MATRIX_SIGNALS],
        key="w_signal",
        format_func=lambda x: "σ-curves (weakest)" if x == "sigma" else SHORT_SIGNAL[x],
        help=f"σ-curves come from the fingerprints. The other signals read {PROBE_READS} and compare every pair, "
        "computed on request:  \n" + "\n".join(f"- **{SHORT_SIGNAL[x]}**: {WHAT_SIGNAL[x]}" for x in MATRIX_SIGNALS),
    )
    keep_widget_value("w_signal", "signal")
signal = st.session_state["signal"]
with c1:
    seed_widget("w_role", "role", "mean")
    if st.session_state["w_role"] not in roles:
        st.session_state["w_role"] = "mean"
    st.selectbox(
        "Which curve to correlate",
        roles,
        key="w_role",
        format_func=lambda r: "mean over projections (Q, K, V, O): the score" if r == "mean" else role_label(r),
        disabled=signal != "sigma",
        help=None if signal == "sigma" else "Only for the σ-curves signal.",
    )
    keep_widget_value("w_role", "role")
with c2:
    seed_widget("w_order", "order", "clustered")
    st.radio(
        "Order",
        ["clustered", "input"],
        key="w_order",
        horizontal=True,
        format_func={"clustered": "clustered (similar models next to each other)", "input": "as added"}.get,
        help="Clustered: average-linkage tree on 1 - r with optimal leaf ordering; the tree is drawn above.",
    )
    keep_widget_value("w_order", "order")
role, order = st.session_state["role"], st.session_state["order"]


def signal_heatmap() -> None:
    """The heatmap of one lineage signal: the pairs not computed yet on request (automatically for a few models)."""
    verdicts = st.session_state.setdefault("verdicts", {})
    failed = st.session_state.setdefault("lineage_failed", {})
    todo = missing_pairs(chosen, verdicts, skip=set(failed))
    if todo and not lineage_running():
        big = len(chosen) > LARGE_SET
        auto_key = tuple(sorted(chosen))
        if not big and st.session_state.get("signals_auto") != auto_key:
            st.session_state["signals_auto"] = auto_key  # once per set of models: Stop is not undone by a rerun
            start_pairs(todo, key_names)
            st.rerun()
        if big:
            st.warning(
                f"{len(chosen)} models make {len(todo)} pairs to compare. First {PROBE_READS} is read, once per "
                "model; then each pair takes from a fraction of a second to a few seconds (AWM aligns the hidden dimensions of both models). Progress and Stop appear at the top.",
                icon=":material/schedule:",
            )
        if st.button(
            f"Compute the lineage signals ({len(todo)} pair{'s' if len(todo) != 1 else ''} to go)",
            key="compute_signals",
            icon=":material/play_arrow:",
        ):
            start_pairs(todo, key_names)
            st.rerun()
    if todo and lineage_running():
        st.caption(
            ":material/hourglass_top: A lineage computation is running (progress at the top of the page, or on "
            "the Stress test page); the missing cells follow when it is done."
        )
    gone = [m for k, m in failed.items() if isinstance(k, tuple) and k[0] in key_names and k[1] in key_names]
    if gone:
        st.error("Could not be compared:\n" + "\n".join(f"- {m}" for m in gone), icon=":material/error:")
    matrix, notes = signal_matrix(chosen, verdicts, signal)
    st.plotly_chart(
        signal_heatmap_figure(names, matrix, notes, signal, order), width="stretch", theme=None, key="signal_heatmap"
    )
    st.caption(
        f"Each cell: {WHAT_SIGNAL[signal]} between the row's and the column's model, on the same -1..1 scale as the "
        "σ heatmap (red = alike, white = nothing in common). Unlike σ-curves, independent models score near 0 here. "
        "Hover a cell for where it falls among unrelated pairs; the pair view below has the whole evidence."
    )


if signal == "sigma":
    fig = heatmap_figure(fps, role, order, names, pairs)
    st.plotly_chart(fig, width="stretch", theme=None, key="heatmap")
    st.caption(
        f"Each cell: {score_label(role)} between the row's and the column's model. Red = similar shape, blue = "
        "opposite, white = unrelated. Hover a cell for every role's r, the layer counts and whether depths were "
        "resampled."
    )
elif len(fps) < 2:
    st.info("Choose at least two models to compare them on a lineage signal.")
else:
    signal_heatmap()

if len(fps) >= 2:
    rows = pairs_rows(fps, names, pairs)
    st.subheader("Pairs, highest first")
    st.dataframe(
        rows,
        hide_index=True,
        width="stretch",
        height=min(400, 38 + 35 * len(rows)),
        column_config={
            "r (mean over projections)": st.column_config.NumberColumn(format="%.3f", help=score_label("mean")),
            **{
                k: st.column_config.NumberColumn(format="%.3f")
                for k in rows[0]
                if k.startswith("r ") and k != "r (mean over projections)"
            },
        },
    )

# ---- curves
st.header("σ-curves")
c1, c2 = st.columns([2, 3])
with c1:
    seed_widget("w_curve_mode", "curve_mode", "normalised")
    st.radio(
        "Show",
        ["normalised", "raw"],
        key="w_curve_mode",
        horizontal=True,
        format_func={"normalised": "normalised (shape only, what r compares)", "raw": "raw σ"}.get,
    )
    keep_widget_value("w_curve_mode", "curve_mode")
with c2:
    present = roles_present(fps)
    default_roles = [r for r in present if r in ("q", "k", "v", "o", "qkv")] or present[:4]
    curve_roles = st.multiselect("Panels", present, default=default_roles, format_func=role_label, key="w_curve_roles")
if curve_roles:
    st.plotly_chart(
        curves_figure(fps, curve_roles, st.session_state["curve_mode"] == "normalised", names),
        width="stretch",
        theme=None,
        key="curves",
    )
    if len({fp.layers for fp in fps}) > 1:
        st.caption(
            "The models have different depths: the x axis is relative depth, and the dashed curves are the ones a "
            "comparison stretches onto the deeper model's layers."
        )

# ---- pair view


def show_verdict(v) -> None:
    """The verdict (always 'consistent with', never an accusation), why, what could not be checked, caveats, and
    every signal against the unrelated background."""
    icon = {True: ":material/link:", False: ":material/link_off:"}[v.related]
    if v.verdict == "insufficient_data":
        icon = ":material/help:"
    with st.container(border=True):
        st.subheader(f"{icon} Verdict: {v.sentence}", anchor=False)
        st.caption(f"{v.a} vs {v.b} · {strength_text(v)}")
        if v.because:
            st.markdown("**Why:**\n" + "\n".join(f"- {b}" for b in v.because))
        if v.not_checked:
            st.markdown("**Could not be checked:**\n" + "\n".join(f"- {n}" for n in v.not_checked))
    st.warning("**Caveats:**\n" + "\n".join(f"- {c}" for c in v.caveats), icon=":material/warning:")
    st.plotly_chart(evidence_figure(v), width="stretch", theme=None, key="evidence")
    st.caption(evidence_explanation())
    if not has_calibration() and v.verdict not in ("same_weights", "quantized_copy"):
        st.info(NO_CALIBRATION_VERDICT, icon=":material/info:")
    depth = depth_figure(v)
    if depth is not None:
        m = v.signals["depth"].detail["matrix"]
        differ = len(m) != len(m[0])
        with st.expander(
            "Layer-by-layer alignment" + (" (the models have different depths)" if differ else ""),
            expanded=differ,
            icon=":material/grid_on:",
        ):
            st.plotly_chart(depth, width="stretch", theme=None, key="depth")
            st.caption(
                "Every layer of one model against every layer of the other. A copy or a fine-tune lights up "
                "the diagonal; a model with layers removed or added shows a path that skips; unrelated models "
                "show no pattern."
            )
    moe = moe_figure(v)
    if moe is not None:
        st.plotly_chart(moe, width="stretch", theme=None, key="moe")
    with st.expander("Every number, as a table", icon=":material/table:"):
        st.dataframe(signal_rows_text(v), hide_index=True, width="stretch")


def lineage_evidence(ka: str, kb: str, label: dict) -> None:
    st.subheader("Lineage evidence")
    st.markdown(
        "σ-curves alone cannot tell a copy from a look-alike. The lineage evidence reads a sample of both models' "
        "weights and compares them with six signals, from the hardest to fake to the weakest, each placed among "
        "what pairs of unrelated models score."
    )
    v = find_verdict(st.session_state.get("verdicts", {}), ka, kb)
    if v is not None:
        show_verdict(v)
        return
    failed = st.session_state.get("lineage_failed", {})
    why = failed.get((ka, kb)) or failed.get((kb, ka))
    if why:
        st.error(f"Could not be computed: {why}", icon=":material/error:")
    running = lineage_running()
    if st.button(
        "Compute the lineage evidence",
        key="lineage_pair",
        icon=":material/balance:",
        disabled=running,
        help=f"Reads {PROBE_READS} and computes every signal. Seconds for small models.",
    ):
        for k in [(ka, kb), (kb, ka)]:
            failed.pop(k, None)
        start_pairs([(ka, kb)], label)
        st.rerun()
    if running:
        st.caption("Another lineage computation is running (progress at the top of the page).")


if len(fps) >= 2:
    st.header("Pair view")
    index_of = {r: i for i, r in enumerate(chosen)}
    label = dict(zip(chosen, names, strict=True))
    by_name = {n: r for r, n in label.items()}
    top = rows[0]
    seed_widget("w_pair_a", "pair_a", by_name[top["model A"]])
    seed_widget("w_pair_b", "pair_b", by_name[top["model B"]])
    for k, v in (("w_pair_a", by_name[top["model A"]]), ("w_pair_b", by_name[top["model B"]])):
        if st.session_state[k] not in index_of:
            st.session_state[k] = v
    c1, c2 = st.columns(2)
    with c1:
        st.selectbox("Model A", chosen, key="w_pair_a", format_func=label.get)
    with c2:
        st.selectbox("Model B", chosen, key="w_pair_b", format_func=label.get)
    keep_widget_value("w_pair_a", "pair_a")
    keep_widget_value("w_pair_b", "pair_b")
    ia, ib = index_of[st.session_state["pair_a"]], index_of[st.session_state["pair_b"]]
    fa, fb, c = fps[ia], fps[ib], pairs[ia][ib]
    na, nb = names[ia], names[ib]
    if ia == ib:
        st.info("Choose two different models.")
    else:
        cols = st.columns(1 + len(c.per_role))
        cols[0].metric(
            "r: the score",
            "n/a" if c.score is None else f"{c.score:.3f}",
            help=f"{score_label('mean')}. How sure: {interval_words(c, 'mean', 3) or 'n/a'}.",
        )
        for col, (r, v) in zip(cols[1:], c.per_role.items(), strict=True):
            how_sure = interval_words(c, r, 3) or "n/a"
            col.metric(f"r, {short_role(r)}", "n/a" if v is None else f"{v:.3f}", help=f"{score_label(r)}. {how_sure}.")
        st.markdown(f"**How strong:** {strength(c.score)}.")
        st.markdown(f"**How sure:** {certainty_sentence(c, fa, fb, na, nb)}")
        if not c.exact:  # one click reads both models in full; the pair then shows exact values
            sampled_keys = [k for k, f in ((chosen[ia], fa), (chosen[ib], fb)) if f.mode == "sampled"]
            if st.button(
                "Measure this pair exactly",
                key="measure_pair_exactly",
                icon=":material/straighten:",
                disabled=fingerprint_running(),
                help="Fingerprints "
                + " and ".join(label[k] for k in sampled_keys)
                + " again in exact mode: every weight the σ-curves use is read (as many bytes as the "
                "model's attention layers hold: seconds for small models, minutes for large Hub models). A shared "
                "server caps exact reads and may sample a very large model again.",
            ):
                start_fingerprinting(sampled_keys, mode="exact")
                st.rerun()
            if fingerprint_running():
                st.caption(
                    ":material/hourglass_top: Fingerprinting is running (progress at the top); the pair shows its "
                    "new values when it is done."
                )
        facts = {
            "": ["architecture", "layers", "format", "reading mode", "revision", "bytes read"],
            na: [fa.architecture, fa.layers, fa.format, fa.mode, fa.short_revision, human_bytes(fa.bytes_read)],
            nb: [fb.architecture, fb.layers, fb.format, fb.mode, fb.short_revision, human_bytes(fb.bytes_read)],
        }
        st.dataframe({k: [str(x) for x in v] for k, v in facts.items()}, hide_index=True, width="stretch")
        st.markdown("**Before you draw a conclusion from this pair:**")
        st.warning("\n".join(f"- {x}" for x in pair_caveats(fa, fb, c, na, nb)), icon=":material/warning:")
        st.plotly_chart(pair_figure(fa, fb, na, nb, c), width="stretch", theme=None, key="pair")
        lineage_evidence(chosen[ia], chosen[ib], label)

sync_link(chosen)  # the address bar is always a link to this view
st.page_link(
    PAGES["export"],
    label="Export these results (CSV, JSON, HTML report, images, a share link)",
    icon=":material/download:",
)

with st.expander("What the words on this page mean", icon=":material/menu_book:"):
    st.markdown("\n".join(f"- **{term}**: {meaning}." for term, meaning in GLOSSARY.items()))
