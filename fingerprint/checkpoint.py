"""Open a model reference: pick its weight files, parse their headers, read its config.

Only headers, the shard index and config.json are read here; tensor data is read later,
and only for the tensors a fingerprint needs.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import (
    BadReference,
    Cancelled,
    CorruptFile,
    FileNotInRepo,
    FingerprintError,
    NoWeights,
    PickleRefused,
    UnsupportedFormat,
)
from .formats import gguf as gguf_format
from .formats import safetensors as st_format
from .formats import torch_zip
from .formats.packed import fold_packed
from .formats.tensor import TensorInfo
from .modelconfig import ModelConfig
from .reference import ModelRef
from .result import Access, WeightFormat
from .sources.base import ByteSource, ReadContext
from .sources.local import LocalFile
from .tensor_names import ATTENTION_ROLES, parse_name

if TYPE_CHECKING:
    from .sources.hub import HubSnapshot

# PyTorch checkpoints: read as torch.save's zip archives, their data.pkl by a restricted unpickler that runs nothing
# (formats/torch_zip.py); legacy (pre-1.6, non-zip) pickles among them are refused when opened
TORCH_SUFFIXES = torch_zip.SUFFIXES
# plain pickles: loading one can run code, and no tensor layout is known, so they are refused
PICKLE_SUFFIXES = (".pkl", ".pickle")
TORCH_INDEX = "pytorch_model.bin.index.json"
# .bin/.pt files of a training run that hold no weights (arguments, optimizer and scheduler states, RNG states)
NOT_WEIGHTS = re.compile(r"^(training_args\.bin|optimizer\.pt|scheduler\.pt|scaler\.pt|rng_state.*\.pth)$")
MAX_SMALL_FILE = 16 << 20  # config.json / index json larger than this is not a real one

# best first: the highest-fidelity GGUF is picked when a repo ships several quantizations
GGUF_FIDELITY = [
    "F32",
    "BF16",
    "F16",
    "Q8_0",
    "Q6_K",
    "Q5_K_M",
    "Q5_K_L",
    "Q5_K_S",
    "Q5_K",
    "Q5_1",
    "Q5_0",
    "Q4_K_L",
    "Q4_K_M",
    "Q4_K_S",
    "Q4_K",
    "IQ4_XS",
    "IQ4_NL",
    "Q4_1",
    "Q4_0",
    "MXFP4",
    "Q3_K_XL",
    "Q3_K_L",
    "Q3_K_M",
    "Q3_K_S",
    "IQ3_M",
    "IQ3_S",
    "IQ3_XS",
    "IQ3_XXS",
    "Q2_K_L",
    "Q2_K",
    "IQ2_M",
    "IQ2_S",
    "IQ2_XS",
    "IQ2_XXS",
    "IQ1_M",
    "IQ1_S",
    "TQ2_0",
    "TQ1_0",
]
_SPLIT_GGUF = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$")


@dataclass
class WeightFile:
    """One weight file of a model; a local file's sha256 is filled in once hashed."""

    name: str  # path inside the repo or folder
    size: int
    sha256: str | None = None  # local files (Hub files are pinned by the commit sha)


@dataclass
class Checkpoint:
    """An opened model: its weight files with their parsed headers, its config, and how to read more of it."""

    ref: ModelRef
    # commit sha, or "sha256:..." for local files, which may still be hashing while statistics run
    revision_future: Future[str]
    format: WeightFormat
    files: list[WeightFile]
    tensors: dict[str, TensorInfo]
    config: ModelConfig
    header_bytes: int
    context: ReadContext  # counts every read of the model; holds its deadline and cancel flag
    sources: list[ByteSource] = field(default_factory=list, repr=False)
    notes: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict, repr=False)  # GGUF metadata (vocabulary included)
    listing: dict[str, int] = field(default_factory=dict, repr=False)  # every file of the repo or folder
    opener: Callable[[str], ByteSource] | None = field(default=None, repr=False)
    access: Access = "local"  # Hub repos: "public" | "gated" | "private" (from the Hub at open time)
    read_as: str | None = None  # how packed weights were read, e.g. "GPTQ 4-bit (group 128) dequantized from ..."

    def open_file(self, name: str) -> ByteSource | None:
        """Another file of the model (e.g. tokenizer.json), read through the same context (counts, deadline)."""
        if self.opener is None or name not in self.listing:
            return None
        return self.opener(name)

    @property
    def revision(self) -> str:
        """Commit sha, or "sha256:..." for local files (waits for a hash still being computed)."""
        return self.revision_future.result()

    @property
    def revision_known(self) -> bool:
        """True once the revision is there without waiting."""
        return self.revision_future.done()

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def close(self) -> None:
        for s in self.sources:
            s.close()


