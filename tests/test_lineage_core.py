"""The lineage core on real files: what a probe reads, the vocabulary it aligns on, the
signals and the verdict a user gets, and the `verdict` command.

Models are the trained fixtures (fingerprint/demo_models/README.md) and checkpoints written by
tests/layouts in the real layouts (safetensors as transformers writes it, GGUF as
llama.cpp's converter writes it, Q/K rows permuted). No network: Hub tests use FakeHub.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import gguf
import numpy as np
import pytest
from conftest import FIXTURES, fixture_files
from layouts import build_deepseek_v2, build_llama, build_phi3, llama_permute, write_gguf, write_safetensors_dir
from safetensors.numpy import load_file, save_file

from fingerprint.cli import main as cli_main
from fingerprint.errors import NonFiniteWeights
from fingerprint.fingerprinting import Options, open_model
from fingerprint.lineage import calibration, evidence
from fingerprint.lineage.calibration import Calibration
from fingerprint.lineage.measures import centred_pearson
from fingerprint.lineage.plan import PROBE_BYTES, ProbeBudget
from fingerprint.lineage.probe import Probe
from fingerprint.lineage.reading import build_probe
from fingerprint.lineage.signals import SIGNAL_ORDER, Signal, missing
from fingerprint.lineage.transforms import permute_heads, scale_qk
from fingerprint.lineage.verdict import RELATED, decide
from fingerprint.lineage.vocab import normalise, pick_tokens, rank, read_vocabulary
from fingerprint.present.evidence_words import relation_short
from fingerprint.store import Store
from fingerprint.tensor_names import MATRIX_ROLES

STORIES = FIXTURES / "stories260k"
STORIES_Q8 = FIXTURES / "stories260k-q8_0.gguf"
BABY361 = FIXTURES / "babyllama-tok361"
BABY105 = FIXTURES / "babyllama-tok105"
Q = gguf.GGMLQuantizationType

# A synthetic Llama big enough to be sampled under a small budget (~5 MB in F16).
SYNTH = dict(hidden=256, heads=8, kv_heads=4, intermediate=512, vocab=512)
SAMPLED_BUDGET = 600_000

# Unrelated-pair backgrounds for rule tests when no calibration.json ships: values of the
# order the fixtures' unrelated pairs score (element-wise ~0, AWM 0.16-0.24, σ up to 0.95).
TEST_CALIBRATION = Calibration(
    unrelated={
        "elementwise": [-0.02, 0.0, 0.001, 0.02],
        "awm": [0.10, 0.16, 0.24, 0.30],
        "vectors": [-0.1, 0.0, 0.02, 0.1],
        "depth": [-0.02, 0.0, 0.01, 0.02],
        "sigma": [0.10, 0.20, 0.30, 0.40],
    },
    related={},
    source={"test": True},
)


def _probe(ref, *, budget: ProbeBudget | int = PROBE_BYTES, opts: Options | None = None) -> Probe:
    opts = opts or Options(use_cache=False)
    ckpt = open_model(str(ref), opts)
    try:
        return build_probe(ckpt, str(ref), budget=budget)
    finally:
        ckpt.close()


def _verdict(a, b, opts: Options | None = None):
    return evidence.verdict(str(a), str(b), opts or Options(use_cache=False))


def _write_model(folder: Path, weights: dict, config: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()}, str(folder / "model.safetensors")
    )
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def _load(model_dir: Path) -> tuple[dict, dict]:
    return load_file(str(model_dir / "model.safetensors")), json.loads((model_dir / "config.json").read_text())


def _prune(weights: dict, keep: list[int]) -> dict:
    """Drop every layer not in ``keep`` and renumber the rest 0..len(keep)-1."""
    out = {}
    for name, arr in weights.items():
        m = re.match(r"model\.layers\.(\d+)\.(.*)", name)
        if m is None:
            out[name] = arr
        elif int(m.group(1)) in keep:
            out[f"model.layers.{keep.index(int(m.group(1)))}.{m.group(2)}"] = arr
    return out


def _same_decision(v1, v2) -> bool:
    return (v1.verdict, v1.related, round(v1.strength, 9)) == (v2.verdict, v2.related, round(v2.strength, 9))


# --------------------------------------------------------------------------- models on disk


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """One synthetic Llama written four ways: F16 safetensors, F16 GGUF, Q8_0 GGUF, and a
    pruned copy (layers 0, 1, 3, 5 of 6) as F16 safetensors."""
    root = tmp_path_factory.mktemp("synth")
    layout = build_llama(7, layers=6, **SYNTH)
    write_safetensors_dir(layout, root / "st", dtype="F16")
    write_gguf(layout, root / "f16.gguf", qtype=Q.F16)
    write_gguf(layout, root / "q8_0.gguf", qtype=Q.Q8_0)
    keep = [0, 1, 3, 5]
    pruned = build_llama(7, layers=6, **SYNTH)
    pruned.tensors = _prune(pruned.tensors, keep)
    pruned.config = dict(pruned.config, num_hidden_layers=len(keep))
    pruned.attention = {i: {} for i in range(len(keep))}
    write_safetensors_dir(pruned, root / "pruned", dtype="F16")
    return {"root": root, "layout": layout, "keep": keep}


# ============================================================================ 1. probe reading


def test_gguf_q8_probe_matches_safetensors_after_undoing_the_permutation():
    st, gg = _probe(STORIES), _probe(STORIES_Q8)
    assert st.mode == gg.mode == "exact"
    assert gg.config["gguf_permuted"] and not st.config["gguf_permuted"]
    assert any("permutation undone" in n for n in gg.notes)
    assert st.n_layers == gg.n_layers == 5
    for kind in MATRIX_ROLES:
        assert sorted(st.matrices[kind]) == sorted(gg.matrices[kind]) == list(range(5)), kind
        for layer in range(5):
            a, b = st.matrices[kind][layer], gg.matrices[kind][layer]
            assert a.shape == b.shape and a.complete and b.complete
            np.testing.assert_array_equal(a.rows, b.rows)
            r = centred_pearson(a.data.ravel(), b.data.ravel())
            assert r > 0.9999, (kind, layer, r)
    # the GGUF really stores Q/K permuted: compared without undoing, the rows would not match
    q = st.matrices["q"][0].data
    assert centred_pearson(llama_permute(q, 8, 8).ravel(), gg.matrices["q"][0].data.ravel()) < 0.5
    for kind in ("attn_norm", "ffn_norm", "final_norm"):
        assert sorted(st.vectors[kind]) == sorted(gg.vectors[kind])
        for layer, v in st.vectors[kind].items():
            np.testing.assert_array_equal(v, gg.vectors[kind][layer])  # norms stay F32 in the GGUF


def test_sampled_probe_of_safetensors_and_gguf_reads_identical_rows(synth):
    st = _probe(synth["root"] / "st", budget=SAMPLED_BUDGET)
    gg = _probe(synth["root"] / "f16.gguf", budget=SAMPLED_BUDGET)
    assert st.mode == gg.mode == "sampled"
    assert gg.config["gguf_permuted"]
    hd = st.config["head_dim"]
    for kind in MATRIX_ROLES:
        for layer in range(6):
            a, b = st.matrices[kind][layer], gg.matrices[kind][layer]
            assert not a.complete, (kind, layer)
            np.testing.assert_array_equal(a.rows, b.rows, err_msg=f"{kind} layer {layer}")
            np.testing.assert_array_equal(a.data, b.data, err_msg=f"{kind} layer {layer}")
            # the data are the rows of the source tensor (F16-rounded), in HF order
            name = {
                "q": "self_attn.q_proj",
                "k": "self_attn.k_proj",
                "v": "self_attn.v_proj",
                "o": "self_attn.o_proj",
                "gate": "mlp.gate_proj",
                "up": "mlp.up_proj",
                "down": "mlp.down_proj",
            }[kind]
            src = synth["layout"].tensors[f"model.layers.{layer}.{name}.weight"]
            np.testing.assert_array_equal(a.data, src[a.rows].astype(np.float16).astype(np.float32))
            if kind in ("q", "k"):  # read in rotary pairs: row i and i + head_dim/2 of a head together
                rows = set(a.rows.tolist())
                assert all((r + hd // 2 if r % hd < hd // 2 else r - hd // 2) in rows for r in rows)
    for kind in ("attn_norm", "ffn_norm"):
        for layer, v in st.vectors[kind].items():
            np.testing.assert_allclose(v, gg.vectors[kind][layer], rtol=1e-3)
    # the embedding rows: the lowest-ranked tokens, as many as each file's header leaves room
    # for; the shorter list is part of the longer one, with equal rows
    fewer, more = sorted((st, gg), key=lambda p: len(p.tokens))
    assert len(fewer.tokens) > 0.9 * len(more.tokens) > 0
    index = {t: i for i, t in enumerate(more.tokens)}
    assert set(fewer.tokens) <= set(index)
    np.testing.assert_array_equal(fewer.embedding, more.embedding[[index[t] for t in fewer.tokens]])


def test_rows_read_depend_on_kind_and_shape_not_on_the_layer(synth):
    full = _probe(synth["root"] / "st", budget=SAMPLED_BUDGET)
    pruned = _probe(synth["root"] / "pruned", budget=SAMPLED_BUDGET)
    assert full.mode == pruned.mode == "sampled"
    for p in (full, pruned):
        for kind, layers in p.matrices.items():
            first = layers[0].rows
            assert all(np.array_equal(s.rows, first) for s in layers.values()), kind
    # whatever the budget split, a pruned copy shares rows with the original in every kept layer
    for kind in MATRIX_ROLES:
        for j, i in enumerate(synth["keep"]):
            a, b = full.matrices[kind][i], pruned.matrices[kind][j]
            common, ia, ib = np.intersect1d(a.rows, b.rows, return_indices=True)
            assert len(common) > 0, (kind, i)
            np.testing.assert_array_equal(a.data[ia], b.data[ib])


@pytest.mark.parametrize("other", ["pruned", "q8_0.gguf"])
def test_pruned_or_requantized_copy_is_read_at_the_same_positions(synth, other):
    full = _probe(synth["root"] / "st", budget=2_000_000)
    copy = _probe(synth["root"] / other, budget=2_000_000)
    assert full.mode == copy.mode == "sampled"
    pairs = list(enumerate(synth["keep"])) if other == "pruned" else [(i, i) for i in range(6)]
    for kind in MATRIX_ROLES:
        for j, i in pairs:
            # budgets differ (depth, bytes per row), but positions are a prefix of one fixed block order:
            # the smaller sample lies inside the larger one
            a, b = full.matrices[kind][i].rows, copy.matrices[kind][j].rows
            small, large = (a, b) if len(a) <= len(b) else (b, a)
            assert np.isin(small, large).all(), kind


def test_budget_bounds_a_sampled_probe_and_small_models_are_read_whole(synth):
    budget = 400_000
    big = _probe(synth["root"] / "st", budget=budget)
    assert big.bytes_total > 10 * budget
    assert big.mode == "sampled"
    assert 0 < big.bytes_read <= budget
    assert any(n.startswith("sampled") for n in big.notes)

    small = _probe(STORIES)  # default budget (128 MB) on a 1 MB model
    assert small.mode == "exact"
    assert not any(n.startswith("sampled") for n in small.notes)
    for kind in MATRIX_ROLES:
        for layer, s in small.matrices[kind].items():
            assert s.complete and np.array_equal(s.rows, np.arange(s.shape[0])), (kind, layer)
    sd = load_file(str(STORIES / "model.safetensors"))
    np.testing.assert_array_equal(small.matrices["down"][3].data, sd["model.layers.3.mlp.down_proj.weight"])
    np.testing.assert_array_equal(small.vectors["attn_norm"][2], sd["model.layers.2.input_layernorm.weight"])
    assert small.embedding.shape == (512, 64)  # every token: the whole embedding


def _bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def _byte_level_tokenizer(vocab_size: int) -> tuple[bytes, list[str]]:
    """A minimal HF tokenizer.json (BPE, ByteLevel) and its raw token strings by id."""
    b2u = _bytes_to_unicode()
    tokens = [b2u[b] for b in range(256)]
    words = ["Ġthe", "Ġcat", "ĠcafÃ©", "Ã©", "ĊĊ", "Ġsat", "Ġon", "Ġmat"]
    tokens += words + [f"Ġw{i}" for i in range(vocab_size - 1 - len(tokens) - len(words))]
    tokens.append("<|endoftext|>")
    assert len(tokens) == vocab_size
    data = {
        "version": "1.0",
        "added_tokens": [
            {
                "id": vocab_size - 1,
                "content": "<|endoftext|>",
                "special": True,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
            }
        ],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "vocab": {t: i for i, t in enumerate(tokens[:-1])},
            "merges": [],
        },
    }
    return json.dumps(data, ensure_ascii=False).encode("utf-8"), tokens


def test_hub_probe_reads_a_bounded_number_of_bytes_and_the_tokenizer(hub, synth, tmp_path):
    tok_json, raw_tokens = _byte_level_tokenizer(SYNTH["vocab"])
    (tmp_path / "tokenizer.json").write_bytes(tok_json)
    files = {**fixture_files(synth["root"] / "st"), "tokenizer.json": tmp_path / "tokenizer.json"}
    hub.add_repo("org/tiny-llama", files)
    budget = 1_500_000
    weights = (synth["root"] / "st" / "model.safetensors").stat().st_size
    assert weights > 3 * budget

    probe, cached = evidence.get_probe("org/tiny-llama", Options(endpoint=hub.url, use_cache=False), budget=budget)
    assert not cached and probe.mode == "sampled"
    served = hub.bytes_served["org/tiny-llama"]
    assert 0 < served <= budget and probe.bytes_read <= budget
    weight_reads = [r for m, path, r in hub.requests if m == "GET" and path.endswith("/model.safetensors")]
    assert weight_reads and all(r and r.startswith("bytes=") for r in weight_reads), "weights only by Range"
    assert (
        probe.requests == len([r for r in hub.requests if r[0] == "GET"]) - 1
    )  # every read counted (the listing is an API call)
    assert probe.requests <= ProbeBudget().requests

    assert probe.vocab_source == "tokenizer.json"
    assert probe.vocab_size == SYNTH["vocab"]
    assert " the" in probe.tokens and " café" in probe.tokens and "é" in probe.tokens and "\n\n" in probe.tokens
    assert not any("Ġ" in t for t in probe.tokens)
    embed = synth["layout"].tensors["model.embed_tokens.weight"]
    ids = {normalise(t, "byte_level"): i for i, t in enumerate(raw_tokens)}
    for text, row in zip(probe.tokens, probe.embedding):  # each row is that token's embedding row
        np.testing.assert_array_equal(row, embed[ids[text]].astype(np.float16).astype(np.float32))


def test_probe_cache_is_written_once_reused_and_equal(tmp_path):
    opts = Options(store=Store(tmp_path / "c.sqlite"))
    first, cached = evidence.get_probe(str(STORIES), opts)
    assert not cached
    files = list((tmp_path / "probes").glob("*.npz"))
    assert len(files) == 1
    mtime = files[0].stat().st_mtime_ns
    second, cached = evidence.get_probe(str(STORIES), opts)
    assert cached
    assert files[0].stat().st_mtime_ns == mtime and list((tmp_path / "probes").glob("*.npz")) == files
    assert second.meta() == first.meta()
    for kind, layers in first.matrices.items():
        for layer, s in layers.items():
            t = second.matrices[kind][layer]
            np.testing.assert_array_equal(s.rows, t.rows)
            np.testing.assert_array_equal(s.data, t.data)
            assert s.shape == t.shape
    for kind, layers in first.vectors.items():
        for layer, v in layers.items():
            np.testing.assert_array_equal(v, second.vectors[kind][layer])
    np.testing.assert_array_equal(first.embedding, second.embedding)


def _corrupt(kind: str, good: bytes) -> bytes:
    return {
        "garbage": b"this is not an npz file " * 20,
        "empty": b"",
        "truncated": good[: len(good) // 2],
    }[kind]


@pytest.mark.parametrize(
    "kind",
    [
        "garbage",
        "empty",
        "truncated",
    ],
)
def test_corrupt_probe_cache_is_recomputed(tmp_path, kind):
    opts = Options(store=Store(tmp_path / "c.sqlite"))
    first, _ = evidence.get_probe(str(STORIES), opts)
    (path,) = (tmp_path / "probes").glob("*.npz")
    path.write_bytes(_corrupt(kind, path.read_bytes()))
    again, cached = evidence.get_probe(str(STORIES), opts)
    assert not cached
    np.testing.assert_array_equal(again.matrices["q"][0].data, first.matrices["q"][0].data)
    assert Probe.load(path).meta() == again.meta()  # rewritten, readable
    assert evidence.get_probe(str(STORIES), opts)[1]


def test_a_probe_cached_by_an_older_version_is_recomputed(tmp_path):
    opts = Options(store=Store(tmp_path / "c.sqlite"))
    first, _ = evidence.get_probe(str(STORIES), opts)
    (path,) = (tmp_path / "probes").glob("*.npz")
    meta = {**first.meta(), "version": 2}  # the layout of version 2: a unicode meta array, float32 arrays
    np.savez(path, meta=np.array(json.dumps(meta)), **{"m|q|0|data": first.matrices["q"][0].data})
    again, cached = evidence.get_probe(str(STORIES), opts)
    assert not cached
    np.testing.assert_array_equal(again.matrices["q"][0].data, first.matrices["q"][0].data)
    assert Probe.load(path).matrices["q"][0].encoding == "F32"  # rewritten in the current layout


def test_nan_in_an_mlp_matrix_is_refused_naming_the_tensor(tmp_path):
    weights, config = _load(STORIES)
    bad = dict(weights)
    down = bad["model.layers.2.mlp.down_proj.weight"].copy()
    down[7, 11] = np.nan
    bad["model.layers.2.mlp.down_proj.weight"] = down
    folder = _write_model(tmp_path / "nan-model", bad, config)
    with pytest.raises(NonFiniteWeights) as info:
        evidence.get_probe(str(folder), Options(use_cache=False))
    msg = str(info.value)
    assert "model.layers.2.mlp.down_proj.weight" in msg and str(folder) in msg
    assert "\n" not in msg


# ============================================================================ 2. vocabulary


@pytest.mark.parametrize(
    "token, style, text",
    [
        ("Ġthe", "byte_level", " the"),
        ("Ċ", "byte_level", "\n"),
        ("Ã©", "byte_level", "é"),
        ("ĠcafÃ©", "byte_level", " café"),
        ("ĠçĮ«", "byte_level", " 猫"),
        ("<|endoftext|>", "byte_level", "<|endoftext|>"),
        ("the", "byte_level", "the"),
        ("▁the", "sentencepiece", " the"),
        ("<0x0A>", "sentencepiece", "\n"),
        ("<0x20>", "sentencepiece", " "),
        ("▁▁", "sentencepiece", "  "),
        ("<0xE9>", "sentencepiece", "<0xE9>"),  # a lone non-ASCII byte is not a character
        ("Ġthe", "plain", "Ġthe"),
    ],
)
def test_normalise(token, style, text):
    assert normalise(token, style) == text


def test_byte_level_and_sentencepiece_spellings_meet_on_the_same_text():
    bl = ["Ġthe", "Ċ", "Ġcat", "Ã©t", "Ġcafé"]
    spm = ["▁the", "<0x0A>", "▁cat", "ét", "▁café"]
    assert [normalise(t, "byte_level") for t in bl[:4]] == [normalise(t, "sentencepiece") for t in spm[:4]]


def _tokenizer_json_vocab(tmp_path: Path, data: dict) -> tuple[list[str] | None, str]:
    """read_vocabulary on a local model whose folder holds this tokenizer.json."""
    folder = tmp_path / "tokmodel"
    weights, config = _load(STORIES)
    _write_model(folder, weights, config)
    (folder / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False))
    ckpt = open_model(str(folder), Options(use_cache=False))
    try:
        vocab, source, nbytes = read_vocabulary(ckpt)
    finally:
        ckpt.close()
    assert nbytes == (folder / "tokenizer.json").stat().st_size
    return vocab, source


@pytest.mark.parametrize(
    "pre, decoder",
    [
        # Llama-2 / Mistral HF tokenizer.json: SentencePiece BPE with byte fallback
        (
            None,
            {
                "type": "Sequence",
                "decoders": [
                    {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
                    {"type": "ByteFallback"},
                    {"type": "Fuse"},
                ],
            },
        ),
        (
            {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False},
            {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False},
        ),
    ],
)
def test_sentencepiece_bpe_tokenizer_json_is_normalised(tmp_path, pre, decoder):
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "<0x0A>": 3, "▁the": 4, "▁cat": 5, "at": 6}
    data = {
        "model": {"type": "BPE", "vocab": vocab, "merges": [], "byte_fallback": True},
        "pre_tokenizer": pre,
        "decoder": decoder,
    }
    texts, source = _tokenizer_json_vocab(tmp_path, data)
    assert source == "tokenizer.json"
    assert texts[:7] == ["<unk>", "<s>", "</s>", "\n", " the", " cat", "at"]


def test_byte_level_tokenizer_json_with_added_tokens(tmp_path):
    raw, tokens = _byte_level_tokenizer(300)
    texts, _source = _tokenizer_json_vocab(tmp_path, json.loads(raw))
    assert len(texts) == 300 and texts[-1] == "<|endoftext|>"
    assert texts[256] == " the" and texts[258] == " café" and texts[10] == "\n" and texts[ord("a")] == "a"
    assert [normalise(t, "byte_level") for t in tokens] == texts


def _words(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz "))
    out, seen = [], set()
    while len(out) < n:
        w = "".join(rng.choice(letters, rng.integers(1, 8)))
        if w not in seen:
            seen.add(w)
            out.append(w)
    return out


def test_pick_tokens_is_nested_across_vocabularies():
    big = _words(6000, 0)
    rng = np.random.default_rng(1)
    small = [big[i] for i in rng.choice(len(big), 900, replace=False)]  # other ids, other order
    for limit in (50, 200, 900):
        picked_big = {big[i] for i in pick_tokens(big, limit, len(big))}
        picked_small = {small[i] for i in pick_tokens(small, limit, len(small))}
        shared = picked_big & set(small)
        assert shared <= picked_small, limit
    # the general rule: a shared token ranked below both models' cut-offs is read by both
    other = small[:600] + _words(700, 2)
    for la, lb in ((100, 40), (300, 300), (64, 500)):
        ia, ib = pick_tokens(big, la, len(big)), pick_tokens(other, lb, len(other))
        ta, tb = {big[i] for i in ia}, {other[i] for i in ib}
        cut = min(max(rank(t) for t in ta), max(rank(t) for t in tb))
        both = {t for t in set(big) & set(other) if rank(t) <= cut}
        assert both and both <= ta and both <= tb, (la, lb)


def test_pick_tokens_contract():
    texts = ["a", "", "b", "a", "c", "d", "e"]
    ids = pick_tokens(texts, 10, rows=6)
    assert ids == sorted(ids)
    assert 1 not in ids and 3 not in ids and 6 not in ids  # empty, duplicate text, id >= rows
    assert sorted(texts[i] for i in ids) == ["a", "b", "c", "d"]
    assert len(pick_tokens(texts, 2, rows=7)) == 2


# ============================================================================ 3. signals and verdicts


@pytest.fixture(scope="module")
def verdicts():
    """Verdicts of the fixture pairs, computed once for the module."""
    return {
        "q8": _verdict(STORIES, STORIES_Q8),
        "baby": _verdict(BABY361, BABY105),
        "width": _verdict(STORIES, BABY361),
    }


def test_quantized_gguf_copy(verdicts):
    v = verdicts["q8"]
    assert v.verdict == "quantized_copy" and v.related
    el = v.signals["elementwise"]
    assert el.available and el.value > 0.9999
    assert el.detail["tensors"] == 35
    assert 0.0 <= v.strength <= 1.0


def test_independent_models_are_not_related_despite_high_sigma(verdicts):
    v = verdicts["baby"]
    sigma = v.signals["sigma"]
    assert sigma.available and sigma.value > 0.9  # the known σ-curve false positive
    assert not v.related and v.verdict == "no_evidence"
    assert abs(v.signals["elementwise"].value) < 0.05
    assert any("σ-curves correlate" in c for c in v.caveats)
    # σ does not move the verdict: the same evidence with σ = 1, without σ, or with σ far above a
    # calibrated background gives the same decision
    cal = calibration.load()
    kw = dict(formats=("safetensors", "safetensors"), depths=(5, 5), widths=(128, 128))
    base = decide(v.a, v.b, v.signals, cal, **kw)
    assert _same_decision(base, v)
    for sig in (Signal("sigma", 1.0, True), missing("sigma", "not computed")):
        assert _same_decision(decide(v.a, v.b, {**v.signals, "sigma": sig}, cal, **kw), base)
    calibrated = decide(v.a, v.b, v.signals, TEST_CALIBRATION, **kw)
    assert not calibrated.related
    assert _same_decision(
        decide(v.a, v.b, {**v.signals, "sigma": missing("sigma", "x")}, TEST_CALIBRATION, **kw), calibrated
    )


def test_models_of_different_width(verdicts):
    v = verdicts["width"]
    el = v.signals["elementwise"]
    assert not el.available and el.value is None
    assert el.reason and "shape" in el.reason
    assert any(el.reason in n for n in v.not_checked)
    assert not v.related
    # no vocabulary on either side and other vocabulary sizes: the hidden dims are lined up by their weight
    # profiles instead of shared tokens, so the pair is weighed - and nothing links it
    awm = v.signals["awm"]
    assert awm.available and awm.detail["alignment"].startswith("weight profiles") and abs(awm.value) < 0.1
    assert v.verdict == "no_evidence"
    assert any("weight profiles" in c for c in v.caveats)


def _narrowed(folder: Path, keep: int, vocab: int, noise: float = 0.0) -> Path:
    """stories260k with only ``keep`` of its hidden dims (a width-pruned copy, as Minitron-style pruning makes) and
    its first ``vocab`` tokens, the weights plus ``noise`` times their spread: no vocabulary file, so its tokens
    cannot be matched with stories260k's by number (the vocabulary sizes differ)."""
    g = np.random.default_rng(3)
    weights, config = _load(STORIES)
    d = config["hidden_size"]
    dims = np.sort(g.choice(d, keep, replace=False))
    out = {}
    for name, w in weights.items():
        if name == "model.embed_tokens.weight":
            w = w[:vocab, dims]
        elif w.ndim == 1:
            w = w[dims]
        elif name.endswith(("o_proj.weight", "down_proj.weight")):
            w = w[dims, :]
        else:
            w = w[:, dims]
        out[name] = w + noise * w.std() * g.standard_normal(w.shape) if w.ndim == 2 else w
    return _write_model(folder, out, {**config, "hidden_size": keep, "vocab_size": vocab})


