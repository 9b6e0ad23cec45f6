"""Markdown: a top-level ``AIGC`` key in the YAML front matter, holding the seven members.

Front matter is a first line ``---``, YAML, and a line ``---`` (or ``...``), as Jekyll, Hugo, Pandoc
and the static-site generators read it. The label is written as a block mapping of the members in the
label's order, every value a double-quoted string::

    ---
    title: A post
    AIGC:
      Label: "1"
      ContentProducer: "001191110102MACQD9K64010000"
      ...
    ---

``read`` returns the compact JSON of that mapping, or the text itself when the ``AIGC`` value is a
string holding the JSON (a form seen in the wild).

Why hand-written: a YAML library re-dumps the whole document (losing comments, quoting and key order
of everyone else's keys), so the change is a textual edit of the ``AIGC`` key's block only: every
other line, comment and the body stay byte-identical. The edited front matter is then parsed again
with ``yaml.safe_load`` (never a loader that builds objects), and the edit is refused unless every
other key parses to what it did before and ``AIGC`` to the label. A file without front matter gets one
at the top; a UTF-8 byte order mark stays first. Front matter longer than 1 MiB is not looked for
(what starts with ``---`` and does not close within that is body: a thematic break).

The payload is the body after the front matter (after the byte order mark when there is none).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from typing import Any, BinaryIO, Final

import yaml

from synthguard._io import copy_range, iter_range
from synthguard.errors import CorruptMediaError
from synthguard.labels.base import MetadataLabeler
from synthguard.media import Container

__all__ = ["MarkdownLabeler"]

KEY: Final = "AIGC"
#: Front matter longer than this is not front matter (and is never parsed).
MAX_FRONT_MATTER: Final = 1024 * 1024
_BOM: Final = b"\xef\xbb\xbf"
_OPEN: Final = re.compile(rb"---[ \t]*(\r?\n)")
_CLOSE: Final = re.compile(rb"^(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.MULTILINE)
_KEY_LINE: Final = re.compile(r"""(?:AIGC|"AIGC"|'AIGC')[ \t]*:(?:[ \t]|\r?\n|$)""")
_PLAIN_KEY: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SCALARS: Final = (str, int, float, bool, type(None))


@dataclasses.dataclass(frozen=True, slots=True)
class _Layout:
    bom: bytes
    #: Offsets of the YAML text (between the fence lines); ``None`` when there is no front matter.
    yaml_start: int | None
    yaml_end: int | None
    #: Where the body starts.
    body: int
    newline: str


def _scan(src: BinaryIO) -> tuple[_Layout, str]:
    """The file's layout, and its front matter's YAML text ("" when there is none)."""
    src.seek(0)
    head = src.read(MAX_FRONT_MATTER + 16)
    bom = _BOM if head.startswith(_BOM) else b""
    start = len(bom)
    opening = _OPEN.match(head, start)
    if opening is not None:
        closing = _CLOSE.search(head, opening.end())
        if closing is not None and closing.start() <= MAX_FRONT_MATTER:
            try:
                text = head[opening.end() : closing.start()].decode("utf-8")
            except UnicodeDecodeError as exc:
                raise CorruptMediaError("front matter is not UTF-8", offset=start) from exc
            newline = opening.group(1).decode()
            layout = _Layout(bom, opening.end(), closing.start(), closing.end(), newline)
            return layout, text
    first_line = head[start:].split(b"\n", 1)[0]
    newline = "\r\n" if first_line.endswith(b"\r") else "\n"
    return _Layout(bom, None, None, start, newline), ""


def _parse(text: str) -> dict[Any, Any] | None:
    """The front matter as a mapping; ``None`` when it is YAML but not a mapping."""
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError) as exc:
        raise CorruptMediaError(f"front matter is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    return data if isinstance(data, dict) else None


def _label_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and all(isinstance(v, _SCALARS) for v in value.values()):
        return json.dumps({str(k): v for k, v in value.items()}, separators=(",", ":"), ensure_ascii=False)
    raise CorruptMediaError(f"front matter key {KEY} holds a {type(value).__name__}, not a label")


def _block(label_json: str, newline: str) -> tuple[str, Any]:
    """The YAML lines of the label, and the value they parse to."""
    try:
        value = json.loads(label_json)
    except json.JSONDecodeError:
        value = None
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        lines = [f"{KEY}:"]
        for key, member in value.items():
            name = key if _PLAIN_KEY.fullmatch(key) else json.dumps(key)
            lines.append(f"  {name}: {json.dumps(member)}")
        return newline.join(lines) + newline, value
    # not a flat object: keep the text itself, as a string
    return f"{KEY}: {json.dumps(label_json)}{newline}", label_json


def _label_blocks(lines: list[str]) -> list[tuple[int, int]]:
    """(first line, end line) of each top-level ``AIGC`` key with its indented value."""
    blocks = []
    index = 0
    while index < len(lines):
        if not _KEY_LINE.match(lines[index]):
            index += 1
            continue
        end = index + 1
        while end < len(lines):
            line = lines[end]
            if line[:1] in (" ", "\t") or not line.strip() or re.match(r"-(?:[ \t]|\r?\n|$)", line):
                end += 1
            else:
                break
        while end > index + 1 and not lines[end - 1].strip():
            end -= 1  # blank lines after the block belong to what follows
        blocks.append((index, end))
        index = end
    return blocks


def _edit(text: str, label_json: str, newline: str) -> str:
    """``text`` (the YAML) with one ``AIGC`` key holding the label; refuses an edit that would change
    any other key."""
    before = _parse(text)
    if before is None:
        raise CorruptMediaError("front matter is not a mapping: no key can be added to it")
    block, value = _block(label_json, newline)
    lines = text.splitlines(keepends=True)
    blocks = _label_blocks(lines)
    if KEY in before and not blocks:
        raise CorruptMediaError(f"front matter key {KEY} is written in a form this editor does not edit")
    if blocks:
        # the first block is replaced where it stands; later ones (duplicate keys) are folded into it
        position = blocks[0][0]
        kept = [line for i, line in enumerate(lines) if not any(s <= i < e for s, e in blocks)]
        new_text = "".join([*kept[:position], block, *kept[position:]])
    else:
        if text and not text.endswith(("\n", "\r")):
            text += newline
        new_text = text + block
    after = _parse(new_text)
    if (
        after is None
        or after.get(KEY) != value
        or {k: v for k, v in after.items() if k != KEY} != {k: v for k, v in before.items() if k != KEY}
    ):
        raise CorruptMediaError(
            f"front matter key {KEY} cannot be replaced without changing other keys; edit it by hand"
        )
    return new_text


class MarkdownLabeler(MetadataLabeler):
    name = "markdown-front-matter"
    containers = frozenset({Container.MARKDOWN})
    carrier = "YAML front matter key AIGC"

    def read(self, src: BinaryIO) -> str | None:
        layout, text = _scan(src)
        if layout.yaml_start is None:
            return None
        data = _parse(text)
        if data is None or KEY not in data:
            return None
        return _label_text(data[KEY])

    def write(self, src: BinaryIO, dst: BinaryIO, label_json: str) -> None:
        layout, text = _scan(src)
        if layout.yaml_start is None or layout.yaml_end is None:
            new_text = _edit("", label_json, layout.newline)
            dst.write(layout.bom + f"---{layout.newline}{new_text}---{layout.newline}".encode())
        else:
            new_text = _edit(text, label_json, layout.newline)
            copy_range(src, dst, 0, layout.yaml_start)
            dst.write(new_text.encode("utf-8"))
            copy_range(src, dst, layout.yaml_end, layout.body - layout.yaml_end)
        copy_range(src, dst, layout.body)

    def payload(self, src: BinaryIO) -> Iterator[bytes]:
        layout, _ = _scan(src)
        yield from iter_range(src, layout.body)
