"""WebP: libwebp scales while it decodes; Pillow's plugin only decodes at full size."""

import functools

import PIL
from PIL import Image

from thumbnailer.decoders.strips import StripReducer, reduce_in_bands, thumbnail_size

FORMATS = frozenset({"WEBP"})


def reduce(image: Image.Image, data: bytes, box: tuple[int, int]) -> Image.Image | None:
    """Thumbnail of a still WebP from libwebp's reduced-size decode, or None.

    Opaque and lossless images are decoded straight to the reduced size (libwebp averages the
    pixels each output pixel covers, alpha-weighted for lossless), then Lanczos-filtered to
    the final size. Lossy images with alpha are not: libwebp's scaler averages their colours
    without weighting by alpha, which fringes edges; they are decoded at full size into one
    buffer and reduced in premultiplied strips, exactly like the generic path.
    """
    if getattr(image, "is_animated", False):
        return None
    final_size = thumbnail_size(image.size, box)
    if final_size is None:
        return None
    reducer = StripReducer(image.mode, image.size, final_size)
    libwebp = _libwebp()
    if not reducer.reduces or libwebp is None or image.mode not in ("RGB", "RGBA"):
        return None
    features = libwebp.features(data)
    if features is None or features.has_animation or (features.width, features.height) != image.size:
        return None
    if image.mode == "RGBA" and features.format != _WEBP_LOSSLESS:
        thumbnail = reduce_in_bands(libwebp.decode(data, image.size, image.size, "RGBA"), reducer)
    else:
        scaled = libwebp.decode(data, image.size, reducer.reduced_size, image.mode)
        thumbnail = scaled.resize(final_size, Image.Resampling.LANCZOS)
    return thumbnail


_WEBP_LOSSLESS = 2  # WebPBitstreamFeatures.format
_WEBP_COLOURSPACES = {"RGB": 0, "RGBA": 1}  # WEBP_CSP_MODE: MODE_RGB, MODE_RGBA (not premultiplied)


@functools.cache
def _libwebp() -> "_LibWebP | None":
    """The libwebp Pillow is linked with (its wheel bundles it in pillow.libs/), or None."""
    import ctypes
    import ctypes.util
    from pathlib import Path

    bundled = sorted((Path(PIL.__file__).resolve().parent.parent / "pillow.libs").glob("libwebp-*.so*"))
    path = str(bundled[0]) if bundled else ctypes.util.find_library("webp")
    if not path:
        return None
    try:
        return _LibWebP(ctypes.CDLL(path))
    except (OSError, AttributeError):  # not loadable, missing symbols, or another ABI
        return None


class _LibWebP:
    """The few libwebp decoding calls needed, through ctypes (decode.h, ABI 0x0209)."""

    ABI_VERSION = 0x0209

    def __init__(self, library):
        import ctypes

        self._ctypes = ctypes
        c_int, c_void_p, c_size_t, c_uint32 = ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint32

        class Features(ctypes.Structure):
            _fields_ = [
                ("width", c_int),
                ("height", c_int),
                ("has_alpha", c_int),
                ("has_animation", c_int),
                ("format", c_int),
                ("pad", c_uint32 * 5),
            ]

        class RGBABuffer(ctypes.Structure):
            _fields_ = [("rgba", c_void_p), ("stride", c_int), ("size", c_size_t)]

        class YUVABuffer(ctypes.Structure):
            _fields_ = [
                *((name, c_void_p) for name in ("y", "u", "v", "a")),
                *((name, c_int) for name in ("y_stride", "u_stride", "v_stride", "a_stride")),
                *((name, c_size_t) for name in ("y_size", "u_size", "v_size", "a_size")),
            ]

        class Buffers(ctypes.Union):
            _fields_ = [("RGBA", RGBABuffer), ("YUVA", YUVABuffer)]

        class DecBuffer(ctypes.Structure):
            _fields_ = [
                ("colorspace", c_int),
                ("width", c_int),
                ("height", c_int),
                ("is_external_memory", c_int),
                ("u", Buffers),
                ("pad", c_uint32 * 4),
                ("private_memory", c_void_p),
            ]

        class Options(ctypes.Structure):
            _fields_ = [
                *(
                    (name, c_int)
                    for name in (
                        "bypass_filtering",
                        "no_fancy_upsampling",
                        "use_cropping",
                        "crop_left",
                        "crop_top",
                        "crop_width",
                        "crop_height",
                        "use_scaling",
                        "scaled_width",
                        "scaled_height",
                        "use_threads",
                        "dithering_strength",
                        "flip",
                        "alpha_dithering_strength",
                    )
                ),
                ("pad", c_uint32 * 5),
            ]

        class Config(ctypes.Structure):
            _fields_ = [("input", Features), ("output", DecBuffer), ("options", Options)]

        self._features_type, self._config_type = Features, Config
        self._init = library.WebPInitDecoderConfigInternal
        self._init.argtypes = [ctypes.POINTER(Config), c_int]
        self._get_features = library.WebPGetFeaturesInternal
        self._get_features.argtypes = [ctypes.c_char_p, c_size_t, ctypes.POINTER(Features), c_int]
        self._decode = library.WebPDecode
        self._decode.argtypes = [ctypes.c_char_p, c_size_t, ctypes.POINTER(Config)]
        if not self._init(ctypes.byref(Config()), self.ABI_VERSION):
            raise OSError("libwebp has another decoder ABI")

    def features(self, data: bytes):
        """WebPBitstreamFeatures of `data`, or None if libwebp cannot parse its header."""
        features = self._features_type()
        status = self._get_features(data, len(data), self._ctypes.byref(features), self.ABI_VERSION)
        return features if status == 0 else None

    def decode(self, data: bytes, size: tuple[int, int], out_size: tuple[int, int], mode: str) -> Image.Image:
        """Decode `data` (of `size`) scaled to `out_size`, into an image of `mode` (RGB or RGBA)."""
        ctypes = self._ctypes
        config = self._config_type()
        if not self._init(ctypes.byref(config), self.ABI_VERSION):
            raise OSError("libwebp refused its decoder configuration")
        width, height = out_size
        stride = width * len(mode)
        pixels = bytearray(stride * height)
        target = (ctypes.c_ubyte * len(pixels)).from_buffer(pixels)
        output = config.output
        output.colorspace = _WEBP_COLOURSPACES[mode]
        output.is_external_memory = 1
        output.u.RGBA.rgba, output.u.RGBA.stride, output.u.RGBA.size = (
            ctypes.addressof(target),
            stride,
            len(pixels),
        )
        if out_size != size:
            config.options.use_scaling = 1
            config.options.scaled_width, config.options.scaled_height = width, height
        status = self._decode(data, len(data), ctypes.byref(config))
        del target  # releases the export of `pixels`
        if status != 0:
            raise OSError(f"libwebp could not decode the image (VP8StatusCode {status})")
        if mode == "RGBA":  # shares `pixels`, no copy
            return Image.frombuffer("RGBA", out_size, pixels, "raw", "RGBA", 0, 1)
        return Image.frombytes(mode, out_size, bytes(pixels))