def test_a_width_pruned_copy_without_shared_tokens_is_found_through_weight_profiles(tmp_path):
    v = _verdict(STORIES, _narrowed(tmp_path / "narrow", keep=48, vocab=400, noise=0.05))
    awm = v.signals["awm"]
    assert awm.detail["alignment"].startswith("weight profiles"), awm.detail
    assert v.related and v.verdict == "depth_width_derivative" and awm.value > 0.9, (v.verdict, v.because)


@pytest.fixture(scope="module")
def transformed(tmp_path_factory):
    root = tmp_path_factory.mktemp("transformed")
    weights, config = _load(BABY361)
    out = {}
    for fn in (permute_heads, scale_qk):
        folder = _write_model(root / fn.__name__, fn(weights, config, seed=3), config)
        out[fn.__name__] = _verdict(BABY361, folder)
    return out


def test_permuted_heads_break_elementwise_but_not_awm(transformed):
    v = transformed["permute_heads"]
    s = v.signals
    assert s["elementwise"].available and s["elementwise"].value < 0.9
    per_kind = s["elementwise"].detail["per_kind"]
    assert per_kind["q"] < 0.5 and per_kind["k"] < 0.5 and per_kind["o"] < 0.5
    assert min(per_kind[k] for k in ("gate", "up", "down")) > 0.9999  # the MLP was not touched
    assert s["awm"].available and s["awm"].value > 0.9
    assert s["sigma"].value > 0.99  # σ per layer is unchanged by a permutation
    assert v.verdict != "same_weights"
    # with a background of unrelated pairs the permuted copy is recognised as related
    assert decide(v.a, v.b, s, TEST_CALIBRATION, depths=(5, 5), widths=(128, 128)).related


