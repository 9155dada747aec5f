"""A model's vocabulary as plain text, and the tokens whose embedding rows a probe reads.

Two models are aligned through the tokens both vocabularies contain, compared by their
text: byte-level BPE (GPT-2, Qwen, Llama-3: 'Ġthe') and SentencePiece ('▁the') spell a
leading space differently, so both are turned into the text they stand for (' the').

Which tokens a probe reads must not depend on the other model (probes are computed and
cached one model at a time), yet two probes must share as many tokens as possible. Each
token text gets a pseudo-random rank from a hash; a probe reads the K lowest-ranked tokens
of its vocabulary. For two models, every token both vocabularies contain whose rank is
below both models' cut-offs was read by both.

Scattered ids cost one Range request each, so a probe reads *windows* of consecutive ids
instead (``pick_windows``): each window is the aligned block of ids around one of the
lowest-ranked tokens, in rank order. Two models with the same tokenizer read identical rows;
with different tokenizers at least the anchor tokens are shared (matched by text, never by id).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import numpy as np

from ..checkpoint import Checkpoint
from ..errors import CorruptFile

MAX_TOKENIZER_BYTES = 64 << 20  # tokenizer.json of the largest vocabularies (Gemma: ~33 MB)
_SPM_BYTE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


def _byte_decoder() -> dict[str, int]:
    """Inverse of GPT-2's bytes_to_unicode: the printable character that stands for each byte."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


_BYTE_DECODER = _byte_decoder()


def normalise(token: str, style: str) -> str:
    """The text a token stands for: 'byte_level' (GPT-2 mapping), 'sentencepiece' ('▁' = space) or 'plain'."""
    if style == "byte_level":
        if all(ch in _BYTE_DECODER for ch in token):
            return bytes(_BYTE_DECODER[ch] for ch in token).decode("utf-8", errors="backslashreplace")
        return token  # special tokens such as <|endoftext|> are not byte-mapped
    if style == "sentencepiece":
        m = _SPM_BYTE.match(token)
        if m:
            b = int(m.group(1), 16)
            return chr(b) if b < 0x80 else token
        return token.replace("▁", " ")
    return token


def rank(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def read_vocabulary(ckpt: Checkpoint) -> tuple[list[str] | None, str, int]:
    """(token texts by id, where they came from, bytes read). None when the model ships no
    vocabulary this tool reads (SentencePiece's tokenizer.model alone is not parsed)."""
    tokens = ckpt.metadata.get("tokenizer.ggml.tokens")
    if isinstance(tokens, list) and tokens:
        model = ckpt.metadata.get("tokenizer.ggml.model")
        style = "byte_level" if model == "gpt2" else "sentencepiece" if model == "llama" else "plain"
        return [normalise(t, style) for t in tokens], f"GGUF metadata ({model or 'unknown'} tokenizer)", 0
    for name in ("tokenizer.json", "vocab.json"):
        src = ckpt.open_file(name)
        if src is None:
            continue
        try:
            if src.size > MAX_TOKENIZER_BYTES:
                continue
            raw = src.read(0, src.size)
        finally:
            src.close()
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise CorruptFile(f"{name} is not valid JSON") from None
        parsed = _from_tokenizer_json(data) if name == "tokenizer.json" else (_id_map(data), "byte_level")
        if parsed is None or not parsed[0]:
            continue
        by_id, style = parsed
        return [normalise(t, style) for t in by_id], name, len(raw)
    return None, "no tokenizer.json, vocab.json or GGUF vocabulary", 0


def _from_tokenizer_json(data: dict[str, Any]) -> tuple[list[str], str] | None:
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict):
        return None
    vocab = model.get("vocab")
    if isinstance(vocab, dict):
        by_id = _id_map(vocab)
    elif isinstance(vocab, list):  # Unigram: [[piece, score], ...]
        by_id = [v[0] if isinstance(v, list) and v and isinstance(v[0], str) else "" for v in vocab]
    else:
        return None
    for extra in data.get("added_tokens") or []:
        if isinstance(extra, dict) and isinstance(extra.get("id"), int) and isinstance(extra.get("content"), str):
            i = extra["id"]
            if 0 <= i < 1 << 22:
                by_id += [""] * (i + 1 - len(by_id))
                by_id[i] = by_id[i] or extra["content"]
    text = json.dumps(data.get("pre_tokenizer"), ensure_ascii=False) + json.dumps(
        data.get("decoder"), ensure_ascii=False
    )
    style = (
        "byte_level"
        if "ByteLevel" in text
        else "sentencepiece"
        if "▁" in text or model.get("type") == "Unigram"
        else "plain"
    )
    return by_id, style


def _id_map(vocab: dict[str, Any]) -> list[str]:
    ids = {v: k for k, v in vocab.items() if isinstance(v, int) and 0 <= v < 1 << 22 and isinstance(k, str)}
    if not ids:
        return []
    out = [""] * (max(ids) + 1)
    for i, t in ids.items():
        out[i] = t
    return out


def first_ids(texts: list[str], rows: int) -> dict[str, int]:
    """Each distinct, non-empty token text (id < rows) -> its first id: the rows whose text names them."""
    seen: dict[str, int] = {}
    for i, t in enumerate(texts[:rows]):
        if t and t not in seen:
            seen[t] = i
    return seen


def pick_tokens(texts: list[str], limit: int, rows: int) -> list[int]:
    """Ids of the ``limit`` tokens with the lowest rank (distinct, non-empty texts, id < rows), ascending by id."""
    seen = first_ids(texts, rows)
    chosen = sorted(seen, key=rank)[:limit]
    return sorted(seen[t] for t in chosen)


def pick_windows(texts: list[str], windows: int, width: int, rows: int) -> list[int]:
    """First ids of up to ``windows`` aligned windows of ``width`` consecutive ids (the window
    holding each of the lowest-ranked tokens, in rank order), ascending. A smaller count is a
    prefix of a larger one: probes with fewer windows read a subset of the rows."""
    if windows <= 0 or width <= 0:
        return []
    named = first_ids(texts, rows)
    ids = np.fromiter(named.values(), dtype=np.int64, count=len(named))
    ranks = np.fromiter((rank(t) for t in named), dtype=np.uint64, count=len(named))
    starts: dict[int, None] = {}
    for i in ids[np.argsort(ranks, kind="stable")]:
        starts.setdefault(int(i) // width * width)
        if len(starts) >= windows:
            break
    return sorted(starts)


NUMBERED_TOKENS = (
    "no vocabulary file, so tokens were matched by their number (right only when both models use the same tokenizer)"
)


def tokens_are_numbers(vocab_source: str) -> bool:
    """Whether a probe had no vocabulary and stands for its tokens by their ids (NUMBERED_TOKENS). Probes cached by
    earlier versions of the tool say it as 'token ids stand in for tokens'."""
    return NUMBERED_TOKENS in vocab_source or "token ids stand in" in vocab_source
