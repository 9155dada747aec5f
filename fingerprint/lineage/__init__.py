"""Lineage evidence beyond σ-curves: per-model probes, pairwise signals, calibration and verdicts."""
