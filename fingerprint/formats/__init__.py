"""Checkpoint file formats: headers parsed from a ByteSource, tensor bytes decoded to floats."""

from .tensor import TensorInfo

__all__ = ["TensorInfo"]
