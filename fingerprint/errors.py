"""One typed error per thing that can go wrong, each with a message a person can act on.

Every error renders as one line: ``<model>: <problem>. <what to do>``. Errors raised deep
in a parser do not know the model yet; the orchestrator fills ``model`` in before the
error reaches the user. Messages never contain a token.
"""

from __future__ import annotations


class FingerprintError(Exception):
    """Base class: ``problem`` says what went wrong, ``fix`` what the user can do."""

    fix = ""

    def __init__(self, problem: str, fix: str | None = None, *, model: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        if fix is not None:
            self.fix = fix
        self.model = model

    @property
    def kind(self) -> str:
        """Stable snake_case name of the error class, for JSON and the dashboard."""
        name = type(self).__name__
        return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")

    def __str__(self) -> str:
        head = f"{_clean(self.model)}: " if self.model else ""
        tail = f" {self.fix}" if self.fix else ""
        problem = _clean(self.problem).rstrip(".")
        if self.model:  # a one-file model's problem often starts with that file's name: say the name once
            name = _clean(self.model).rstrip("/").rsplit("/", 1)[-1]
            problem = problem.removeprefix(f"{name}: ")
        return f"{head}{problem}.{tail}"


MAX_PROBLEM = 600


def _clean(text: str) -> str:
    """One printable line: names from a file may hold newlines or terminal escapes."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
    return text if len(text) <= MAX_PROBLEM else text[: MAX_PROBLEM - 3] + "..."


class BadReference(FingerprintError):
    fix = "Give a Hub ID like org/name, org/name@revision, org/name/file.gguf, or a local file or folder."


class RepoNotFound(FingerprintError):
    fix = "Check the model ID on huggingface.co; for a private repository pass a token (--token or HF_TOKEN)."


class GatedRepo(FingerprintError):
    fix = "Accept the licence on the model's Hub page, then pass a token of that account (--token or HF_TOKEN)."


class BadToken(FingerprintError):
    fix = "Check the token (huggingface.co/settings/tokens) or run without one for public models."


class RevisionNotFound(FingerprintError):
    fix = "Check the branch, tag or commit sha after '@'."


class FileNotInRepo(FingerprintError):
    fix = "Check the file name; 'inspect' lists the weight files the repository has."


class NoWeights(FingerprintError):
    fix = "Point to a repository or folder with .safetensors, .gguf or PyTorch (.bin, .pt) weights."


class PickleRefused(FingerprintError):
    fix = (
        "A pickle can run code when it is loaded, so only torch.save's zip checkpoints are read, without unpickling, "
        "and in them only tensors, storages, dtypes and OrderedDicts; re-save the state dict with a current "
        "torch.save, or use .safetensors or .gguf weights of the same model."
    )


class UnsupportedFormat(FingerprintError):
    fix = "Use an unquantized (F32/F16/BF16/FP8) or GGUF checkpoint of the same model."


class Offline(FingerprintError):
    fix = "Check the network connection, or fingerprint a local copy."


class RateLimited(FingerprintError):
    fix = "Wait a few minutes and retry; passing a token (--token or HF_TOKEN) raises the Hub's limits."


class DeadlineExceeded(FingerprintError):
    fix = (
        "The server sent the bytes too slowly; retry later, or allow more time "
        "(--deadline SECONDS, or FINGERPRINT_DEADLINE in the environment)."
    )


class NetworkError(FingerprintError):
    fix = "Retry later; if it persists, fingerprint a local copy."


class CorruptFile(FingerprintError):
    fix = "The file is damaged or not what its name says: download it again or use another copy."


class UnknownArchitecture(FingerprintError):
    fix = (
        "Pass an explicit name mapping with --map ROLE=PATTERN (e.g. --map q='blocks.{layer}.attn.wq') "
        "or open an issue with the tensor names listed."
    )


class NoAttentionTensors(UnknownArchitecture):
    pass


class BadMapping(FingerprintError):
    fix = "Write each mapping as ROLE=PATTERN with {layer} where the layer number stands, e.g. q='blocks.{layer}.attn.wq'."


class InternalError(FingerprintError):
    fix = "This is a bug in the tool: please report it with the model reference."


class NonFiniteWeights(FingerprintError):
    fix = "The checkpoint holds NaN or Inf values; such statistics are meaningless, so the model is not fingerprinted."


class Cancelled(FingerprintError):
    fix = ""


def read_failure(exc: OSError, *, model: str, local: bool) -> FingerprintError:
    """An operating-system read failure as the typed error users see: a local file's, or the network's."""
    what = exc.strerror or type(exc).__name__
    if local:
        return CorruptFile(f"cannot read the file ({what})", "Check that the file exists and is readable.", model=model)
    return NetworkError(f"I/O failure ({what})", model=model)


class CatalogError(FingerprintError):
    fix = "Give a CSV with the columns family, publisher, repo_id, size_bucket (one Hub repository a row)."


class NotALibrary(FingerprintError):
    fix = (
        "Give a reference library: a folder or Hub dataset with the manifest.json that 'library add', 'library "
        "build' or 'library push' write, or build one with 'python -m fingerprint library build'."
    )