def known(revision: str) -> Future[str]:
    """A revision already known, in the form of one still being computed."""
    done: Future[str] = Future()
    done.set_result(revision)
    return done


def gguf_rank(name: str) -> int:
    """Fidelity rank of a GGUF file name's quantization (0 = F32, the best); unknown ones rank last."""
    upper = Path(name).name.upper()
    for i, tag in enumerate(GGUF_FIDELITY):
        if re.search(rf"(^|[-_.]){re.escape(tag)}([-_.]|$)", upper):
            return i
    return len(GGUF_FIDELITY)


def choose_weight_files(
    files: dict[str, int], wanted: str | None, read_json: Callable[[str], dict[str, Any]]
) -> tuple[WeightFormat, list[str]]:
    """Pick (format, weight file names) from a listing {path: size}."""
    if wanted:
        if wanted not in files:
            weights = [f for f in files if f.endswith((".safetensors", ".gguf", *TORCH_SUFFIXES))][:8]
            raise FileNotInRepo(f"{wanted} is not in the repository (weight files: {', '.join(weights) or 'none'})")
        if wanted.endswith(".gguf"):
            return "gguf", _gguf_split_group(files, wanted)
        if wanted.endswith(TORCH_SUFFIXES):
            return "pytorch", [wanted]
        if wanted.endswith(PICKLE_SUFFIXES):
            raise PickleRefused(f"{wanted} is a pickle file")
        return "safetensors", [wanted]

    if "model.safetensors.index.json" in files:
        return "safetensors", _index_shards(files, "model.safetensors.index.json", read_json)

    root_st = sorted(f for f in files if "/" not in f and f.endswith(".safetensors"))
    if "model.safetensors" in root_st:
        return "safetensors", ["model.safetensors"]
    if root_st:
        main = [f for f in root_st if not f.startswith("consolidated")] or root_st
        return "safetensors", main

    ggufs = [f for f in files if f.endswith(".gguf") and "mmproj" not in Path(f).name.lower()]
    if ggufs:
        first_parts = [f for f in ggufs if (part := _SPLIT_GGUF.search(f)) is None or part.group(1) == "00001"]
        best = min(first_parts or ggufs, key=lambda f: (gguf_rank(f), f))
        return "gguf", _gguf_split_group(files, best)

    if TORCH_INDEX in files:
        return "pytorch", _index_shards(files, TORCH_INDEX, read_json)
    root_torch = sorted(f for f in files if "/" not in f and f.endswith(TORCH_SUFFIXES) and not NOT_WEIGHTS.match(f))
    if "pytorch_model.bin" in root_torch:
        return "pytorch", ["pytorch_model.bin"]
    if root_torch:
        return "pytorch", [f for f in root_torch if not f.startswith("consolidated")] or root_torch

    pickles = [f for f in files if f.endswith(PICKLE_SUFFIXES)]
    if pickles:
        raise PickleRefused(f"only pickle files found ({', '.join(sorted(pickles)[:3])})")
    sample = ", ".join(sorted(files)[:8]) or "no files"
    raise NoWeights(f"no .safetensors, .gguf or PyTorch (.bin, .pt) weights found ({sample})")


def _index_shards(files: dict[str, int], index_name: str, read_json: Callable[[str], dict[str, Any]]) -> list[str]:
    """The shards a sharded checkpoint's index (model.safetensors.index.json, pytorch_model.bin.index.json) names."""
    index = read_json(index_name)
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise CorruptFile(f"{index_name} has no weight_map")
    shards = sorted({str(v) for v in weight_map.values()})
    missing = [s for s in shards if s not in files]
    if missing:
        raise CorruptFile(f"{index_name} names shards that are not there: {', '.join(missing[:3])}")
    return shards


def _gguf_split_group(files: dict[str, int], first: str) -> list[str]:
    m = _SPLIT_GGUF.search(first)
    if not m:
        return [first]
    stem, count = first[: m.start()], int(m.group(2))
    parts = [f"{stem}-{i:05d}-of-{count:05d}.gguf" for i in range(1, count + 1)]
    missing = [p for p in parts if p not in files]
    if missing:
        raise FileNotInRepo(f"split GGUF is missing parts: {', '.join(missing[:3])}")
    return parts


