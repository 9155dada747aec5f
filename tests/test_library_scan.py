"""Scanning a model against the reference library: "which known model is this derived from?". The library holds
the four demo models (real trained weights); the derivatives are written here from them, as people make them: a
fine-tune (the weights plus small noise), a copy with a layer dropped, a copy with hidden dimensions dropped, the
quantized GGUF the demo ships; each model card declares its base (truly, falsely, or not at all). No network."""

from __future__ import annotations

import json
import shutil
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from fingerprint import Options
from fingerprint.demo import demo_paths
from fingerprint.library.build import build_library, read_model
from fingerprint.library.scan import ScanStep, facts_match, scan
from fingerprint.library.store import Library
from fingerprint.present.scan_report import scan_html
from fingerprint.present.scan_words import closest_text, declared_text, scan_json, scan_text

DEMO = {Path(p).name: p for p in demo_paths()}
DECLARED = {  # declared Hub ids -> the local folders they stand for here
    "karpathy/stories260K": DEMO["stories260k"],
    "EN10/babyllama-tok361": DEMO["babyllama-tok361"],
}
OPTS = Options(use_cache=False)


def _derive(folder: Path, source: str, change, config_change=None, card: str | None = None) -> str:
    """A model folder written from ``source``'s weights, changed; with a model card declaring ``card``."""
    folder.mkdir()
    weights = load_file(str(Path(source) / "model.safetensors"))
    config = json.loads((Path(source) / "config.json").read_text())
    save_file({k: np.ascontiguousarray(v) for k, v in change(weights).items()}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config_change(config) if config_change else config))
    if card is not None:
        (folder / "README.md").write_text(f"---\nlicense: mit\nbase_model: {card}\n---\n# A derivative\n")
    return str(folder)


def _fine_tune(seed: int):
    """Every tensor plus 10 % of its own spread in noise: element-wise r about 0.995, like a light fine-tune."""
    rng = np.random.default_rng(seed)
    return lambda w: {k: (v + 0.1 * v.std() * rng.standard_normal(v.shape)).astype(v.dtype) for k, v in w.items()}


def _drop_layer(layer: int):
    def change(w):
        out = {}
        for name, v in w.items():
            if name.startswith("model.layers."):
                i = int(name.split(".")[2])
                if i == layer:
                    continue
                name = name.replace(f"model.layers.{i}.", f"model.layers.{i - (i > layer)}.")
            out[name] = v
        return out

    return change


def _narrow(keep: int):
    """The first ``keep`` hidden dimensions of every tensor (a width-pruned copy)."""

    def change(w):
        out = {}
        for name, v in w.items():
            if v.ndim == 1:
                v = v[:keep]
            elif any(p in name for p in ("o_proj", "down_proj")):
                v = v[:keep, :]
            else:  # embedding, q/k/v, gate/up: hidden is the input dimension
                v = v[:, :keep]
            out[name] = v
        return out

    return change


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """(library folder, derivatives by name)."""
    root = tmp_path_factory.mktemp("scan")
    lib = Library.open(root / "library", create=True)
    report = build_library(lib, [(p, "demo") for p in DEMO.values()], OPTS)
    assert len(report.added) == 4 and not report.failed
    story = DEMO["stories260k"]
    models = {
        "stories-finetune": _derive(root / "stories-finetune", story, _fine_tune(0), card="karpathy/stories260K"),
        "stories-pruned": _derive(
            root / "stories-pruned", story, _drop_layer(2), lambda c: {**c, "num_hidden_layers": 4}
        ),
        "stories-narrow": _derive(
            root / "stories-narrow", story, _narrow(48), lambda c: {**c, "hidden_size": 48, "head_dim": 8}
        ),
        "tok105-finetune": _derive(
            root / "tok105-finetune", DEMO["babyllama-tok105"], _fine_tune(1), card="EN10/babyllama-tok361"
        ),
    }
    return root / "library", models


def _scan(reference: str, folder: Path, **kw):
    return scan(reference, Library.open(folder), OPTS, resolve_declared=DECLARED.get, **kw)


