"""A reference library travels to and from a Hub dataset as one unit (fingerprint/library/hub_sync.py), checked
against the fake Hub with the real huggingface_hub client: real probes and fingerprints of the demo models go up
through the Hub's commit and LFS protocol and come back byte for byte; every failure names the dataset and the
fix, and leaves the library already at the destination as it was."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import huggingface_hub.constants
import pytest
from conftest import FIXTURES
from huggingface_hub import HfApi

from fingerprint import Fingerprint, Options, compute
from fingerprint.errors import BadToken, GatedRepo, NetworkError, NotALibrary, Offline, RepoNotFound
from fingerprint.library.hub_sync import pull_library, push_library
from fingerprint.lineage.evidence import get_probe
from fingerprint.lineage.probe import Probe

REPO = "acme/known-models"
WRITER = "hf_acme_writer"  # a write token of a member of "acme"
READER = "hf_acme_reader"  # a read token
MODELS = ("babyllama-tok105", "stories260k")


@pytest.fixture(autouse=True)
def _lfs_not_xet(monkeypatch):
    """The fake Hub speaks the Hub's LFS upload protocol, not Xet's (a separate storage service): with hf_xet
    installed, huggingface_hub uploads through Xet unless told not to."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)


@pytest.fixture
def hub(hub):
    hub.redirect_lfs = True  # like the Hub: LFS files are served by the storage origin
    hub.add_token(WRITER, write_access={"acme"})
    hub.add_token(READER)
    return hub


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """Each demo model's probe file (Probe.save) and fingerprint (Fingerprint.to_json), built once."""
    folder = tmp_path_factory.mktemp("built")
    out = {}
    for name in MODELS:
        probe, _ = get_probe(str(FIXTURES / name), Options(use_cache=False))
        probe.save(folder / f"{name}.probe.npz")
        outcome = compute(str(FIXTURES / name), Options(use_cache=False))
        assert outcome.fingerprint is not None, outcome.error
        out[name] = (folder / f"{name}.probe.npz", outcome.fingerprint.to_json())
    return out