def open_checkpoint(
    ref: ModelRef,
    *,
    token: str | None = None,
    endpoint: str | None = None,
    file_hash: Callable[[Path], str] | None = None,
    known_hash: Callable[[Path], str | None] | None = None,
    snapshot: HubSnapshot | None = None,
    context: ReadContext | None = None,
) -> Checkpoint:
    """Open a model. Local files are identified by their sha256: ``known_hash`` answers from a
    cache, and the others are hashed by ``file_hash`` in the background, alongside the reads."""
    context = context or ReadContext()
    if ref.kind == "hub":
        return _open_hub(ref, context, token=token, endpoint=endpoint, snapshot=snapshot)
    return _open_local(ref, context, file_hash or sha256_file, known_hash or (lambda p: None))


def _open_hub(
    ref: ModelRef,
    context: ReadContext,
    *,
    token: str | None,
    endpoint: str | None,
    snapshot: HubSnapshot | None,
) -> Checkpoint:
    from .sources.hub import HubFile, resolve_snapshot

    snap = snapshot or resolve_snapshot(ref.hub_repo_id, ref.revision, token=token, endpoint=endpoint, context=context)

    def open_file(name: str) -> HubFile:
        return HubFile(snap, name, context)

    def read_json(name: str) -> dict[str, Any]:
        return _read_json(open_file(name))

    fmt, names = choose_weight_files(snap.files, ref.filename, read_json)
    config = {}
    if fmt != "gguf" and "config.json" in snap.files:
        config = read_json("config.json")
    sources: list[ByteSource] = [open_file(n) for n in names]
    files = [WeightFile(n, snap.files[n]) for n in names]
    ckpt = _assemble(ref, known(snap.sha), fmt, files, sources, config, context)
    return replace(ckpt, listing=dict(snap.files), opener=open_file, access=snap.access)


def _open_local(
    ref: ModelRef, context: ReadContext, file_hash: Callable[[Path], str], known_hash: Callable[[Path], str | None]
) -> Checkpoint:
    path = ref.path
    assert path is not None
    if path.is_dir():
        root = path
        listing = _list_folder(root, depth=3)
        fmt, names = choose_weight_files(listing, None, lambda n: _read_json(LocalFile(root / n)))
        aux = listing
    else:
        root = path.parent
        if path.name.endswith(PICKLE_SUFFIXES):
            raise PickleRefused(f"{path.name} is a pickle file")
        if not path.name.endswith((".safetensors", ".gguf", *TORCH_SUFFIXES)):
            raise BadReference(f"{path.name} is not a .safetensors, .gguf or PyTorch (.bin, .pt, .pth) file")
        listing = {path.name: path.stat().st_size}
        aux = {p.name: p.stat().st_size for p in root.iterdir() if p.is_file()}
        if path.name.endswith(".gguf"):
            siblings = {p.name: p.stat().st_size for p in root.glob("*.gguf")}
            fmt, names = "gguf", _gguf_split_group({**siblings, **listing}, path.name)
        elif path.name.endswith(TORCH_SUFFIXES):
            fmt, names = "pytorch", [path.name]
        else:
            fmt, names = "safetensors", [path.name]
    config = {}
    if fmt != "gguf" and (root / "config.json").is_file():
        config = _read_json(LocalFile(root / "config.json"))
    sources: list[ByteSource] = [LocalFile(root / n, context, name=n) for n in names]
    files = [WeightFile(n, s.size, known_hash(root / n)) for n, s in zip(names, sources)]

    def hash_all() -> str:
        for f in files:
            f.sha256 = f.sha256 or file_hash(root / f.name)
        return _local_revision(files)

    if all(f.sha256 for f in files):
        revision = known(hash_all())
    else:
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256")
        revision = pool.submit(hash_all)
        pool.shutdown(wait=False)
    ckpt = _assemble(ref, revision, fmt, files, sources, config, context)
    return replace(ckpt, listing=aux, opener=lambda n: LocalFile(root / n, context, name=n))


def _local_revision(files: list[WeightFile]) -> str:
    if len(files) == 1:
        return f"sha256:{files[0].sha256}"
    joined = "\n".join(f"{f.name}:{f.sha256}" for f in files)
    return "sha256:" + hashlib.sha256(joined.encode()).hexdigest()