@pytest.mark.parametrize(
    "derivative, parent, relations",
    [
        ("stories-finetune", "stories260k", {"fine_tune"}),
        ("stories-pruned", "stories260k", {"depth_width_derivative"}),
        ("stories-narrow", "stories260k", {"depth_width_derivative"}),  # another width: linked by shared tokens
        ("tok105-finetune", "babyllama-tok105", {"fine_tune"}),
        ("stories260k-q8_0.gguf", "stories260k", {"quantized_copy"}),
    ],
)
def test_a_derivative_finds_its_parent_first(world, derivative, parent, relations):
    folder, models = world
    result = _scan(models.get(derivative) or DEMO[derivative], folder)
    first = result.matches[0]
    assert first.entry.model == parent and first.related and first.verdict is not None
    assert first.verdict.verdict in relations and first.verdict.strength > 0.9
    if first.verdict.verdict == "fine_tune":  # what "light" means is said, not left to guess
        assert any("light training, the weights moved little" in b for b in first.verdict.because)
    assert result.closest is first and f"Closest known: {parent} - consistent with" in scan_text(result)
    # the model's own relatives rank above everything unrelated; the babyllamas are related to no stories model
    kin = {"stories260k", "stories260k-q8_0.gguf"} if parent == "stories260k" else {parent}
    assert {m.entry.model for m in result.related} == kin - {derivative}


@pytest.mark.parametrize("model", ["babyllama-tok361", "babyllama-tok105"])
def test_a_model_trained_from_scratch_has_no_known_base(world, tmp_path, model):
    folder, _ = world
    without = tmp_path / "library"
    shutil.copytree(folder, without)
    assert Library.open(without).remove(model) is not None
    result = _scan(DEMO[model], without)
    assert not result.itself and result.matches and not result.related and result.closest is None
    sibling = "babyllama-tok105" if model == "babyllama-tok361" else "babyllama-tok361"
    first = result.matches[0]  # the other babyllama: same shapes, σ-curves alike, weights unrelated
    assert first.entry.model == sibling and first.verdict is not None and first.verdict.verdict == "no_evidence"
    text = scan_text(result)
    assert "No known base matches" in text and "declares nothing - no known base matches" in text


def test_the_exact_model_in_the_library_is_reported_not_compared(world):
    folder, _ = world
    result = _scan(DEMO["babyllama-tok361"], folder)
    assert [e.model for e in result.itself] == ["babyllama-tok361"]
    assert all(m.entry.model != "babyllama-tok361" for m in result.matches) and not result.related
    assert "This exact model is in the library: babyllama-tok361" in scan_text(result)


def test_declared_against_measured(world):
    folder, models = world
    true = _scan(models["stories-finetune"], folder).declared
    assert true.outcome == "consistent" and true.bases[0].found == "stories260k"
    assert declared_text(true) == (
        "declares karpathy/stories260K - the weights are consistent with karpathy/stories260K (fine-tune)"
    )
    false = _scan(models["tok105-finetune"], folder).declared
    assert false.outcome == "no_evidence" and false.bases[0].verdict is not None
    assert declared_text(false) == (
        "declares EN10/babyllama-tok361 - no evidence for EN10/babyllama-tok361; closest known: babyllama-tok105 "
        "(fine-tune)"
    )
    missing = _scan(models["stories-pruned"], folder).declared
    assert missing.outcome == "none_declared"
    assert declared_text(missing) == "declares nothing - closest known: stories260k (pruned / grown)"


def test_a_declared_base_not_in_the_library_is_read_when_allowed_and_added(world, tmp_path):
    folder, models = world
    mine = tmp_path / "library"
    shutil.copytree(folder, mine)
    Library.open(mine).remove("stories260k")
    left = _scan(models["stories-finetune"], mine)
    assert left.declared.outcome == "not_checked" and left.declared.bases[0].how == "not_in_library"
    assert declared_text(left.declared).startswith("declares karpathy/stories260K, which is not in the library")
    assert left.closest is not None and left.closest.entry.model == "stories260k-q8_0.gguf"  # the next best relative

    result = _scan(models["stories-finetune"], mine, fetch_declared=True, add_declared=True)
    base = result.declared.bases[0]
    assert base.how == "fetched" and base.added and base.found == "stories260k"
    assert result.declared.outcome == "consistent" and result.matches[0].entry.model == "stories260k"
    entry = Library.open(mine).find("stories260k")  # the library now knows it, for the next scan
    assert entry is not None and entry.facts.hidden == 64
    again = _scan(models["stories-finetune"], mine)
    assert again.declared.bases[0].how == "library" and again.declared.outcome == "consistent"

    unknown = scan(
        models["stories-finetune"],
        Library.open(mine),
        OPTS,
        fetch_declared=True,
        resolve_declared=lambda name: str(tmp_path / "nowhere"),
    )
    assert unknown.declared.bases[0].how == "unreadable" and "nowhere" in unknown.declared.bases[0].note
    assert unknown.closest is not None  # the scan itself carries on


