"""The reference library (issue 12): known models' probes and fingerprints in one folder, published and pulled as
one unit, that one model is scanned against."""
