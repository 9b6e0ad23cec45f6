"""Just enough H.264 bitstream handling to splice re-encoded GOPs in front of copied ones.

The copied packets keep their SPS/PPS (id 0, usually); the re-encoded opening GOPs are made with a
different ``sps-id`` and their parameter sets are added to the track's ``avcC`` record, which may
hold several (ISO/IEC 14496-15 5.3.3.1), so each slice finds its own set by id. Hand-written: no
library in the dependencies parses ``avcC`` or NAL headers, and only a few fields are needed.
"""

from __future__ import annotations

import dataclasses
import struct
from typing import Final

__all__ = [
    "AvcConfig",
    "annexb_nals",
    "length_prefixed",
    "nal_types",
    "parameter_set_id",
]

SPS: Final = 7
PPS: Final = 8
IDR: Final = 5


@dataclasses.dataclass(frozen=True)
class AvcConfig:
    """An ``AVCDecoderConfigurationRecord``: header bytes, NAL length size, parameter sets, and the
    High-profile extension left as it was."""

    head: bytes
    length_size: int
    sps: tuple[bytes, ...]
    pps: tuple[bytes, ...]
    trailer: bytes

    @classmethod
    def parse(cls, data: bytes) -> AvcConfig:
        """Parse ``avcC``; ``ValueError`` when it is not one (e.g. Annex B extradata)."""
        if len(data) < 7 or data[0] != 1:
            raise ValueError("not an avcC record")
        try:
            return cls._parse(data)
        except (struct.error, IndexError):
            raise ValueError("avcC truncated") from None

    @classmethod
    def _parse(cls, data: bytes) -> AvcConfig:
        length_size = (data[4] & 3) + 1
        pos = 6
        sps: list[bytes] = []
        for _ in range(data[5] & 0x1F):
            (size,) = struct.unpack_from(">H", data, pos)
            sps.append(data[pos + 2 : pos + 2 + size])
            pos += 2 + size
        if pos >= len(data):
            raise ValueError("avcC truncated")
        pps: list[bytes] = []
        count = data[pos]
        pos += 1
        for _ in range(count):
            (size,) = struct.unpack_from(">H", data, pos)
            pps.append(data[pos + 2 : pos + 2 + size])
            pos += 2 + size
        if pos > len(data) or any(not s for s in sps + pps):
            raise ValueError("avcC truncated")
        return cls(bytes(data[:5]), length_size, tuple(sps), tuple(pps), bytes(data[pos:]))

    def with_sets(self, sps: list[bytes], pps: list[bytes]) -> AvcConfig:
        return dataclasses.replace(self, sps=self.sps + tuple(sps), pps=self.pps + tuple(pps))

    def to_bytes(self) -> bytes:
        out = bytearray(self.head)
        out.append(0xE0 | len(self.sps))
        for s in self.sps:
            out += struct.pack(">H", len(s)) + s
        out.append(len(self.pps))
        for p in self.pps:
            out += struct.pack(">H", len(p)) + p
        return bytes(out + self.trailer)


def annexb_nals(data: bytes) -> list[bytes]:
    """NAL units of an Annex B byte stream (start codes removed)."""
    starts: list[int] = []
    i = 0
    while (j := data.find(b"\x00\x00\x01", i)) >= 0:
        starts.append(j + 3)
        i = j + 3
    nals = []
    for k, start in enumerate(starts):
        end = starts[k + 1] - 3 if k + 1 < len(starts) else len(data)
        nal = data[start:end]
        if k + 1 < len(starts):
            nal = nal.rstrip(b"\x00")  # the leading zero of the next 4-byte start code
        if nal:
            nals.append(nal)
    return nals


def length_prefixed(nals: list[bytes], length_size: int) -> bytes:
    return b"".join(len(n).to_bytes(length_size, "big") + n for n in nals)


def nal_types(packet: bytes, length_size: int) -> list[int]:
    """The NAL unit types in a length-prefixed (``avcC``-style) packet."""
    types = []
    pos = 0
    while pos + length_size <= len(packet):
        size = int.from_bytes(packet[pos : pos + length_size], "big")
        pos += length_size
        if size == 0 or pos + size > len(packet):
            break
        types.append(packet[pos] & 0x1F)
        pos += size
    return types


def _read_ue(data: bytes, bit: int) -> tuple[int, int]:
    zeros = 0
    while (data[bit // 8] >> (7 - bit % 8)) & 1 == 0:
        zeros += 1
        bit += 1
        if zeros > 31:
            raise ValueError("bad exp-Golomb code")
    bit += 1
    value = 0
    for _ in range(zeros):
        value = (value << 1) | ((data[bit // 8] >> (7 - bit % 8)) & 1)
        bit += 1
    return (1 << zeros) - 1 + value, bit


def parameter_set_id(nal: bytes) -> int:
    """``seq_parameter_set_id`` of an SPS or ``pic_parameter_set_id`` of a PPS NAL unit."""
    kind = nal[0] & 0x1F
    start_bit = 32 if kind == SPS else 8  # SPS: header, profile, constraints, level
    value, _ = _read_ue(nal, start_bit)
    return value
