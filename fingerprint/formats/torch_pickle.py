"""A PyTorch checkpoint's ``data.pkl`` turned into plain tensor descriptions without running anything.

The pickle is first scanned opcode by opcode (``pickletools.genops`` only decodes, it never builds or calls):
opcodes that create arbitrary objects (INST, OBJ, NEWOBJ, EXT*, out-of-band buffers) are refused, as are more
opcodes or larger memo indices than any state dict needs (a pickle bomb). Then a ``pickle.Unpickler`` whose
``find_class`` knows only the names torch's ``weights_only`` loader allows for a state dict, each resolved to a
stand-in defined here (never to torch, which need not be installed), and whose ``persistent_load`` turns torch's
storage references into ``StorageRef``s. REDUCE can therefore only call those stand-ins, which check their
arguments and build ``TensorDesc``s; BUILD only reaches the OrderedDict stand-in, which ignores the state dict's
``_metadata``. Anything else names the global and stops: nothing is loaded.
"""

from __future__ import annotations

import io
import pickle
import pickletools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import CorruptFile, PickleRefused

MAX_PICKLE_BYTES = 64 << 20  # ~500,000 tensors' descriptions; a real state dict's data.pkl is far smaller
MAX_OPCODES = 8_000_000
MAX_MEMO = 4_000_000
MAX_DIMS = 16
MAX_TENSORS = 1_000_000

# torch storage classes -> safetensors dtype names (what formats.dtypes decodes); the itemsize of each
STORAGE_DTYPES: dict[str, str] = {
    "DoubleStorage": "F64",
    "FloatStorage": "F32",
    "HalfStorage": "F16",
    "BFloat16Storage": "BF16",
    "LongStorage": "I64",
    "IntStorage": "I32",
    "ShortStorage": "I16",
    "CharStorage": "I8",
    "ByteStorage": "U8",
    "BoolStorage": "BOOL",
    "ComplexFloatStorage": "C64",
    "ComplexDoubleStorage": "C128",
}
TORCH_DTYPES: dict[str, str] = {
    "float64": "F64",
    "double": "F64",
    "float32": "F32",
    "float": "F32",
    "float16": "F16",
    "half": "F16",
    "bfloat16": "BF16",
    "float8_e4m3fn": "F8_E4M3",
    "float8_e5m2": "F8_E5M2",
    "float8_e8m0fnu": "F8_E8M0",
    "int64": "I64",
    "long": "I64",
    "int32": "I32",
    "int": "I32",
    "int16": "I16",
    "short": "I16",
    "int8": "I8",
    "uint8": "U8",
    "uint16": "U16",
    "uint32": "U32",
    "uint64": "U64",
    "bool": "BOOL",
    "complex64": "C64",
    "complex128": "C128",
}
ITEMSIZE: dict[str, int] = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "F8_E8M0": 1,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "U16": 2,
    "U32": 4,
    "U64": 8,
    "BOOL": 1,
    "C64": 8,
    "C128": 16,
}

_REFUSED_OPCODES = {
    "INST": "INST (builds an object of any class)",
    "OBJ": "OBJ (builds an object of any class)",
    "NEWOBJ": "NEWOBJ (builds an object of any class)",
    "NEWOBJ_EX": "NEWOBJ_EX (builds an object of any class)",
    "EXT1": "EXT1 (the copyreg extension registry)",
    "EXT2": "EXT2 (the copyreg extension registry)",
    "EXT4": "EXT4 (the copyreg extension registry)",
    "NEXT_BUFFER": "NEXT_BUFFER (out-of-band data)",
    "READONLY_BUFFER": "READONLY_BUFFER (out-of-band data)",
}
_MEMO_OPCODES = {"PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET"}


class NoBuild:
    """BUILD (set an object's state) reaches only the OrderedDict stand-in: every other stand-in refuses it."""

    def __setstate__(self, state: object) -> None:
        raise PickleRefused(f"data.pkl sets the state of a {type(self).__name__}, which torch never writes: refused")


@dataclass(frozen=True)
class StorageType(NoBuild):
    """Stand-in for a torch storage class (torch.FloatStorage, ..., torch.storage.UntypedStorage)."""

    name: str
    dtype: str  # safetensors dtype name; "U8" for an untyped storage (bytes)


@dataclass(frozen=True)
class DType(NoBuild):
    """Stand-in for a torch dtype (torch.float16, ...)."""

    name: str
    dtype: str


@dataclass(frozen=True)
class StorageRef(NoBuild):
    """A storage in the archive: the entry ``data/<key>`` holding ``numel`` elements of ``dtype``."""

    key: str
    dtype: str
    numel: int