def make_library(folder: Path, built: dict[str, tuple[Path, dict]], models=MODELS) -> Path:
    """A library folder as the contract describes it: manifest.json and entries/<key>.{probe.npz,fingerprint.json}."""
    (folder / "entries").mkdir(parents=True)
    entries = []
    for name in models:
        probe_file, fingerprint = built[name]
        key = hashlib.sha256(name.encode()).hexdigest()[:32]
        probe, fp = f"entries/{key}.probe.npz", f"entries/{key}.fingerprint.json"
        shutil.copyfile(probe_file, folder / probe)
        (folder / fp).write_text(json.dumps(fingerprint))
        entries.append(
            {
                "key": key,
                "model": f"demo/{name}@{fingerprint['revision']}",
                "repo_id": f"demo/{name}",
                "revision": fingerprint["revision"],
                "family": "llama",
                "declared_base": [],
                "facts": {"layers": fingerprint["layers"]},
                "probe": probe,
                "fingerprint": fp,
                "probe_sha256": hashlib.sha256(probe_file.read_bytes()).hexdigest(),
                "added_at": "2026-01-01T00:00:00+00:00",
            }
        )
    manifest = {
        "format": "llm-fingerprint-library",
        "version": 1,
        "tool_version": "0.1.0",
        "updated_at": "2026-01-01T00:00:00+00:00",
        "entries": entries,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return folder


def contents(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(parent: Path) -> list[str]:
    """Temporary folders of a pull (staging, or a library moved aside) left next to the destination."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


# ---------------------------------------------------------------------------------------------- push and pull


def test_a_pushed_library_pulls_back_byte_for_byte_and_its_probes_load(hub, tmp_path, built):
    library = make_library(tmp_path / "library", built)
    hub.tree_page_size = 3  # the listing comes in pages, as a big library's does on the Hub

    sha = push_library(library, REPO, token=WRITER, endpoint=hub.url)

    assert hub.commits(REPO, "dataset")[-1] == (sha, "Reference library: 2 models")
    uploads = [path for method, path, _ in hub.requests if method == "PUT"]
    assert len(uploads) == len(MODELS)  # each probe through LFS to the storage origin; the JSON files inline
    hub.reset_counters()

    dest = pull_library(REPO, tmp_path / "pulled", endpoint=hub.url)  # a public dataset: no token needed

    assert dest == tmp_path / "pulled"
    pulled = contents(dest)
    assert {name: pulled[name] for name in contents(library)} == contents(library)
    assert set(pulled) - set(contents(library)) == {".gitattributes", "hub_source.json"}
    source = json.loads(pulled["hub_source.json"])
    assert (source["repo_id"], source["repo_type"], source["revision"]) == (REPO, "dataset", sha)
    assert leftovers(tmp_path) == []
    assert hub.cdn_requests >= len(MODELS) and hub.cdn_authorization_seen == []  # no token left the Hub

    manifest = json.loads(pulled["manifest.json"])
    for entry, name in zip(manifest["entries"], MODELS, strict=True):
        probe = Probe.load(dest / entry["probe"])
        assert probe.model == str(FIXTURES / name) and probe.n_layers > 0
        fingerprint = Fingerprint.from_json(json.loads((dest / entry["fingerprint"]).read_text()))
        assert fingerprint.revision == entry["revision"]


def test_a_second_push_updates_the_dataset_and_a_pull_replaces_the_library(hub, tmp_path, built):
    first = make_library(tmp_path / "v1", built, models=MODELS[:1])
    second = make_library(tmp_path / "v2", built, models=MODELS[1:])
    sha1 = push_library(first, REPO, token=WRITER, endpoint=hub.url)
    dest = pull_library(REPO, tmp_path / "library", endpoint=hub.url)
    assert contents(first).items() <= contents(dest).items()

    sha2 = push_library(second, REPO, token=WRITER, message="Swap the models", endpoint=hub.url)
    assert sha2 != sha1
    assert [summary for _, summary in hub.commits(REPO, "dataset")] == [
        "initial commit",
        "Reference library: 1 model",
        "Swap the models",
    ]
    assert push_library(second, REPO, token=WRITER, endpoint=hub.url) == sha2  # nothing changed: no commit
    assert len(hub.commits(REPO, "dataset")) == 3

    pull_library(REPO, dest, endpoint=hub.url)
    assert {k: v for k, v in contents(dest).items() if k != "hub_source.json"} == contents(second) | {
        ".gitattributes": hub.read_file(REPO, ".gitattributes", repo_type="dataset")
    }  # the first library's entries are gone from the dataset and from the folder
    assert json.loads((dest / "hub_source.json").read_text())["revision"] == sha2

    pinned = pull_library(REPO, tmp_path / "pinned", revision=sha1, endpoint=hub.url)
    assert contents(first).items() <= contents(pinned).items()
    assert leftovers(tmp_path) == []


def test_a_push_that_raced_another_is_refused_and_the_other_commit_stays(hub, tmp_path, built, monkeypatch):
    push_library(make_library(tmp_path / "v1", built, MODELS[:1]), REPO, token=WRITER, endpoint=hub.url)
    create_commit = HfApi.create_commit

    def someone_else_pushes_first(self, *args, **kwargs):
        hub.add_repo(REPO, {"manifest.json": b"theirs"}, repo_type="dataset")
        return create_commit(self, *args, **kwargs)

    monkeypatch.setattr(HfApi, "create_commit", someone_else_pushes_first)
    with pytest.raises(NetworkError) as err:
        push_library(make_library(tmp_path / "v2", built), REPO, token=WRITER, endpoint=hub.url)

    assert "someone else pushed" in str(err.value) and "Push again" in err.value.fix
    assert hub.commits(REPO, "dataset")[-1][1] == "add_repo"  # theirs is the head, nothing of ours was mixed in
    assert hub.read_file(REPO, "manifest.json", repo_type="dataset") == b"theirs"


def test_a_private_library_is_pulled_with_a_token_that_can_read_it(hub, tmp_path, built):
    push_library(make_library(tmp_path / "library", built), REPO, token=WRITER, private=True, endpoint=hub.url)

    with pytest.raises(RepoNotFound) as err:
        pull_library(REPO, tmp_path / "anonymous", endpoint=hub.url)
    assert REPO in str(err.value) and "token" in err.value.fix
    assert not (tmp_path / "anonymous").exists()

    assert (pull_library(REPO, tmp_path / "owner", token=WRITER, endpoint=hub.url) / "manifest.json").is_file()


# ---------------------------------------------------------------------------------------------- failures


def _missing(hub, tmp_path, built):
    return "acme/no-such-library", None, RepoNotFound, "not found"


def _wrong_token(hub, tmp_path, built):
    push_library(make_library(tmp_path / "other", built, MODELS[:1]), REPO, token=WRITER, endpoint=hub.url)
    return REPO, "hf_not_a_token", BadToken, "rejected the token"


def _not_a_library(hub, tmp_path, built):
    hub.add_repo("acme/photos", {"README.md": b"# Photos", "cats.csv": b"name\ntom\n"}, repo_type="dataset")
    return "acme/photos", None, NotALibrary, "no manifest.json"


def _incomplete_library(hub, tmp_path, built):
    library = make_library(tmp_path / "other", built, MODELS[:1])
    files = {name: data for name, data in contents(library).items() if not name.endswith(".npz")}
    hub.add_repo("acme/incomplete", files, repo_type="dataset")
    return "acme/incomplete", None, NotALibrary, "missing"


def _other_version(hub, tmp_path, built):
    manifest = {"format": "llm-fingerprint-library", "version": 2, "entries": []}
    hub.add_repo("acme/future", {"manifest.json": json.dumps(manifest).encode()}, repo_type="dataset")
    return "acme/future", None, NotALibrary, "version 2"


def _gated(hub, tmp_path, built):
    library = make_library(tmp_path / "other", built, MODELS[:1])
    hub.add_repo("acme/gated", contents(library), gated=True, repo_type="dataset")
    return "acme/gated", READER, GatedRepo, "gated"


def _download_refused(hub, tmp_path, built):
    push_library(make_library(tmp_path / "other", built), REPO, token=WRITER, endpoint=hub.url)
    hub.fail_next(1, 503, path_contains="/lfs/")  # the storage origin fails one probe's download
    return REPO, None, NetworkError, "HTTP 503"


def _download_cut_short(hub, tmp_path, built):
    push_library(make_library(tmp_path / "other", built), REPO, token=WRITER, endpoint=hub.url)
    hub.truncate_next(1, path_contains="/lfs/")  # half of one probe arrives, in a well-formed answer
    return REPO, None, NetworkError, "transfer failed"


def _offline(hub, tmp_path, built):
    hub.stop()
    return REPO, None, Offline, "cannot reach the Hub"


@pytest.mark.parametrize(
    "case",
    [
        _missing,
        _wrong_token,
        _not_a_library,
        _incomplete_library,
        _other_version,
        _gated,
        _download_refused,
        _download_cut_short,
        _offline,
    ],
)
def test_a_failed_pull_names_the_dataset_and_leaves_the_library_at_dest_as_it_was(hub, tmp_path, built, case):
    dest = make_library(tmp_path / "work" / "library", built, models=MODELS[:1])
    before = contents(dest)
    repo_id, token, error, words = case(hub, tmp_path, built)

    with pytest.raises(error) as err:
        pull_library(repo_id, dest, token=token, endpoint=hub.url)

    message = str(err.value)
    assert repo_id in message and words in message and err.value.fix, message
    assert token is None or token not in message
    assert contents(dest) == before
    assert leftovers(dest.parent) == []


def test_a_pull_never_replaces_a_folder_that_is_not_a_library(hub, tmp_path, built):
    push_library(make_library(tmp_path / "library", built, MODELS[:1]), REPO, token=WRITER, endpoint=hub.url)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("keep me")

    with pytest.raises(NotALibrary) as err:
        pull_library(REPO, notes, endpoint=hub.url)
    assert "no library" in str(err.value)
    assert (notes / "todo.txt").read_text() == "keep me"

    empty = tmp_path / "empty"
    empty.mkdir()
    assert (pull_library(REPO, empty, endpoint=hub.url) / "manifest.json").is_file()


def _no_token(hub):
    return None, "none was given"


def _read_token(hub):
    return READER, "may not write"


def _other_namespace(hub):
    hub.add_token("hf_someone_else", write_access={"someone-else"})
    return "hf_someone_else", "may not write"


def _invalid_token(hub):
    return "hf_not_a_token", "rejected the token"


@pytest.mark.parametrize("case", [_no_token, _read_token, _other_namespace, _invalid_token])
@pytest.mark.parametrize("exists", [False, True], ids=["new dataset", "existing dataset"])
def test_a_push_without_a_write_token_is_refused_and_changes_nothing(hub, tmp_path, built, case, exists):
    library = make_library(tmp_path / "library", built)
    if exists:
        push_library(make_library(tmp_path / "old", built, MODELS[:1]), REPO, token=WRITER, endpoint=hub.url)
    commits = hub.commits(REPO, "dataset")
    token, words = case(hub)

    with pytest.raises(BadToken) as err:
        push_library(library, REPO, token=token, endpoint=hub.url)

    message = str(err.value)
    assert words in message and "write access" in err.value.fix, message
    assert token is None or token not in message
    assert hub.commits(REPO, "dataset") == commits


@pytest.mark.parametrize(
    "damage, words",
    [
        (lambda lib: (lib / "manifest.json").unlink(), "no manifest.json"),
        (lambda lib: (lib / "manifest.json").write_text("{not json"), "cannot be read as JSON"),
        (lambda lib: (lib / "manifest.json").write_text('{"format": "other", "version": 1}'), "format 'other'"),
        (lambda lib: next((lib / "entries").glob("*.npz")).unlink(), "missing"),
    ],
    ids=["no manifest", "not JSON", "other format", "probe missing"],
)
def test_a_folder_that_is_not_a_complete_library_is_not_pushed(hub, tmp_path, built, damage, words):
    library = make_library(tmp_path / "library", built)
    damage(library)

    with pytest.raises(NotALibrary) as err:
        push_library(library, REPO, token=WRITER, endpoint=hub.url)

    assert str(library) in str(err.value) and words in str(err.value), str(err.value)
    assert hub.requests == []  # refused before anything reached the Hub


def test_the_command_line_pushes_a_built_library_and_pulls_it_elsewhere(hub, monkeypatch, tmp_path, capsys):
    from fingerprint.cli import main
    from fingerprint.library.store import Library

    # as if HF_ENDPOINT had named the fake Hub before huggingface_hub was imported (both are read at import)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", hub.url)
    monkeypatch.setattr(
        huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}"
    )
    mine, theirs = str(tmp_path / "mine"), str(tmp_path / "theirs")
    assert main(["library", "add", str(FIXTURES / "stories260k"), "--library", mine, "-q"]) == 0
    assert main(["library", "push", REPO, "--library", mine, "--token", READER]) == 1
    assert "acme/known-models" in capsys.readouterr().err  # a read token cannot publish; the dataset is named
    assert main(["library", "push", REPO, "--library", mine, "--token", WRITER]) == 0
    assert f"pushed 1 models to dataset {REPO}" in capsys.readouterr().out
    assert main(["library", "pull", REPO, "--library", theirs]) == 0
    assert "pulled 1 models" in capsys.readouterr().out
    pulled = Library.open(theirs)
    entry = pulled.find("stories260k")
    assert entry is not None and pulled.probe(entry).n_layers == 5
    assert WRITER not in (tmp_path / "theirs" / "manifest.json").read_text()
