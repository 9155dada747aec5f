"""Home: what the tool does, what a σ-curve is, what its numbers can and cannot show; the offline demo."""

import streamlit as st

from dashboard.fingerprinting import fingerprint_running, start_fingerprinting
from dashboard.navigation import PAGES
from dashboard.policy import count_refusal
from dashboard.state import settings
from fingerprint.demo import DEMO_MODELS, demo_paths
from fingerprint.present.texts import CRITIQUE_URL, DEMO_EXPLANATION, NEVER_PROOF, PAPER_STATUS, PAPER_URL

st.title("How do two language models' weights relate?")
st.markdown(
    "This tool reads the **weights** of large language models (from the Hugging Face Hub or from files on this "
    "computer) and compares them. It never runs the models and it reads only the few tensors it needs."
)
# The demo comes first: on a phone the columns stack, and the button must not sit below the whole explanation.
demo, intro = st.columns([2, 3], gap="large")
with intro:
    st.markdown(
        f"""
**What a σ-curve is.** Inside every layer of a model, attention uses four weight matrices (called Q, K, V and O).
For each layer we take the *standard deviation* (σ) of each matrix - how spread out its numbers are. Plotted
layer by layer, this gives a curve per matrix: the model's **σ-curve**. Two models are compared by the
*Pearson correlation* r of their curves: r = 1 means the curves have the same shape over depth, 0 means no
relation.

**What the numbers can and cannot show.** In July 2025 a paper ([arXiv 2507.03014]({PAPER_URL})) reported
r = 0.927 between Huawei's Pangu Pro MoE and Alibaba's Qwen2.5-14B and presented it as evidence that one was
derived from the other. But the same measure gives about 0.91 for Llama-2-7B and deepseek-llm-7b, two models
trained independently ([a critique, in Chinese]({CRITIQUE_URL})). {PAPER_STATUS} A copy or a fine-tune of a model does give a
high r - but so do unrelated models built with look-alike recipes. **{NEVER_PROOF}.** Nor is a low one proof
of independence: rescaling a layer's
Q by c and K by 1/c changes the curve without changing what the model computes.

**Stronger evidence.** For a pair of models, the *lineage evidence* (in **Compare**, pair view) adds signals
that look at the weights themselves - the values at identical positions, the attention matrices after lining up
the hidden dimensions through shared tokens (AWM), the norm weights, a layer-by-layer alignment, MoE experts
against a dense model - each placed against what unrelated pairs score, and names the relation the evidence is
*consistent with*, with its strength and what could not be checked. The **Stress test** page shows which
signals survive changes that leave a model's outputs untouched.
"""
    )
with demo, st.container(border=True):
    st.subheader("Try it: the built-in demo")
    st.markdown(DEMO_EXPLANATION)
    clicked = st.button(
        "Run the demo",
        type="primary",
        icon=":material/play_arrow:",
        key="run_demo",
        width="stretch",
        disabled=fingerprint_running(),
    )
    st.caption("Reads the model files shipped with this tool (a few megabytes); needs no network.")
    if clicked:
        refs = demo_paths()
        too_many = count_refusal(st.session_state["fps"], refs, settings())
        if too_many:
            st.error(too_many, icon=":material/block:")
        else:
            # Compare shows the progress, then the results: the page changes now, in this click's run, never
            # later from the progress poller (a page change from there raced with the poller and left some
            # visitors of a busy server with a blank page).
            start_fingerprinting(refs, then="compare")
            st.switch_page(PAGES["compare"])

st.markdown("**The four demo models**")
cols = st.columns(len(DEMO_MODELS))
for col, m in zip(cols, DEMO_MODELS, strict=True):
    with col, st.container(border=True):
        st.markdown(f"**{m.name}**")
        st.caption(m.description)

st.markdown("To fingerprint other models - from the Hub or your own files - go to **Models**.")
st.page_link(PAGES["models"], label="Add models", icon=":material/arrow_forward:")