def test_rescaled_qk_changes_sigma_but_not_elementwise_or_awm(transformed):
    v = transformed["scale_qk"]
    s = v.signals
    assert s["sigma"].available and s["sigma"].value < 0.9
    assert s["elementwise"].value > 0.99 and s["awm"].value > 0.9
    per_kind = s["elementwise"].detail["per_kind"]
    assert min(per_kind[k] for k in ("v", "o", "gate", "up", "down")) > 0.9999
    # most tensors are identical, but Q and K are not: not "the same weights"
    assert s["elementwise"].detail["min"] < 0.999
    assert v.verdict != "same_weights"
    assert decide(v.a, v.b, s, TEST_CALIBRATION, depths=(5, 5), widths=(128, 128)).related


KEEP = [0, 2, 4]


@pytest.fixture(scope="module")
def pruned_verdict(tmp_path_factory):
    weights, config = _load(STORIES)
    folder = _write_model(
        tmp_path_factory.mktemp("pruned") / "stories-pruned",
        _prune(weights, KEEP),
        dict(config, num_hidden_layers=len(KEEP)),
    )
    return _verdict(STORIES, folder)


def test_pruned_copy_signals_align_the_kept_layers(pruned_verdict):
    v = pruned_verdict
    depth = v.signals["depth"]
    assert depth.available and depth.value > 0.999
    assert [tuple(p) for p in depth.detail["pairs"]] == [(i, j) for j, i in enumerate(KEEP)]
    assert depth.detail["skipped_a"] == [1, 3] and depth.detail["skipped_b"] == []
    el = v.signals["elementwise"]
    assert el.available and el.value > 0.9999 and el.detail["min"] > 0.9999
    assert el.detail["tensors"] == 7 * len(KEEP)
    assert v.signals["vectors"].value > 0.9999
    assert any("differ in shape" in c for c in v.caveats)
    # the rule: element-wise evidence above unrelated pairs with another depth is a depth derivative
    ruled = decide(v.a, v.b, v.signals, TEST_CALIBRATION, depths=(5, 3), widths=(64, 64))
    assert ruled.verdict == "depth_width_derivative" and ruled.related


