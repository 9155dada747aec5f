"""Compare: the answer first - one pair's verdict in plain words with its evidence - then every pair at once (the
verdict matrix, one lineage signal, or the σ-curves the paper used, labelled as the weak signal they are), then the
σ-curves layer by layer."""

import streamlit as st

from dashboard.address_bar import link_in_address_bar, sync_link
from dashboard.fingerprinting import fingerprint_run, fingerprint_running, start_fingerprinting
from dashboard.lineage_runs import (
    AUTO_MAX_MODELS,
    collect_finished_lineage,
    lineage_running,
    probes_cost,
    start_pairs,
    start_verdicts_when_cheap,
)
from dashboard.navigation import PAGES
from dashboard.panels import glossary, lineage_panel
from dashboard.state import all_pairs_view, fingerprints, init_state, keep_widget_value, seed_widget
from dashboard.verdict_view import show_verdict
from fingerprint.compare import pair_matrix
from fingerprint.present.evidence_words import probe_cost_text
from fingerprint.present.formatting import human_bytes
from fingerprint.present.labels import (
    ALL_PAIRS_NAMES,
    ALL_PAIRS_VIEWS,
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
from fingerprint.present.sigma_words import certainty_sentence, interval_words, pair_caveats, r_words, strength
from fingerprint.present.signal_heatmap import signal_heatmap_figure
from fingerprint.present.tables import find_verdict, missing_pairs, pairs_rows, signal_matrix, verdict_rows
from fingerprint.present.texts import PROBE_READS, SIGMA_CAVEAT, SIGMA_CAVEAT_WITH_EXAMPLES, WHAT_IS_R
from fingerprint.present.verdict_matrix import verdict_grid, verdict_matrix_figure

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
key_names = dict(zip(chosen, names, strict=True))
_sig = tuple((f.model, f.revision, f.mode, f.format, f.layers) for f in fps)
_cached = st.session_state.get("_pairs_cache")
if _cached and _cached[0] == _sig:  # comparing N models is N^2/2 correlations: once per set of models
    pairs = _cached[1]
else:
    pairs = pair_matrix(fps)
    st.session_state["_pairs_cache"] = (_sig, pairs)

verdicts = st.session_state.setdefault("verdicts", {})
failed = st.session_state.setdefault("lineage_failed", {})
if len(fps) >= 2 and start_verdicts_when_cheap(chosen, key_names) and lineage_running():
    st.rerun()  # to show the progress panel above
verdicts = st.session_state["verdicts"]


def compute_button(todo: list[tuple[str, str]], key: str, label: str) -> None:
    """A button that computes the verdicts of ``todo``, with what that reads said before it is clicked."""
    if lineage_running():
        st.caption(
            ":material/hourglass_top: Weighing the evidence (progress and Stop at the top of the page); "
            "the verdicts appear here when they are done."
        )
        return
    models = list(dict.fromkeys(k for p in todo for k in p))
    if st.button(label, key=key, icon=":material/balance:", type="primary"):
        for a, b in todo:
            failed.pop((a, b), None)
            failed.pop((b, a), None)
        start_pairs(todo, key_names)
        st.rerun()
    st.caption(f":material/schedule: {probe_cost_text(probes_cost(models), key_names)}")


# ---------------------------------------------------------------- the answer for one pair


def pair_answer(ka: str, kb: str) -> None:
    """The verdict of the pair, or why there is none yet and the one click that computes it."""
    v = find_verdict(verdicts, ka, kb)
    if v is not None:
        show_verdict(v)
        return
    why = failed.get((ka, kb)) or failed.get((kb, ka))
    if why:
        st.error(f"Could not be computed: {why}", icon=":material/error:")
    else:
        st.info(
            f"No verdict for {key_names[ka]} and {key_names[kb]} yet. It compares a sample of both models' weights "
            "with six signals, each placed among what unrelated pairs of models score.",
            icon=":material/balance:",
        )
    compute_button([(ka, kb)], "lineage_pair", "Weigh the evidence for this pair" if not why else "Try again")


def sigma_line(ia: int, ib: int) -> None:
    """The σ-curve score of the pair, labelled as the weak signal it is, with its interval and the exact reading."""
    c, fa, fb = pairs[ia][ib], fps[ia], fps[ib]
    with st.container(border=True):
        st.markdown(
            f"**σ-curves (the measure the Pangu paper used; the weakest signal):** {r_words(c, 'mean', 3)}: "
            f"{strength(c.score)}. {SIGMA_CAVEAT}"
        )
        if c.exact:
            return
        sampled_keys = [k for k, f in ((chosen[ia], fa), (chosen[ib], fb)) if f.mode == "sampled"]
        if st.button(
            "Measure this pair exactly",
            key="measure_pair_exactly",
            icon=":material/straighten:",
            disabled=fingerprint_running(),
            help="Fingerprints "
            + " and ".join(key_names[k] for k in sampled_keys)
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


def default_pair() -> tuple[str, str]:
    """The pair to open on: the strongest verdict when there are verdicts, else the highest σ score."""
    if any(find_verdict(verdicts, a, b) for i, a in enumerate(chosen) for b in chosen[i + 1 :]):
        top = verdict_rows(chosen, names, verdicts)[0]
    else:
        top = pairs_rows(fps, names, pairs)[0]
    by_name = {n: r for r, n in key_names.items()}
    return by_name[str(top["model A"])], by_name[str(top["model B"])]


index_of = {r: i for i, r in enumerate(chosen)}
ia = ib = 0
if len(fps) >= 2:
    st.header("Is one derived from the other?")
    first, second = default_pair()
    seed_widget("w_pair_a", "pair_a", first)
    seed_widget("w_pair_b", "pair_b", second)
    for k, dflt in (("w_pair_a", first), ("w_pair_b", second)):
        if st.session_state[k] not in index_of:
            st.session_state[k] = dflt
    c1, c2 = st.columns(2)
    with c1:
        st.selectbox("Model A", chosen, key="w_pair_a", format_func=key_names.get)
    with c2:
        st.selectbox("Model B", chosen, key="w_pair_b", format_func=key_names.get)
    keep_widget_value("w_pair_a", "pair_a")
    keep_widget_value("w_pair_b", "pair_b")
    ia, ib = index_of[st.session_state["pair_a"]], index_of[st.session_state["pair_b"]]
    if ia == ib:
        st.info("Choose two different models.")
    else:
        pair_answer(chosen[ia], chosen[ib])
        sigma_line(ia, ib)

# ---------------------------------------------------------------- every pair at once


def matrix_controls() -> str:
    """The signal, order and role choosers; the signal shown. Until the visitor picks one, the verdicts are shown
    as soon as there are any, the σ-curves before."""
    have_verdicts = any(find_verdict(verdicts, a, b) for i, a in enumerate(chosen) for b in chosen[i + 1 :])
    if not st.session_state.get("signal_picked"):
        st.session_state["w_signal"] = all_pairs_view(have_verdicts)

    def picked() -> None:
        st.session_state["signal_picked"] = True

    c0, c1, c2 = st.columns([2, 2, 3])
    with c0:
        seed_widget("w_signal", "signal", "sigma")
        st.selectbox(
            "Show",
            ALL_PAIRS_VIEWS,
            key="w_signal",
            on_change=picked,
            format_func=ALL_PAIRS_NAMES.get,
            help="Verdicts weigh every lineage signal of a pair. The single signals read "
            f"{PROBE_READS}:  \n"
            + "\n".join(f"- **{SHORT_SIGNAL[x]}**: {WHAT_SIGNAL[x]}" for x in MATRIX_SIGNALS)
            + "\n- **σ-curves** come from the fingerprints alone: the weakest signal (look-alike models score "
            "as high as copies).",
        )
        keep_widget_value("w_signal", "signal")
    signal = st.session_state["signal"]
    roles = ["mean", *roles_present(fps)]
    with c1:
        seed_widget("w_role", "role", "mean")
        if st.session_state["w_role"] not in roles:
            st.session_state["w_role"] = "mean"
        st.selectbox(
            "Which σ-curve",
            roles,
            key="w_role",
            format_func=lambda r: "mean over projections (Q, K, V, O): the score" if r == "mean" else role_label(r),
            disabled=signal != "sigma",
            help=None if signal == "sigma" else "Only for the σ-curves.",
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
            help="Clustered: average-linkage tree with optimal leaf ordering, so related models sit together.",
        )
        keep_widget_value("w_order", "order")
    return str(signal)


def missing_verdicts() -> None:
    """The pairs without a verdict: what failed, and the click that computes the rest."""
    todo = missing_pairs(chosen, verdicts, skip=set(failed))
    gone = [m for k, m in failed.items() if isinstance(k, tuple) and k[0] in key_names and k[1] in key_names]
    if gone:
        st.error("Could not be compared:\n" + "\n".join(f"- {m}" for m in gone), icon=":material/error:")
    if todo:
        if len(chosen) > AUTO_MAX_MODELS and not lineage_running():
            st.caption(
                f"{len(chosen)} models make {len(todo)} pairs: each pair takes from a fraction of a second to a few "
                "seconds once both samples are read, so they wait for a click."
            )
        n = len(todo)
        compute_button(todo, "compute_signals", f"Compute the verdicts ({n} pair{'s' if n != 1 else ''} to go)")


def all_pairs(signal: str) -> None:
    missing_verdicts()  # whatever is shown, the verdicts of the pairs left are one click away
    if signal == "sigma":
        st.warning(SIGMA_CAVEAT_WITH_EXAMPLES, icon=":material/warning:")
        role = st.session_state["role"]
        fig = heatmap_figure(fps, role, st.session_state["order"], names, pairs)
        st.plotly_chart(fig, width="stretch", theme=None, key="heatmap")
        st.caption(
            f"Each cell: {score_label(role)} between the row's and the column's model. {WHAT_IS_R} Hover a cell for "
            "every role's r, its interval and the layer counts."
        )
        rows = pairs_rows(fps, names, pairs)
        st.subheader("Pairs, highest σ score first", anchor=False)
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
        return
    order = st.session_state["order"]
    if signal == "verdict":
        grid = verdict_grid(chosen, verdicts, failed)
        st.plotly_chart(verdict_matrix_figure(names, grid, order), width="stretch", theme=None, key="verdict_matrix")
        st.caption(
            "Each cell: what the weights of the row's and the column's model are consistent with. Reds: related "
            "(darker: closer - the same weights, a quantized copy, a fine-tune; lighter: heavier training, pruned or "
            "grown, an MoE made from a dense model); white: no evidence of lineage, which is not proof of "
            "independence; grey: can't tell, or not computed yet."
        )
    else:
        matrix, notes = signal_matrix(chosen, verdicts, signal)
        st.plotly_chart(
            signal_heatmap_figure(names, matrix, notes, signal, order),
            width="stretch",
            theme=None,
            key="signal_heatmap",
        )
        st.caption(
            f"Each cell: {WHAT_SIGNAL[signal]} between the row's and the column's model (red = alike, white = "
            "nothing in common). Unlike σ-curves, independent models score near 0 here. Hover a cell for where it "
            "falls among unrelated pairs."
        )
    rows = verdict_rows(chosen, names, verdicts, sort_by=signal)
    st.subheader(
        "Pairs, related first" if signal == "verdict" else f"Pairs, highest {SHORT_SIGNAL[signal]} first", anchor=False
    )
    st.dataframe(rows, hide_index=True, width="stretch", height=min(400, 38 + 35 * len(rows)))


if len(fps) >= 2:
    st.header("All pairs")
    all_pairs(matrix_controls())

# ---------------------------------------------------------------- σ-curves, layer by layer

st.header("σ-curves, layer by layer")
st.caption(
    "Per layer, the spread (standard deviation) of each attention weight matrix: the fingerprint the Pangu paper "
    "compared. " + SIGMA_CAVEAT
)
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

if len(fps) >= 2 and ia != ib:
    fa, fb, c = fps[ia], fps[ib], pairs[ia][ib]
    na, nb = names[ia], names[ib]
    with st.expander(f"The σ-curves of {na} and {nb}, in detail", icon=":material/show_chart:"):
        cols = st.columns(1 + len(c.per_role))
        cols[0].metric(
            "r: the score",
            "n/a" if c.score is None else f"{c.score:.3f}",
            help=f"{score_label('mean')}. How sure: {interval_words(c, 'mean', 3) or 'n/a'}.",
        )
        for col, (r, val) in zip(cols[1:], c.per_role.items(), strict=True):
            how_sure = interval_words(c, r, 3) or "n/a"
            col.metric(
                f"r, {short_role(r)}", "n/a" if val is None else f"{val:.3f}", help=f"{score_label(r)}. {how_sure}."
            )
        st.markdown(f"**How sure:** {certainty_sentence(c, fa, fb, na, nb)}")
        facts = {
            "": ["architecture", "layers", "format", "reading mode", "revision", "bytes read"],
            na: [fa.architecture, fa.layers, fa.format, fa.mode, fa.short_revision, human_bytes(fa.bytes_read)],
            nb: [fb.architecture, fb.layers, fb.format, fb.mode, fb.short_revision, human_bytes(fb.bytes_read)],
        }
        st.dataframe({k: [str(x) for x in v] for k, v in facts.items()}, hide_index=True, width="stretch")
        st.markdown("**Before you draw a conclusion from this pair's σ-curves:**")
        st.warning("\n".join(f"- {x}" for x in pair_caveats(fa, fb, c, na, nb)), icon=":material/warning:")
        st.plotly_chart(pair_figure(fa, fb, na, nb, c), width="stretch", theme=None, key="pair")

sync_link(chosen)  # the address bar is always a link to this view
st.page_link(
    PAGES["export"],
    label="Export these results (CSV, JSON, HTML report, images, a share link)",
    icon=":material/download:",
)

glossary()