@dataclass(frozen=True)
class TensorDesc(NoBuild):
    """A tensor as ``_rebuild_tensor_v2`` would build it: a view of ``storage`` (offsets in elements)."""

    storage: StorageRef
    dtype: str
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    @property
    def contiguous(self) -> bool:
        """Row-major with no gaps (dims of size 1 may have any stride, as in torch)."""
        expected = 1
        for dim, step in zip(reversed(self.shape), reversed(self.stride)):
            if dim != 1 and step != expected:
                return False
            expected *= dim
        return True


class StateDict(dict[Any, Any]):
    """Stand-in for collections.OrderedDict (a dict keeps its order)."""

    def __setstate__(self, state: object) -> None:
        # torch's state_dict() carries a ``_metadata`` attribute (module versions): not needed, not kept
        if not isinstance(state, dict):
            raise CorruptFile("an OrderedDict in data.pkl has a state that is not a dict")


def _ordered_dict(*args: object) -> StateDict:
    if args:
        raise PickleRefused("data.pkl builds an OrderedDict from arguments, which torch never writes")
    return StateDict()


def _ints(value: object, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple) or len(value) > MAX_DIMS:
        raise CorruptFile(f"a tensor in data.pkl has a {what} that is not a tuple of at most {MAX_DIMS} ints")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
        raise CorruptFile(f"a tensor in data.pkl has a {what} that is not a tuple of non-negative ints")
    return value


def _tensor(storage: object, offset: object, size: object, stride: object, dtype: str | None = None) -> TensorDesc:
    if not isinstance(storage, StorageRef):
        raise CorruptFile("a tensor in data.pkl is not built on a storage of the archive")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise CorruptFile("a tensor in data.pkl has an invalid storage offset")
    shape, steps = _ints(size, "size"), _ints(stride, "stride")
    if len(shape) != len(steps):
        raise CorruptFile("a tensor in data.pkl has a size and a stride of different lengths")
    return TensorDesc(storage, dtype or storage.dtype, offset, shape, steps)


def _rebuild_tensor(storage: object, offset: object, size: object, stride: object) -> TensorDesc:
    return _tensor(storage, offset, size, stride)


def _rebuild_tensor_v2(
    storage: object, offset: object, size: object, stride: object, *rest: object
) -> TensorDesc:  # rest: requires_grad, backward_hooks, metadata: not needed
    return _tensor(storage, offset, size, stride)


