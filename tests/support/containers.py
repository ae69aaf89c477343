"""What an encoded thumbnail holds besides pixels, read from the file's own structure.

Each function walks one container format (not Pillow's `info`, which shows only what Pillow
chose to parse) and returns the names of its parts in order, so a test can say which are allowed.
"""

import struct


def jpeg_segments(data: bytes) -> list[str]:
    """Markers up to the first scan, as 'APP0:JFIF', 'APP1:Exif', 'COM', 'DQT', 'SOF0', ..."""
    names = []
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        (length,) = struct.unpack_from(">H", data, pos + 2)
        body = data[pos + 4 : pos + 2 + length]
        if 0xE0 <= marker <= 0xEF:
            names.append(f"APP{marker - 0xE0}:{body.split(b'\0', 1)[0][:16].decode('latin-1')}")
        else:
            names.append(
                {0xFE: "COM", 0xDB: "DQT", 0xC4: "DHT", 0xDD: "DRI", 0xDA: "SOS"}.get(
                    marker, f"SOF{marker - 0xC0}"
                )
            )
        if marker == 0xDA:
            break
        pos += 2 + length
    return names


def png_chunks(data: bytes) -> list[str]:
    """Chunk types in file order."""
    names = []
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        names.append(kind.decode("latin-1"))
        pos += 12 + length
    return names


def gif_blocks(data: bytes) -> list[str]:
    """'image' for each image descriptor and 'extension:XX' (hex label) for each extension."""
    names = []
    flags = data[10]
    pos = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
    while pos < len(data):
        introducer = data[pos]
        if introducer == 0x3B:  # trailer
            break
        if introducer == 0x21:
            names.append(f"extension:{data[pos + 1]:02X}")
            pos += 2
        elif introducer == 0x2C:
            names.append("image")
            local = data[pos + 9]
            pos += 10 + (3 * 2 ** ((local & 7) + 1) if local & 0x80 else 0) + 1  # + LZW code size
        else:
            raise ValueError(f"unexpected GIF block introducer 0x{introducer:02X} at {pos}")
        while data[pos]:  # sub-blocks up to the terminator
            pos += data[pos] + 1
        pos += 1
    return names


def webp_chunks(data: bytes) -> list[str]:
    """RIFF chunk FourCCs after 'WEBP', with VP8X's flags spelled out ('VP8X:ICC,EXIF,XMP,ANIM')."""
    names = []
    pos = 12
    while pos + 8 <= len(data):
        kind, length = struct.unpack_from("<4sI", data, pos)
        name = kind.decode("latin-1")
        if name == "VP8X":
            flags = data[pos + 8]
            set_flags = [
                label
                for bit, label in ((0x20, "ICC"), (0x08, "EXIF"), (0x04, "XMP"), (0x02, "ANIM"))
                if flags & bit
            ]
            name += ":" + ",".join(set_flags)
        names.append(name)
        pos += 8 + length + (length & 1)
    return names
