"""The reference library: built from real models (the demo models, and copies of them with a model card that
declares a base), kept in one folder that survives interruption, exported and imported as one file, and the
default catalog of known Hub models. No network."""

from __future__ import annotations

import collections
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from fingerprint import Options
from fingerprint.demo import demo_paths
from fingerprint.errors import CatalogError, NotALibrary
from fingerprint.library.build import build_library, read_model
from fingerprint.library.catalog import load_catalog
from fingerprint.library.declared import card_bases, gguf_bases
from fingerprint.library.store import LIBRARY_FORMAT, MANIFEST, Library

DEMO = {Path(p).name: p for p in demo_paths()}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A library of the four demo models, plus a model that does not exist (it fails, the others are added)."""
    folder = tmp_path_factory.mktemp("lib") / "library"
    lib = Library.open(folder, create=True)
    missing = str(folder.parent / "no-such-model")
    models = [(p, "demo") for p in DEMO.values()] + [(missing, "demo")]
    report = build_library(lib, models, Options(use_cache=False), workers=2)
    return folder, lib, report, missing


def test_a_library_keeps_each_models_probe_fingerprint_and_facts(built):
    folder, _lib, report, missing = built
    assert sorted(e.model for e in report.added) == sorted(DEMO)  # local models by name, not by path
    assert list(report.failed) == [missing] and "no-such-model" in str(report.failed[missing])
    again = Library.open(folder)  # what another process reads
    assert len(again) == 4
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["format"] == LIBRARY_FORMAT and manifest["version"] == 1
    copy = again.find("stories260k-q8_0.gguf")
    assert copy is not None and copy.revision.startswith("sha256:") and copy.source == "local"
    assert copy.facts.format == "gguf" and copy.facts.layers == 5 and copy.facts.hidden == 64
    base = again.find("stories260k")
    assert base is not None and base.facts.hidden == copy.facts.hidden
    probe = again.probe(base)
    original = read_model(DEMO["stories260k"], Options(use_cache=False)).probe
    for role, layers in original.matrices.items():
        for layer, rows in layers.items():
            assert np.array_equal(probe.matrices[role][layer].data, rows.data)
    fp = again.fingerprint(base)
    assert fp.layers == 5 and set(fp.curves) >= {"q", "k", "v", "o"}
    for e in again.entries:  # every file the manifest names is there
        assert (folder / e.probe).is_file() and (folder / e.fingerprint).is_file()


def test_a_model_already_in_the_library_is_not_read_again(built):
    _folder, lib, _, _ = built
    report = build_library(lib, [(DEMO["babyllama-tok105"], "demo")], Options(use_cache=False))
    assert report.skipped == [DEMO["babyllama-tok105"]] and not report.added


def test_a_large_build_writes_the_manifest_in_batches_and_always_at_the_end(built, tmp_path):
    """A build of thousands of models must not rewrite the whole manifest after each one."""
    source = Library.open(built[0])
    entries = [source.probe(e) for e in source.entries], [source.fingerprint(e) for e in source.entries]
    target = Library.open(tmp_path / "new", create=True)
    with target.saves_deferred(every=3, seconds=3600):
        for probe, fp in zip(*entries, strict=True):
            target.add(probe, fp)
            on_disk = len(Library.open(target.path))
            assert on_disk == (3 if len(target) >= 3 else 0), (len(target), on_disk)
    assert len(Library.open(target.path)) == 4  # the rest is written on the way out


def test_export_and_import_move_the_whole_library_as_one_file(built, tmp_path):
    folder, lib, _, _ = built
    archive = lib.export(tmp_path / "library.zip")
    other = Library.open(tmp_path / "other", create=True)
    imported = other.import_archive(archive)
    assert sorted(e.model for e in imported) == sorted(e.model for e in lib.entries)
    for e in lib.entries:
        assert (tmp_path / "other" / e.probe).read_bytes() == (folder / e.probe).read_bytes()
    assert len(Library.open(tmp_path / "other")) == 4


def test_a_tampered_archive_is_refused_and_the_library_is_untouched(built, tmp_path):
    _, lib, _, _ = built
    archive = lib.export(tmp_path / "library.zip")
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith(".probe.npz"):
                data = data[:-10] + b"x" * 10
            dst.writestr(info, data)
    other = Library.open(tmp_path / "other", create=True)
    with pytest.raises(NotALibrary, match="does not match its sha256"):
        other.import_archive(bad)
    assert len(Library.open(tmp_path / "other")) == 0
    escape = tmp_path / "escape.zip"
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(escape, "w") as dst:
        manifest = json.loads(src.read(MANIFEST))
        manifest["entries"][0]["probe"] = "../../outside.npz"
        dst.writestr(MANIFEST, json.dumps(manifest))
    with pytest.raises(NotALibrary, match="outside entries/"):
        other.import_archive(escape)
    assert not (tmp_path / "outside.npz").exists()


def test_removing_an_entry_removes_its_files(built, tmp_path):
    folder, _lib, _, _ = built
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    mine = Library.open(copy)
    gone = mine.remove("babyllama-tok361")
    assert gone is not None and not (copy / gone.probe).exists()
    assert len(Library.open(copy)) == 3 and mine.remove("babyllama-tok361") is None


def test_what_is_not_a_library_says_so(tmp_path):
    with pytest.raises(NotALibrary, match="no such folder"):
        Library.open(tmp_path / "nothing")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("x")
    with pytest.raises(NotALibrary, match=r"no manifest\.json"):
        Library.open(tmp_path / "notes", create=True)  # never writes into a folder that holds other things
    future = tmp_path / "future"
    future.mkdir()
    (future / MANIFEST).write_text(json.dumps({"format": LIBRARY_FORMAT, "version": 99, "entries": []}))
    with pytest.raises(NotALibrary, match="version 99") as err:
        Library.open(future)
    assert "Update the tool" in str(err.value)


def test_a_model_card_or_a_gguf_declares_its_base(tmp_path):
    card = "---\nlicense: mit\nbase_model:\n- Qwen/Qwen2.5-7B\n- https://huggingface.co/org/other\n---\n# My model\n"
    assert card_bases(card) == ["Qwen/Qwen2.5-7B", "org/other"]
    assert card_bases("---\nbase_model: meta-llama/Llama-3.1-8B\n---\n") == ["meta-llama/Llama-3.1-8B"]
    assert card_bases("# no front matter\nbase_model: x/y") == [] and card_bases("---\n: [\n---\n") == []
    meta = {
        "general.base_model.count": 2,
        "general.base_model.0.repo_url": "https://huggingface.co/Qwen/Qwen2.5-0.5B",
        "general.base_model.1.organization": "Meta Llama",
        "general.base_model.1.name": "Llama-3.2-1B",
    }
    assert gguf_bases(meta) == ["Qwen/Qwen2.5-0.5B", "Meta-Llama/Llama-3.2-1B"]
    # a real folder with a model card: the declaration is read with the model
    folder = tmp_path / "my-finetune"
    shutil.copytree(DEMO["stories260k"], folder)
    (folder / "README.md").write_text("---\nbase_model: karpathy/stories260K\n---\nA fine-tune.\n")
    assert read_model(str(folder), Options(use_cache=False)).declared_base == ("karpathy/stories260K",)
    lib = Library.open(tmp_path / "lib", create=True)
    build_library(lib, [(str(folder), "llama2.c")], Options(use_cache=False))
    entry = Library.open(tmp_path / "lib").find("my-finetune")
    assert entry is not None and entry.declared_base == ("karpathy/stories260K",) and entry.family == "llama2.c"


def test_the_default_catalog_lists_the_known_models(tmp_path):
    rows = load_catalog()
    assert len(rows) == 152 and len({r.family for r in rows}) == 37
    assert any(r.repo_id == "Qwen/Qwen2.5-7B" and r.family == "Qwen" for r in rows)
    bad = tmp_path / "bad.csv"
    bad.write_text("family,repo_id\nQwen,not-a-repo\n")
    with pytest.raises(CatalogError, match="no column publisher, size_bucket"):
        load_catalog(bad)
    bad.write_text("family,publisher,repo_id,size_bucket\nQwen,Qwen,not-a-repo,1-10B\n")
    with pytest.raises(CatalogError, match="line 2: 'not-a-repo' is not a Hub repository id"):
        load_catalog(bad)


def test_a_hub_model_is_pinned_to_the_commit_read_and_its_card_read_through_the_hub(hub, monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", hub.url)
    files = {p.name: p for p in Path(DEMO["stories260k"]).iterdir()}
    base_sha = hub.add_repo("karpathy/tiny", files)
    card = b"---\nlicense: mit\nbase_model: karpathy/tiny\n---\n# A copy\n"
    tune_sha = hub.add_repo("someone/tiny-tune", {**files, "README.md": card})
    lib = Library.open(tmp_path / "lib", create=True)
    hub.reset_counters()
    catalog = [("karpathy/tiny", "llama2.c"), ("someone/tiny-tune", "llama2.c"), ("nobody/missing", "x")]
    report = build_library(lib, catalog, Options())
    # each model is opened once: its probe and its model card come from the same opening
    api = collections.Counter(path.split("?")[0] for _, path, _ in hub.requests if path.startswith("/api/models/"))
    assert api["/api/models/karpathy/tiny"] == 1 and api["/api/models/someone/tiny-tune"] == 1, api
    assert list(report.failed) == ["nobody/missing"] and "nobody/missing" in str(report.failed["nobody/missing"])
    again = Library.open(tmp_path / "lib")
    base, tune = again.find("karpathy/tiny"), again.find("someone/tiny-tune")
    assert base is not None and base.model == f"karpathy/tiny@{base_sha}" and base.source == "hub"
    assert tune is not None and tune.model == f"someone/tiny-tune@{tune_sha}" and tune.repo_id == "someone/tiny-tune"
    assert tune.declared_base == ("karpathy/tiny",) and base.declared_base == ()
    # a new commit on the Hub: the library keeps what it read until asked to refresh
    hub.add_repo("karpathy/tiny", {**files, "README.md": b"# new\n"})
    assert build_library(lib, [("karpathy/tiny", "llama2.c")], Options()).skipped == ["karpathy/tiny"]


@pytest.mark.ray
@pytest.mark.slow
def test_a_library_built_by_a_local_ray_cluster_equals_the_threads_one(built, tmp_path):
    """CI's Ray build of a small library: the demo models as Ray tasks, their results sent back as plain data."""
    folder, _, _, missing = built
    lib = Library.open(tmp_path / "ray-lib", create=True)
    report = build_library(lib, [(p, "demo") for p in DEMO.values()] + [(missing, "demo")], ray="local", workers=2)
    assert sorted(e.model for e in report.added) == sorted(DEMO) and list(report.failed) == [missing]
    threads = Library.open(folder)
    for e in Library.open(tmp_path / "ray-lib").entries:
        other = threads.find(e.model)
        assert other is not None and other.facts == e.facts and other.revision == e.revision
        a, b = threads.probe(other), lib.probe(e)
        for role, layers in a.matrices.items():
            for layer, rows in layers.items():
                assert np.array_equal(b.matrices[role][layer].data, rows.data)
