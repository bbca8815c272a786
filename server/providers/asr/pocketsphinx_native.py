"""pocketsphinx's decoding call without the GIL.

The ``pocketsphinx`` binding (Cython) holds the GIL for the whole of ``Decoder.process_raw``,
the recogniser's one expensive call (about 0.8 ms per 60 ms frame in grammar mode), so every
session's decoding runs on one core and stalls the event loop meanwhile. The binding's extension
module also exports the C API, so :class:`NativeDecoding` calls ``ps_process_raw`` through
``ctypes``, which releases the GIL for the call: decoders of different sessions then decode at
the same time on different cores.

It needs the C decoder pointer of a ``Decoder`` object, which the binding does not expose. The
Cython class is ``cdef class Decoder: cdef ps_decoder_t *ps; cdef public Config config``, so an
object is the Python object header (16 bytes), ``ps``, then ``config``. :meth:`pointer` reads
``ps`` only after checking that layout on the object itself: the instance size is exactly that,
and the word after ``ps`` is the address of the object's own ``config`` attribute. When either
check fails (another build of pocketsphinx), or the module does not export the function, it
answers None and the stream decodes through the binding as before (GIL held, same results).
"""

from __future__ import annotations

import ctypes
import logging
from typing import Any, Final

logger = logging.getLogger(__name__)

HEADER_BYTES: Final = 2 * ctypes.sizeof(ctypes.c_void_p)
"""A Python object's header: reference count and type pointer."""
POINTER_BYTES: Final = ctypes.sizeof(ctypes.c_void_p)


class NativeDecoding:
    """``ps_process_raw`` through ctypes (GIL released); see the module docstring."""

    def __init__(self, function: Any) -> None:
        self._process_raw = function

    @classmethod
    def load(cls, binding: Any) -> NativeDecoding | None:
        """From the binding's extension module (``pocketsphinx._pocketsphinx``); None when it
        does not export the C API."""
        try:
            library = ctypes.CDLL(binding.__file__)
            function = library.ps_process_raw
        except (AttributeError, OSError) as exc:
            logger.info("pocketsphinx decodes with the GIL held (%s)", exc)
            return None
        function.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_int,
            ctypes.c_int,
        ]
        function.restype = ctypes.c_int
        return cls(function)

    @staticmethod
    def pointer(decoder: Any) -> int | None:
        """The C decoder of a binding ``Decoder``, or None unless its layout is the known one."""
        if type(decoder).__basicsize__ != HEADER_BYTES + 2 * POINTER_BYTES:
            return None
        config = getattr(decoder, "config", None)
        if config is None:
            return None
        address = id(decoder)
        after = ctypes.c_void_p.from_address(address + HEADER_BYTES + POINTER_BYTES).value
        if after != id(config):
            return None
        return ctypes.c_void_p.from_address(address + HEADER_BYTES).value

    def process(self, pointer: int, data: bytes) -> None:
        """Decode 16-bit mono PCM ``data`` on the C decoder ``pointer`` (one thread at a time
        per decoder, as for the binding)."""
        if self._process_raw(pointer, data, len(data) // 2, 0, 0) < 0:
            raise RuntimeError(f"pocketsphinx failed to process {len(data) // 2} samples")
