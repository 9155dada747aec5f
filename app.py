"""Dashboard entry point. The multi-page dashboard is coming (issue: the dashboard);
until then this page says what the tool does and how to use its command line."""

import streamlit as st

st.set_page_config(page_title="LLM fingerprint", layout="wide")
st.title("LLM weight fingerprints")
st.info("The dashboard is coming. The fingerprint core and its command line work today.")
st.markdown(
    """
This tool computes **σ-curves**: for every layer of a model, the standard deviation of each
attention weight matrix (Q, K, V, O). Two models whose curves correlate strongly *may* share
lineage, but independently trained models with look-alike recipes also correlate above 0.9,
so a correlation alone is **never proof**.

```
./run cli inspect Qwen/Qwen2.5-14B
./run cli compute Qwen/Qwen2.5-14B ./local-model-dir --json fps.json
./run cli compare fps.json
```
"""
)
