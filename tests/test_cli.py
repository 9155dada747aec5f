"""The command line as a user runs it: inspect, compute --json, compare in three formats."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import FIXTURES
from layouts import build_qwen2, write_safetensors_dir

from fingerprint.cli import main

BABY_A = str(FIXTURES / "babyllama-tok361")
BABY_B = str(FIXTURES / "babyllama-tok105")
STORIES = str(FIXTURES / "stories260k")
GGUF = str(FIXTURES / "stories260k-q8_0.gguf")
ROOT = Path(__file__).resolve().parent.parent


def test_inspect_lists_roles_and_bytes(capsys):
    assert main(["inspect", STORIES, GGUF]) == 0
    out = capsys.readouterr().out
    assert "LlamaForCausalLM" in out and "layers 5" in out
    for role in ("q ", "k ", "v ", "o ", "attn_norm"):
        assert f"  {role}" in out
    assert "bytes to read exact" in out and "permuted" in out  # the GGUF Q/K note


def test_compute_json_then_compare_formats(tmp_path, capsys):
    path = tmp_path / "fps.json"
    assert main(["compute", BABY_A, BABY_B, STORIES, GGUF, "--json", str(path)]) == 0
    data = json.loads(path.read_text())
    assert [d["model"] for d in data] == [BABY_A, BABY_B, STORIES, GGUF]
    assert all(set(d["curves"]) >= {"q", "k", "v", "o"} for d in data)
    capsys.readouterr()

    assert main(["compare", str(path)]) == 0
    table = capsys.readouterr().out
    assert "never proof" in table and "Pearson" in table

    assert main(["compare", str(path), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 6  # 4 models -> 6 pairs
    pair = next(r for r in rows if r["a"] == BABY_A and r["b"] == BABY_B)
    assert abs(float(pair["score_mean_r"]) - 0.95) < 0.01
    quant = next(r for r in rows if r["a"] == STORIES and r["b"] == GGUF)
    assert float(quant["score_mean_r"]) > 0.999
    assert list(rows[0])[-3:] == ["score_interval_low", "score_interval_high", "exact"]  # new columns at the end
    assert pair["exact"] == "True" and pair["score_interval_low"] == pair["score_mean_r"] == pair["score_interval_high"]

    assert main(["compare", str(path), "--format", "json"]) == 0
    pairs = json.loads(capsys.readouterr().out)
    assert all("caveat" in p and p["measure"].startswith("pearson") for p in pairs)
    assert all(p["exact"] is True and p["intervals"] == {} for p in pairs)  # the demo models are read in full


def test_compare_model_references_directly_and_cache_is_used(tmp_path, capsys):
    cache = str(tmp_path / "c.sqlite")
    assert main(["compute", BABY_A, "--cache", cache]) == 0
    assert "ok" in capsys.readouterr().out
    assert main(["compute", BABY_A, "--cache", cache]) == 0
    assert "cached" in capsys.readouterr().out
    assert main(["compare", BABY_A, BABY_B, "--cache", cache]) == 0
    assert "0.9" in capsys.readouterr().out


def test_failed_model_is_reported_and_others_carry_on(tmp_path, capsys):
    path = tmp_path / "fps.json"
    code = main(["compute", STORIES, str(tmp_path / "nope"), "not a repo!!", "--json", str(path), "--no-cache"])
    cap = capsys.readouterr()
    assert code == 1
    assert STORIES in cap.out
    errors = [line for line in cap.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and "Traceback" not in cap.err
    assert [d["model"] for d in json.loads(path.read_text())] == [STORIES]


def test_compare_columns_are_the_same_on_every_run(tmp_path):
    """Qwen2 has Q/K/V biases, roles without a label: their columns once came in Python's per-process set order, so
    a script reading the CSV by position broke from one run to the next."""
    a = write_safetensors_dir(build_qwen2(seed=0), tmp_path / "qwen2-a")
    b = write_safetensors_dir(build_qwen2(seed=1), tmp_path / "qwen2-b")
    headers = set()
    for seed in ("1", "2", "3", "4"):
        done = subprocess.run(
            [sys.executable, "-m", "fingerprint", "compare", str(a), str(b), "--format", "csv", "--no-cache", "-q"],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
            cwd=ROOT,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        headers.add(done.stdout.splitlines()[0])
    assert len(headers) == 1
    roles = [c.removeprefix("r_") for c in headers.pop().split(",") if c.startswith("r_")]
    assert roles[:4] == ["q", "k", "v", "o"] and roles[-3:] == ["q_bias", "k_bias", "v_bias"]


def test_library_commands_add_list_export_import_remove(tmp_path, capsys):
    lib, other = str(tmp_path / "lib"), str(tmp_path / "other")
    assert (
        main(["library", "add", STORIES, GGUF, str(tmp_path / "nope"), "--family", "llama2.c", "--library", lib]) == 1
    )
    out, err = capsys.readouterr()
    assert "2 added, 0 already in the library, 1 failed; the library has 2 models" in out
    assert "error:" in err and "nope: no such file or folder" in err  # the failure named, the others carried on
    assert main(["library", "add", STORIES, "--library", lib]) == 0
    assert "0 added, 1 already in the library" in capsys.readouterr().out
    assert main(["library", "list", "--library", lib]) == 0
    listing = capsys.readouterr().out
    assert "stories260k-q8_0.gguf  llama2.c  llama" in listing and "2 models in" in listing
    assert main(["library", "list", "--json", "--library", lib]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert {e["model"] for e in entries} == {"stories260k", "stories260k-q8_0.gguf"}
    archive = str(tmp_path / "lib.zip")
    assert main(["library", "export", archive, "--library", lib]) == 0
    assert main(["library", "import", archive, "--library", other]) == 0
    assert "imported 2 models" in capsys.readouterr().out
    assert main(["library", "remove", "stories260k", "not-there", "--library", other]) == 1
    out, err = capsys.readouterr()
    assert "removed stories260k" in out and "not-there: not in the library" in err
    assert main(["library", "list", "--library", str(tmp_path / "missing")]) == 1
    assert "missing: no such folder" in capsys.readouterr().err


def test_library_build_reads_a_catalog(tmp_path, capsys):
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("family,publisher,repo_id,size_bucket\nQwen,Qwen,Qwen/Qwen2.5-0.5B,<=1B\n")
    assert (
        main(
            ["library", "build", "--catalog", str(catalog), "--only-family", "Llama", "--library", str(tmp_path / "l")]
        )
        == 1
    )
    assert "no model of the catalog matches" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("name\nx\n")
    assert main(["library", "build", "--catalog", str(bad), "--library", str(tmp_path / "l")]) == 1
    assert "no column family, publisher, repo_id, size_bucket" in capsys.readouterr().err


def test_scan_names_the_closest_known_model_and_writes_json(tmp_path, capsys):
    lib = str(tmp_path / "lib")
    assert main(["library", "add", STORIES, BABY_A, BABY_B, "--library", lib, "-q"]) == 0
    capsys.readouterr()
    out_json, out_html = tmp_path / "scan.json", tmp_path / "scan.html"
    assert main(["scan", GGUF, "--library", lib, "--json", str(out_json), "--html", str(out_html)]) == 0
    out = capsys.readouterr().out
    assert "Closest known: stories260k - consistent with a quantized copy" in out
    assert "declares nothing - closest known: stories260k" in out
    data = json.loads(out_json.read_text())
    assert data["closest"] == "stories260k" and data["top"][0]["model"] == "stories260k"
    assert data["declared"]["outcome"] == "none_declared" and str(tmp_path) not in out_json.read_text()
    page = out_html.read_text()  # the same answer as one page, with the evidence of every candidate
    assert page.startswith("<!DOCTYPE html>") and "<h1>Find the base: stories260k-q8_0.gguf</h1>" in page
    assert "Closest known: stories260k - consistent with a quantized copy" in page
    assert page.count("Lineage evidence: ") == len(data["top"]) and str(tmp_path) not in page
    assert main(["scan", GGUF, "--library", lib, "--html", str(tmp_path / "no" / "such" / "folder.html")]) == 2
    assert "cannot write" in capsys.readouterr().err
    assert main(["scan", GGUF, "--library", lib, "--max-candidates", "1", "--json", str(out_json)]) == 0
    data = json.loads(out_json.read_text())
    assert data["weighed"] == 1 and data["closest"] == "stories260k" and len(data["set_aside"]["entries"]) == 2
    capsys.readouterr()
    assert main(["scan", GGUF, "--library", str(tmp_path / "empty")]) == 1
    assert "no such folder" in capsys.readouterr().err
