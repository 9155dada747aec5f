"""Where bytes come from: local files and Hub files read with HTTP Range requests."""

from .base import ByteSource, ReadContext
from .local import LocalFile

__all__ = ["ByteSource", "LocalFile", "ReadContext"]
