"""libspng, which undoes PNG row filters with SIMD code (SSE2, NEON), called through ctypes.

pyspng's wheel links libspng 0.7 into its extension module, which exports libspng's C API. The
module is loaded as a plain shared library, never imported: pyspng's Python side needs numpy,
libspng does not. Loaded on the first PNG that takes the strip path, then kept.
"""

import functools

from PIL import Image

# spng.h (0.7): context flag, CRC action, output format.
_IGNORE_ADLER32 = 1
_CRC_USE = 2
_FMT_RGBA8 = 1
# The image modes decoded, and the mode of the result: RGB comes out padded to 4 bytes, the
# layout Pillow keeps RGB in, so Pillow shares the buffer without unpacking it. libspng's SIMD
# filters are for 3 and 4 bytes per pixel; greyscale would gain nothing over Pillow's.
MODES = {"RGB": "RGBX", "RGBA": "RGBA"}
_PIXEL_BYTES = 4


@functools.cache
def load() -> "LibSpng | None":
    """libspng from the installed pyspng wheel, or None if it is missing or not libspng 0.7."""
    import ctypes
    import importlib.machinery
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("pyspng")  # finds the package without importing it
    folders = spec.submodule_search_locations if spec else None
    for folder in folders or ():
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = Path(folder, f"_pyspng_c{suffix}")
            if path.is_file():
                try:
                    return LibSpng(ctypes.CDLL(str(path)))
                except (OSError, AttributeError):  # not loadable, missing symbols, another version
                    return None
    return None


class LibSpng:
    """The few libspng calls needed to decode a PNG held in memory."""

    def __init__(self, library):
        import ctypes

        self._ctypes = ctypes
        library.spng_version_string.restype = ctypes.c_char_p
        if not library.spng_version_string().startswith(b"0.7."):
            raise OSError(f"libspng {library.spng_version_string()!r} is not 0.7")
        c_int, c_void_p, c_size_t = ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t
        self._new = library.spng_ctx_new
        self._new.argtypes, self._new.restype = [c_int], c_void_p
        self._free = library.spng_ctx_free
        self._free.argtypes, self._free.restype = [c_void_p], None
        self._set_crc_action = library.spng_set_crc_action
        self._set_crc_action.argtypes = [c_void_p, c_int, c_int]
        self._set_buffer = library.spng_set_png_buffer
        self._set_buffer.argtypes = [c_void_p, ctypes.c_char_p, c_size_t]
        self._decode = library.spng_decode_image
        self._decode.argtypes = [c_void_p, c_void_p, c_size_t, c_int, c_int]
        self._strerror = library.spng_strerror
        self._strerror.argtypes, self._strerror.restype = [c_int], ctypes.c_char_p

    def decode(self, png: bytes, mode: str, size: tuple[int, int]) -> Image.Image:
        """The pixels of `png` (8-bit, non-interlaced, of `size`, `mode` in MODES), as MODES[mode].

        CRCs and the zlib checksum are not checked, as Pillow's decoder does not check them.
        """
        ctypes = self._ctypes
        output_mode = MODES[mode]
        pixels = bytearray(size[0] * size[1] * _PIXEL_BYTES)
        context = self._new(_IGNORE_ADLER32)
        if not context:
            raise MemoryError("libspng could not allocate a decoder")
        try:
            self._check(self._set_crc_action(context, _CRC_USE, _CRC_USE))
            self._check(self._set_buffer(context, png, len(png)))
            target = (ctypes.c_char * len(pixels)).from_buffer(pixels)
            try:
                self._check(self._decode(context, target, len(pixels), _FMT_RGBA8, 0))
            finally:
                del target  # releases the export of `pixels`
        finally:
            self._free(context)
        return Image.frombuffer(output_mode, size, pixels, "raw", output_mode, 0, 1)  # shares `pixels`

    def _check(self, status: int) -> None:
        if status:
            raise OSError(f"libspng: {self._strerror(status).decode(errors='replace')} ({status})")