def test_pruned_copy_verdict_with_the_shipped_calibration(pruned_verdict):
    if not calibration.load().unrelated:
        pytest.skip(
            "no fingerprint/lineage/calibration.json: thresholds are None, so only same_weights/"
            "quantized_copy can be decided; signals are checked in test_pruned_copy_signals_align_the_kept_layers"
        )
    v = pruned_verdict
    assert v.related and v.verdict in RELATED
    assert v.verdict == "depth_width_derivative"


# ============================================================================ 4. command line


def test_cli_verdict_writes_json(tmp_path, capsys):
    out = tmp_path / "v.json"
    code = cli_main(["verdict", str(STORIES), str(STORIES_Q8), "--json", str(out), "--no-cache"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "quantized_copy" in captured.out
    data = json.loads(out.read_text())
    assert {"a", "b", "verdict", "related", "strength", "signals"} <= set(data)
    assert data["a"] == str(STORIES) and data["b"] == str(STORIES_Q8)
    assert data["verdict"] == "quantized_copy" and data["related"] is True
    assert isinstance(data["strength"], float) and 0.0 <= data["strength"] <= 1.0
    assert list(data["signals"]) == list(SIGNAL_ORDER)
    for name, sig in data["signals"].items():
        assert {"value", "available", "reason", "percentile", "z"} <= set(sig), name
        assert sig["available"] == (sig["value"] is not None), name
        assert sig["available"] or sig["reason"], name
    assert data["signals"]["elementwise"]["value"] > 0.9999


def test_cli_verdict_missing_model_is_one_line_and_exit_1(tmp_path, capsys):
    missing_model = tmp_path / "no-such-model"
    code = cli_main(["verdict", str(STORIES), str(missing_model), "--no-cache"])
    captured = capsys.readouterr()
    assert code == 1
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert str(missing_model) in lines[0]
    assert "Traceback" not in captured.err and "Verdict" not in captured.out


def test_fused_qkv_is_split_into_q_k_v_rows_when_its_rows_are_contiguous(tmp_path):
    """Phi-3's qkv_proj rows are [Q | K | V]: the probe reads each part as its own matrix, exactly or
    sampled, so the Q/K signals work, and says so (interleaved and Conv1D layouts: test_fused_qkv.py)."""
    phi = build_phi3()
    write_safetensors_dir(phi, tmp_path / "phi")
    for budget in (PROBE_BYTES, 60_000):
        probe = _probe(tmp_path / "phi", budget=budget)
        for kind in ("q", "k", "v"):
            for layer, s in probe.matrices[kind].items():
                np.testing.assert_array_equal(s.data, phi.attention[layer][kind][s.rows], err_msg=f"{kind} {layer}")
                assert s.shape == phi.attention[layer][kind].shape
    assert probe.mode == "sampled"
    assert "fused QKV ([Q | K | V] blocks) split into Q, K and V rows" in probe.notes


# ============================================================================ 5. σ from the probe, and what a probe weighs


@pytest.mark.parametrize("model", [STORIES, STORIES_Q8, BABY361, BABY105], ids=lambda p: p.name)
def test_sigma_of_a_probe_read_whole_is_the_exact_fingerprint_bit_for_bit(model):
    from fingerprint.fingerprinting import compute
    from fingerprint.lineage.sigma import fingerprint_of

    probe = _probe(model)
    assert probe.mode == "exact"
    mine = fingerprint_of(probe)
    exact = compute(str(model), Options(use_cache=False, mode="exact")).fingerprint
    assert mine.mode == exact.mode == "exact" and mine.layers == exact.layers
    for role in ("q", "k", "v", "o"):
        assert mine.curves[role] == exact.curves[role], role  # bit for bit
        for stat in ("mean", "rms", "std_err"):
            assert mine.stats[role][stat] == exact.stats[role][stat], (role, stat)


def test_sigma_of_a_sampled_probe_carries_its_error_and_is_near_the_exact_value(synth):
    from fingerprint.fingerprinting import compute
    from fingerprint.lineage.sigma import fingerprint_of

    probe = _probe(synth["root"] / "st", budget=ProbeBudget(bytes=2_000_000, slot_elements=2048))
    assert probe.mode == "sampled"
    mine = fingerprint_of(probe)
    exact = compute(str(synth["root"] / "st"), Options(use_cache=False, mode="exact")).fingerprint
    assert mine.mode == "sampled" and any("jackknife" in n for n in mine.notes)
    sampled = 0
    for role in ("q", "k", "v", "o"):
        for layer, (got, want, err) in enumerate(
            zip(mine.curves[role], exact.curves[role], mine.stats[role]["std_err"])
        ):
            whole = probe.matrices[role][layer].complete
            sampled += not whole
            assert (err == 0 and got == pytest.approx(want, rel=1e-12)) if whole else (err > 0), (role, layer)
            assert abs(got - want) <= max(5 * err, 0.05 * want), (role, layer)
    assert sampled >= 12


def test_a_probe_without_q_k_v_o_rows_falls_back_to_a_sampled_fingerprint(tmp_path):
    """MLA has no V projection of the hidden state (its stand-ins give Q and K only): σ is read separately."""
    from fingerprint.lineage.sigma import fingerprint_of

    mla = build_deepseek_v2()
    write_safetensors_dir(mla, tmp_path / "mla")
    probe = _probe(tmp_path / "mla")
    assert fingerprint_of(probe) is None
    fp = evidence.probe_fingerprint(probe, str(tmp_path / "mla"), Options(use_cache=False))
    assert fp.mode == "sampled" and {"q_a", "kv_a", "kv_b"} <= set(fp.curves)


@pytest.mark.parametrize("fmt", ["bf16", "q8_0.gguf", "q4_0.gguf"])
def test_a_probe_weighs_no_more_than_it_read_on_disk_and_in_memory(tmp_path_factory, fmt):
    root = tmp_path_factory.mktemp(f"weigh-{fmt}")
    layout = build_llama(11, layers=4, **SYNTH)
    if fmt == "bf16":
        path = write_safetensors_dir(layout, root / "m", dtype="BF16")
    else:
        path = write_gguf(layout, root / "m.gguf", qtype={"q8_0.gguf": Q.Q8_0, "q4_0.gguf": Q.Q4_0}[fmt])
    for budget in (PROBE_BYTES, 1_000_000):
        probe = _probe(path, budget=budget)
        stored = tmp_path_factory.mktemp("npz") / "p.npz"
        probe.save(stored)
        data_read = probe.bytes_read - probe.reads["headers_and_tokenizer"]
        assert probe.memory_bytes <= data_read + 4 * sum(
            v.size for layers in probe.vectors.values() for v in layers.values()
        )
        assert stored.stat().st_size <= probe.bytes_read, (budget, stored.stat().st_size, probe.bytes_read)
        again = Probe.load(stored)
        for kind, layers in probe.matrices.items():
            for layer, s in layers.items():
                np.testing.assert_array_equal(again.matrices[kind][layer].data, s.data)
                assert again.matrices[kind][layer].encoding == s.encoding
        for kind, layers in probe.vectors.items():
            for layer, v in layers.items():
                np.testing.assert_array_equal(again.vectors[kind][layer], v)
        np.testing.assert_array_equal(again.embedding, probe.embedding)
    q = probe.matrices["q"][0]
    assert q.encoding == {"bf16": "BF16", "q8_0.gguf": "gguf:Q8_0", "q4_0.gguf": "gguf:Q4_0"}[fmt]
    assert q.kept.dtype == (np.uint16 if fmt == "bf16" else np.uint8)


def test_a_probe_without_vocabulary_is_recognised_in_new_and_cached_words():
    from fingerprint.lineage.vocab import NUMBERED_TOKENS, tokens_are_numbers

    assert tokens_are_numbers(f"model.gguf metadata: {NUMBERED_TOKENS}")
    assert tokens_are_numbers("none: token ids stand in for tokens (assumes the same tokenizer)")  # cached probes
    assert not tokens_are_numbers("tokenizer.json")


def _moe_upcycle(folder: Path, experts: int = 4) -> Path:
    """stories260k upcycled to a Mixtral-layout MoE, as upcycling starts: every expert a copy of the dense MLP plus a
    little noise, a new router; the attention weights untouched."""
    g = np.random.default_rng(11)
    dense = load_file(str(STORIES / "model.safetensors"))
    config = json.loads((STORIES / "config.json").read_text())
    out: dict[str, np.ndarray] = {}
    for name, w in dense.items():
        m = re.match(r"model\.layers\.(\d+)\.mlp\.(gate|up|down)_proj\.weight", name)
        if m is None:
            out[name] = w
            continue
        layer, part = m.groups()
        mixtral = {"gate": "w1", "down": "w2", "up": "w3"}[part]
        prefix = f"model.layers.{layer}.block_sparse_moe"
        for e in range(experts):
            noisy = w + 0.02 * w.std() * g.standard_normal(w.shape)
            out[f"{prefix}.experts.{e}.{mixtral}.weight"] = noisy
        out[f"{prefix}.gate.weight"] = 0.02 * g.standard_normal((experts, config["hidden_size"]))
    config = {
        **config,
        "architectures": ["MixtralForCausalLM"],
        "model_type": "mixtral",
        "num_local_experts": experts,
        "num_experts_per_tok": 2,
    }
    return _write_model(folder, out, config)


def test_an_moe_upcycle_against_a_quantized_copy_of_its_parent_is_an_upcycle_not_a_copy(tmp_path):
    """Dense versus MoE is an architecture change no quantization makes: it outranks the quantized-copy rule."""
    moe = _moe_upcycle(tmp_path / "stories-moe")
    for parent in (STORIES_Q8, STORIES):
        v = _verdict(moe, parent)
        assert v.verdict == "moe_upcycle" and v.related, (parent.name, v.verdict, v.because)
        assert any("MoE" in c or "experts" in c for c in v.caveats + v.because), v.caveats


def _stories_gguf(path: Path, qtype, noise: float) -> Path:
    """stories260k's weights, plus ``noise`` times each tensor's spread in noise (0: none), written as llama.cpp's
    converter writes a GGUF of type ``qtype``."""
    from layouts.base import Layout

    g = np.random.default_rng(5)
    weights = {
        k: (v + noise * v.std() * g.standard_normal(v.shape)).astype(np.float32) if v.ndim == 2 else v
        for k, v in load_file(str(STORIES / "model.safetensors")).items()
    }
    config = json.loads((STORIES / "config.json").read_text())
    layout = Layout("stories260k", config, weights, {i: {} for i in range(config["num_hidden_layers"])})
    return write_gguf(layout, path, qtype=qtype)


@pytest.mark.parametrize("qtype", [Q.Q8_0, Q.Q4_0])
def test_a_fine_tune_seen_through_a_quantized_copy_is_named_so_and_a_plain_copy_stays_a_copy(tmp_path, qtype):
    """A quantized copy is as close to the weights as the format's own rounding of them; a GGUF of a fine-tune is
    farther, and is a fine-tune seen through a quantized copy, not a quantized copy."""
    copy = _verdict(STORIES, _stories_gguf(tmp_path / "copy.gguf", qtype, 0.0))
    assert copy.verdict == "quantized_copy" and copy.qualifier == "", (copy.verdict, copy.because)
    rounding = copy.signals["elementwise"].detail
    assert rounding["rounding_type"] == qtype.name
    assert rounding["rounding_r"] == pytest.approx(copy.signals["elementwise"].value, abs=2e-4)

    tuned = _verdict(STORIES, _stories_gguf(tmp_path / "tune.gguf", qtype, 0.1))
    assert tuned.verdict == "fine_tune" and tuned.related, (tuned.verdict, tuned.because)
    assert tuned.qualifier == "seen through a quantized copy"
    assert tuned.sentence.endswith(", seen through a quantized copy")
    assert any("the weights changed before they were quantized" in b for b in tuned.because)
    assert tuned.to_json()["qualifier"] == "seen through a quantized copy"
    assert relation_short(tuned) == "fine-tune (via a quantized copy)" and relation_short(copy) == "quantized copy"


def test_a_k_quant_copy_says_its_rounding_could_not_be_reproduced(tmp_path):
    layout = build_llama(13, layers=2, **SYNTH)  # rows of 256: whole Q4_K super-blocks
    original = write_safetensors_dir(layout, tmp_path / "st")
    v = _verdict(original, write_gguf(layout, tmp_path / "q4_k.gguf", qtype=Q.Q4_K))
    assert v.verdict == "quantized_copy" and v.signals["elementwise"].detail["rounding_r"] is None
    assert any("cannot be re-quantized here" in n for n in v.not_checked), v.not_checked
