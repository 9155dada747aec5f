"""The reference library: the probes and σ fingerprints of known models, each pinned to a commit, kept in one
folder that is published and pulled as a unit, and what scans a model against it.

- ``catalog``: the default list of known Hub models (package data) and user catalogs;
- ``facts``: the cheap facts of a model (shapes, depth, vocabulary) that pick candidates without reading weights;
- ``store``: the library folder: manifest, entries, atomic writes, export and import;
- ``build``: reading the models of a catalog into a library (threads; Ray in ``distributed``);
- ``scan``: one model against the library - entries picked by their facts, then weighed by verdicts - and its
  declared base checked against them (in words: ``present/scan_words.py``);
- ``scan``: which known models a model is consistent with being derived from, and whether its declared base agrees;
- ``distributed``: one piece of work per model on threads or as Ray tasks, the Hub's requests capped;
- ``hub_sync``: push and pull a library to a Hub dataset repository;
- ``commands``: the ``library`` and ``scan`` commands.
"""
