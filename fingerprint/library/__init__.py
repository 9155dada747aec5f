"""The reference library (issue 12): many models' probes and fingerprints, built, published and pulled as one folder."""