def _assemble(
    ref: ModelRef,
    revision: Future[str],
    fmt: WeightFormat,
    files: list[WeightFile],
    sources: list[ByteSource],
    config_json: dict[str, Any],
    context: ReadContext,
) -> Checkpoint:
    parse = {"safetensors": st_format.read_header, "gguf": gguf_format.read_header, "pytorch": torch_zip.read_header}[
        fmt
    ]
    try:
        # shards' headers are independent: parse them concurrently (one round trip each on the Hub)
        with ThreadPoolExecutor(max_workers=min(8, len(sources))) as pool:
            headers = list(pool.map(parse, sources))
    except FingerprintError:
        for s in sources:
            s.close()
        raise
    tensors: dict[str, TensorInfo] = {}
    for found, _, _ in headers:
        for t in found:
            tensors.setdefault(t.name, t)
    notes = _skipped_views(files, headers, sources) if fmt == "pytorch" else []
    read_as = None
    if fmt == "safetensors":
        tensors, read_as = fold_packed(tensors, config_json if isinstance(config_json, dict) else {})
    if fmt == "gguf":
        config = ModelConfig.from_gguf(headers[0][1])
    else:
        config = ModelConfig.from_hf(config_json if isinstance(config_json, dict) else {})
    return Checkpoint(
        ref=ref,
        revision_future=revision,
        format=fmt,
        files=files,
        tensors=tensors,
        config=config,
        header_bytes=context.bytes,
        context=context,
        sources=sources,
        notes=notes + ([read_as] if read_as else []),
        metadata=headers[0][1] if fmt == "gguf" else {},
        read_as=read_as,
    )


def _skipped_views(
    files: list[WeightFile], headers: list[tuple[list[TensorInfo], dict[str, Any], int]], sources: list[ByteSource]
) -> list[str]:
    """A PyTorch checkpoint's non-contiguous views (a transposed or strided tensor): their rows are not byte ranges.
    One that a σ-curve needs refuses the model; the others are left out, and a note says which."""
    skipped = [name for _, meta, _ in headers for name in meta.get("skipped", [])]
    needed = [name for name in skipped if parse_name(name, ATTENTION_ROLES) is not None]
    if needed:
        for s in sources:
            s.close()
        raise UnsupportedFormat(
            f"{needed[0]} is stored as a non-contiguous view (transposed or strided), whose rows are not byte ranges "
            f"of {files[0].name if len(files) == 1 else 'its shard'}, and the σ-curve needs it",
            "Re-save the checkpoint after .contiguous() on each tensor, or convert it to safetensors.",
        )
    if not skipped:
        return []
    shown = ", ".join(skipped[:3]) + (f" and {len(skipped) - 3} more" if len(skipped) > 3 else "")
    return [f"{len(skipped)} tensors stored as non-contiguous views were left out (not needed for σ-curves): {shown}"]


def _list_folder(root: Path, depth: int, limit: int = 10_000) -> dict[str, int]:
    """Files up to ``depth`` levels below root (path -> size), without walking a huge tree."""
    out: dict[str, int] = {}
    level = [root]
    for _ in range(depth):
        nxt = []
        for folder in level:
            for p in sorted(folder.iterdir()):
                if len(out) >= limit:
                    return out
                if p.is_file():
                    out[str(p.relative_to(root))] = p.stat().st_size
                elif p.is_dir() and not p.name.startswith("."):
                    nxt.append(p)
        level = nxt
    return out


def _read_json(src: ByteSource) -> dict[str, Any]:
    try:
        if src.size > MAX_SMALL_FILE:
            raise CorruptFile(f"{src.name} is {src.size} bytes, too large to be a config")
        data = json.loads(src.read(0, src.size).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CorruptFile(f"{src.name} is not valid JSON") from None
    finally:
        src.close()
    if not isinstance(data, dict):
        raise CorruptFile(f"{src.name} is not a JSON object")
    return data


def sha256_file(path: Path, chunk: int = 8 << 20, cancel: threading.Event | None = None) -> str:
    """sha256 of a whole file (the value the Hub shows as an LFS file's sha256); stops on ``cancel``."""
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(chunk)
        view = memoryview(buf)
        while n := f.readinto(buf):
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"cancelled while hashing {path.name}")
            h.update(view[:n])
    return h.hexdigest()