def test_facts_pick_what_some_signal_can_link_and_set_the_rest_aside(world):
    folder, models = world
    result = _scan(models["stories-finetune"], folder)
    weighed = {m.entry.model for m in result.matches}
    assert {"stories260k", "stories260k-q8_0.gguf"} <= weighed
    aside = {s.match.entry.model: s.reason for s in result.set_aside}
    assert set(aside.values()) <= {"no_link"} and weighed.isdisjoint(aside)
    assert len(weighed) + len(aside) == 4
    bounded = _scan(models["stories-finetune"], folder, max_candidates=1)
    assert [m.entry.model for m in bounded.matches] == ["stories260k"]
    assert {s.match.entry.model: s.reason for s in bounded.set_aside}["stories260k-q8_0.gguf"] == "bound"
    assert "3 entries: a plausible link, but below the bound" in scan_text(bounded)
    # a declared base is weighed even when the facts set it aside - here the bound of one entry; another width and
    # no shared token, yet the weights say something: nothing links them
    declared = _scan(models["stories-finetune"], folder, declared=["EN10/babyllama-tok361"], max_candidates=1)
    base = declared.declared.bases[0]
    assert base.how == "library" and base.verdict is not None and base.verdict.verdict == "no_evidence"
    assert base.verdict.signals["awm"].detail["alignment"].startswith("weight profiles")
    assert declared.declared.outcome == "no_evidence"
    assert "declares EN10/babyllama-tok361 - no evidence for EN10/babyllama-tok361" in declared_text(declared.declared)


def test_facts_rank_models_of_any_width_and_tokenizer(world):
    """Facts alone, with real token texts: any two models with layers can be linked (the same width position by
    position, shared tokens or the hidden dims' weight profiles through AWM); the facts rank them."""
    folder, _ = world
    lib = Library.open(folder)
    base = lib.find("stories260k")
    assert base is not None
    words = [f"word{i}" for i in range(400)]
    model = replace(base.facts, tokens=tuple(words), vocab_source="tokenizer.json")
    same_tok_other_width = replace(base, facts=replace(model, hidden=96, vector_lengths={"attn_norm": 96}))
    other_tok_same_width = replace(base, facts=replace(model, tokens=tuple(f"other{i}" for i in range(400))))
    other_everything = replace(other_tok_same_width, facts=replace(other_tok_same_width.facts, hidden=96))
    twin = replace(base, facts=model)
    a = facts_match(model, same_tok_other_width)
    b = facts_match(model, other_tok_same_width)
    c = facts_match(model, other_everything)
    t = facts_match(model, twin)
    assert a.linkable and a.shared_tokens == 400 and "width 96 (model: 64)" in a.differ
    assert b.linkable and b.shared_tokens == 0 and "0% of the kept tokens shared" in b.differ
    assert c.linkable and c.shared_tokens == 0  # only the weight profiles can line up the hidden dims
    assert t.score == 1.0 > b.score > c.score and t.score > a.score > c.score


def test_a_probe_can_be_scanned_with_its_declared_base(world):
    folder, models = world
    read = read_model(models["tok105-finetune"], OPTS)
    result = scan(
        read.probe,
        Library.open(folder),
        fingerprint=read.fingerprint,
        declared=["babyllama-org/babyllama-tok105"],
        resolve_declared=lambda name: DEMO["babyllama-tok105"],
    )
    assert result.model == "tok105-finetune" and result.matches[0].entry.model == "babyllama-tok105"
    assert result.declared.outcome == "consistent"
    no_fp = scan(read.probe, Library.open(folder))  # σ from the probe's own rows
    assert no_fp.matches[0].entry.model == "babyllama-tok105" and not no_fp.declared.bases