def _rebuild_tensor_v3(
    storage: object, offset: object, size: object, stride: object, requires_grad: object, hooks: object, dtype: object
) -> TensorDesc:
    """An untyped storage viewed as ``dtype`` (torch writes this for dtypes without a storage class, e.g. FP8)."""
    if not isinstance(dtype, DType):
        raise CorruptFile("a tensor in data.pkl has a dtype that is not a torch dtype")
    if isinstance(storage, StorageRef):
        bytes_ = storage.numel * ITEMSIZE[storage.dtype]
        storage = StorageRef(storage.key, dtype.dtype, bytes_ // ITEMSIZE[dtype.dtype])
    return _tensor(storage, offset, size, stride, dtype.dtype)


def _rebuild_parameter(data: object, *rest: object) -> object:  # nn.Parameter(data): the tensor itself
    if not isinstance(data, TensorDesc):
        raise CorruptFile("a parameter in data.pkl does not hold a tensor")
    return data


def _size(dims: object = ()) -> tuple[int, ...]:
    return _ints(dims, "torch.Size")


class Rebuild(NoBuild):
    """One of the allowlisted functions REDUCE may call (wrapped: BUILD cannot reach the function itself)."""

    def __init__(self, name: str, fn: Callable[..., object]) -> None:
        self.name = name
        self.fn = fn

    def __call__(self, *args: object) -> object:
        try:
            return self.fn(*args)
        except TypeError:
            raise CorruptFile(f"data.pkl calls {self.name} with {len(args)} arguments, not as torch does") from None


def _allowed() -> dict[tuple[str, str], object]:
    functions: dict[tuple[str, str], Callable[..., object]] = {
        ("collections", "OrderedDict"): _ordered_dict,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch", "Size"): _size,
    }
    names: dict[tuple[str, str], object] = {key: Rebuild(".".join(key), fn) for key, fn in functions.items()}
    names |= {
        ("torch.storage", "UntypedStorage"): StorageType("UntypedStorage", "U8"),
        ("torch", "UntypedStorage"): StorageType("UntypedStorage", "U8"),
    }
    for cls, dtype in STORAGE_DTYPES.items():
        names[("torch", cls)] = StorageType(cls, dtype)
    for name, dtype in TORCH_DTYPES.items():
        names[("torch", name)] = DType(name, dtype)
    return names


ALLOWED: dict[tuple[str, str], object] = _allowed()


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only ``ALLOWED`` names, to stand-ins; torch's storage references become ``StorageRef``s."""

    def __init__(self, data: bytes, fname: str) -> None:
        super().__init__(io.BytesIO(data))
        self.fname = fname

    def find_class(self, module: str, name: str) -> Any:
        found = ALLOWED.get((module, name))
        if found is None:
            raise PickleRefused(
                f"{self.fname}: data.pkl asks for {_short(module)}.{_short(name)}, which is not a tensor, storage, "
                "dtype or OrderedDict: refused, nothing loaded"
            )
        return found

    def persistent_load(self, pid: Any) -> StorageRef:
        # torch writes ('storage', storage class, key, location, numel)
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise CorruptFile(f"{self.fname}: data.pkl refers to something that is not a storage")
        _, kind, key, _, numel = pid
        if not isinstance(kind, StorageType) or not isinstance(key, str) or not isinstance(numel, int):
            raise CorruptFile(f"{self.fname}: data.pkl has a malformed storage reference")
        if isinstance(numel, bool) or numel < 0 or len(key) > 64:
            raise CorruptFile(f"{self.fname}: data.pkl has a malformed storage reference")
        return StorageRef(key, kind.dtype, numel)


def scan_opcodes(fname: str, data: bytes) -> None:
    """Refuse, before anything is built, what no state dict needs: object-building opcodes, out-of-band
    buffers, too many opcodes, memo indices beyond any real pickle (the C unpickler sizes its memo by them)."""
    count = 0
    try:
        for op, arg, _ in pickletools.genops(data):
            count += 1
            if count > MAX_OPCODES:
                raise PickleRefused(f"{fname}: data.pkl holds more than {MAX_OPCODES:,} opcodes (a pickle bomb?)")
            if op.name in _REFUSED_OPCODES:
                raise PickleRefused(f"{fname}: data.pkl uses the opcode {_REFUSED_OPCODES[op.name]}: refused")
            if op.name in _MEMO_OPCODES and isinstance(arg, int) and not 0 <= arg < MAX_MEMO:
                raise PickleRefused(f"{fname}: data.pkl uses memo slot {arg:,}, beyond any real checkpoint")
    except ValueError as exc:
        raise CorruptFile(f"{fname}: data.pkl is not a valid pickle ({_short(str(exc))})") from None


def check_size(fname: str, nbytes: int) -> None:
    """Refuse a data.pkl larger than any state dict's, before it is read."""
    if nbytes > MAX_PICKLE_BYTES:
        raise PickleRefused(f"{fname}: data.pkl is {nbytes:,} bytes, larger than any state dict's")


def load_tensors(fname: str, data: bytes) -> dict[str, TensorDesc]:
    """The tensors of a state dict pickle, by name (nested dicts' keys joined with '.'; other values ignored)."""
    check_size(fname, len(data))
    scan_opcodes(fname, data)
    try:
        root = RestrictedUnpickler(data, fname).load()
    except (PickleRefused, CorruptFile):
        raise
    except Exception as exc:  # malformed pickles end in pickle, type, index or value errors: all the same to us
        raise CorruptFile(f"{fname}: data.pkl could not be read ({type(exc).__name__}: {_short(str(exc))})") from None
    if isinstance(root, dict) and isinstance(root.get("state_dict"), dict):
        root = root["state_dict"]  # PyTorch Lightning and many training scripts wrap the weights
    return flatten(fname, root)


def flatten(fname: str, root: object) -> dict[str, TensorDesc]:
    """Tensors under dict keys, nested dicts visited once each (a pickle can share a dict many times)."""
    out: dict[str, TensorDesc] = {}
    seen: set[int] = set()
    stack: list[tuple[str, object]] = [("", root)]
    while stack:
        prefix, node = stack.pop()
        if isinstance(node, TensorDesc):
            if prefix:
                out.setdefault(prefix, node)
                if len(out) > MAX_TENSORS:
                    raise PickleRefused(f"{fname}: data.pkl names more than {MAX_TENSORS:,} tensors")
            continue
        if not isinstance(node, dict) or id(node) in seen:
            continue
        seen.add(id(node))
        for key, value in reversed(list(node.items())):
            if isinstance(key, (str, int)) and not isinstance(key, bool):
                stack.append((f"{prefix}.{key}" if prefix else str(key), value))
    return out


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