def test_the_exports_name_models_without_local_paths(world):
    folder, models = world
    result = _scan(models["stories-finetune"], folder, top=2)
    payload = json.loads(scan_json(result))
    assert payload["closest"] == "stories260k" and payload["declared"]["outcome"] == "consistent"
    assert [m["model"] for m in payload["top"]] == ["stories260k", "stories260k-q8_0.gguf"]
    first = payload["top"][0]
    assert first["verdict"]["verdict"] == "fine_tune" and first["verdict"]["signals"]["elementwise"]["value"] > 0.98
    assert first["verdict"]["strength_text"] and first["facts"]["linkable"] is True
    assert payload["set_aside"]["counts"] == {} and payload["weighed"] == 4  # every entry: four fit the bound
    text = scan_text(result)
    for out in (text, scan_json(result)):
        assert str(folder.parent) not in out  # where the user keeps their models stays private


def test_the_html_page_has_the_answer_every_candidate_and_each_ones_evidence(world, tmp_path):
    folder, models = world
    result = _scan(models["stories-finetune"], folder)
    page = scan_html(result)
    assert "<h1>Find the base: stories-finetune</h1>" in page and result.revision in page
    assert closest_text(result) in page and "declares karpathy/stories260K" in page
    assert "A verdict is evidence, never proof" in page
    weighed = [m for m in result.best if m.verdict is not None]
    assert len(weighed) == 4 and all(f"<td>{m.entry.model}</td>" in page for m in weighed)
    # each candidate's verdict in words and its evidence panel, the strongest first; plotly.js inlined once
    heads = [f"<h3>stories-finetune vs {m.entry.model}: {m.verdict.sentence}</h3>" for m in weighed if m.verdict]
    assert all(h in page for h in heads) and page.index(heads[0]) < page.index(heads[1]) < page.index(heads[2])
    assert page.count("Lineage evidence: ") == 4 and page.count("* plotly.js v") == 1
    one = scan_html(result, max_figures=1)  # a bounded number of figures; the text of every candidate stays
    assert one.count("Lineage evidence: ") == 1 and all(h in one for h in heads)
    assert "Figures for the first 1 of 4 candidates" in one
    # the library by its name, unless its path is asked for; nowhere the folder where the models are kept
    assert str(folder.parent) not in page and "<code>library</code>" in page
    assert f"<code>{folder}</code>" in scan_html(result, library_path=True)
    # an error that quotes a file of the library names it without the server's path
    mine = tmp_path / "server-library"
    shutil.copytree(folder, mine)
    gguf = Library.open(mine).find("stories260k-q8_0.gguf")
    assert gguf is not None
    (mine / gguf.probe).unlink()
    broken = _scan(models["stories-finetune"], mine)
    assert str(mine) in next(m.error or "" for m in broken.matches if m.verdict is None)
    assert str(mine) not in scan_html(broken) and str(tmp_path) not in scan_html(broken)


def test_a_damaged_entry_is_reported_and_the_others_are_weighed(world, tmp_path):
    folder, models = world
    mine = tmp_path / "library"
    shutil.copytree(folder, mine)
    gguf = Library.open(mine).find("stories260k-q8_0.gguf")
    assert gguf is not None
    (mine / gguf.probe).write_bytes(b"not a probe")
    result = _scan(models["stories-finetune"], mine)
    broken = next(m for m in result.matches if m.entry.model == "stories260k-q8_0.gguf")
    assert broken.verdict is None and "probe file cannot be read" in (broken.error or "")
    assert result.matches[0].entry.model == "stories260k" and result.matches[-1] is broken


def test_progress_is_reported_and_a_cancel_keeps_what_was_weighed(world):
    folder, models = world
    steps: list[ScanStep] = []
    result = _scan(models["stories-pruned"], folder, progress=steps.append)
    stages = [s.stage for s in steps]
    assert stages[0] == "reading" and stages.count("weighing") == len(result.matches)
    cancel = threading.Event()

    def stop_after_first(step: ScanStep) -> None:
        if step.stage == "weighing":
            cancel.set()

    cut = scan(models["stories-pruned"], Library.open(folder), replace(OPTS, cancel=cancel), progress=stop_after_first)
    assert cut.cancelled and len(cut.matches) == 1 and "Cancelled" in scan_text(cut)
