"""Visible labels in text (GB 45438 5.1): a prompt at the start, the end, or a fitting middle point.

:func:`label_text` places the label in plain text, Markdown or HTML without breaking the markup:

* Markdown: the label is a paragraph of its own, put only at a block boundary that is outside
  front matter, fenced and indented code, raw HTML blocks (``<pre>``, ``<script>``, ``<style>``,
  comments), lists and block quotes; tables and headings end at blank lines, so they stay whole.
  The scan is a small line-based block scanner (CommonMark's block structure, not its inline rules)
  because no stdlib Markdown parser exists and offsets into the source are needed.
* HTML: the stdlib ``html.parser`` tracks open elements and source offsets; the label is a
  ``<p class="aigc-label">`` element with escaped text, put after ``<body>``, before ``</body>``,
  or between block children of ``body``/``main``/``article``/``section``/``div``, never inside
  ``<pre>``, ``<code>``, ``<script>``, ``<style>``, ``<template>``, ``<textarea>``, lists or tables.

:func:`label_sse_stream` labels a chat completion delivered as server-sent events (OpenAI style
``data: {json}`` events ending in ``data: [DONE]``): it adds a content chunk carrying the label after
the first chunk of each choice and/or before the chunk that finishes it. :func:`interface_snippet`
returns the embeddable HTML/CSS snippet or ``<aigc-label>`` web component for chat interfaces.
"""

from __future__ import annotations

import codecs
import copy
import enum
import html
import json
import os
import re
from collections.abc import Iterable, Iterator
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from typing import Any, Final

from synthguard._io import atomic_output
from synthguard.errors import CorruptMediaError, MediaLimitError, UsageError
from synthguard.visible.result import VisibleResult
from synthguard.visible.wording import TEXT_PLACEMENTS, wording_from_settings

__all__ = [
    "TextFormat",
    "interface_snippet",
    "label_chat_stream",
    "label_sse_stream",
    "label_text",
    "label_text_file",
    "text_format_for",
]

#: Largest text file labelled (the whole text is held in memory).
MAX_TEXT_BYTES: Final = 256 * 1024 * 1024


class TextFormat(enum.Enum):
    """How a text is marked up."""

    PLAIN = "plain"
    MARKDOWN = "markdown"
    HTML = "html"


def decorate(wording: str) -> str:
    """The label as shown in text: the wording in lenticular brackets, e.g. ``【人工智能生成】``."""
    return f"【{wording}】"


# --- plain text and Markdown -------------------------------------------------------------------

_FENCE: Final = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_LIST_ITEM: Final = re.compile(r"^ {0,3}(?:[-*+]|\d{1,9}[.)])(?:[ \t]|$)")
_RAW_HTML_OPEN: Final = re.compile(r"^ {0,3}<(pre|script|style|textarea)(?:\s|>|$)", re.I)
_FRONT_MATTER: Final = ("---", "+++")
_MD_SPECIAL: Final = re.compile(r"([\\`*_\[\]<>#|!~])")


def _lines(text: str) -> list[tuple[int, str]]:
    """(offset, line without its end) for each line."""
    result: list[tuple[int, str]] = []
    offset = 0
    for raw in text.splitlines(keepends=True):
        result.append((offset, raw.rstrip("\r\n")))
        offset += len(raw)
    return result


def _markdown_boundaries(text: str, markdown: bool) -> tuple[list[int], int, int]:
    """Safe insertion offsets (starts of blank lines between blocks), the offset where content
    starts (after front matter) and the last safe end offset (before an unclosed fence)."""
    lines = _lines(text)
    safe: list[int] = []
    start = 0
    end = len(text)
    i = 0
    if markdown and lines and lines[0][1].strip() in _FRONT_MATTER:
        marker = lines[0][1].strip()
        for j in range(1, len(lines)):
            if lines[j][1].strip() in (marker, "..."):
                start = lines[j + 1][0] if j + 1 < len(lines) else len(text)
                i = j + 1
                break
    fence: str | None = None
    fence_start = 0
    raw_close: str | None = None
    comment = False
    in_list = False
    in_quote = False
    previous_blank = True
    while i < len(lines):
        offset, line = lines[i]
        stripped = line.strip()
        if fence is not None:
            m = _FENCE.match(line)
            if (
                m
                and m.group(1)[0] == fence[0]
                and len(m.group(1)) >= len(fence)
                and not line[m.end() :].strip()
            ):
                fence = None
            i += 1
            previous_blank = False
            continue
        if raw_close is not None:
            if raw_close in line.lower():
                raw_close = None
            i += 1
            previous_blank = False
            continue
        if comment:
            if "-->" in line:
                comment = False
            i += 1
            previous_blank = False
            continue
        if not stripped:
            nxt = next((ln for _, ln in lines[i + 1 :] if ln.strip()), None)
            ok = markdown is False or (
                nxt is not None
                and not (in_list and (_LIST_ITEM.match(nxt) or nxt[:1] in (" ", "\t")))
                and not (in_quote and nxt.lstrip().startswith(">"))
                and not nxt.startswith(("    ", "\t"))
            )
            if ok and nxt is not None and not previous_blank:
                safe.append(offset)
            previous_blank = True
            i += 1
            continue
        if markdown:
            m = _FENCE.match(line)
            if m:
                fence, fence_start = m.group(1), offset
                i += 1
                previous_blank = False
                continue
            m = _RAW_HTML_OPEN.match(line)
            if m and f"</{m.group(1).lower()}>" not in line.lower():
                raw_close = f"</{m.group(1).lower()}>"
            elif line.lstrip().startswith("<!--") and "-->" not in line:
                comment = True
            if _LIST_ITEM.match(line):
                in_list = True
            elif previous_blank and line[:1] not in (" ", "\t"):
                in_list = False
            in_quote = line.lstrip().startswith(">") or (in_quote and not previous_blank)
        previous_blank = False
        i += 1
    if fence is not None:
        end = fence_start
    elif raw_close is not None or comment:
        end = safe[-1] if safe else start
    return [s for s in safe if start <= s <= end], start, end


def _newline(text: str) -> str:
    return "\r\n" if text.count("\r\n") * 2 > text.count("\n") else "\n"


def _insert_plain(text: str, label: str, placement: str, markdown: bool) -> tuple[str, list[dict[str, Any]]]:
    nl = _newline(text)
    shown = _MD_SPECIAL.sub(r"\\\1", label) if markdown else label
    boundaries, start, end = _markdown_boundaries(text, markdown)
    inserts: list[tuple[int, str, str]] = []
    if placement in ("prefix", "both"):
        inserts.append((start, shown + nl + nl, "prefix"))
    if placement == "middle":
        middle = start + (end - start) // 2
        if boundaries:
            at = min(boundaries, key=lambda b: abs(b - middle))
            inserts.append((at, nl + shown + nl, "middle"))
        elif not markdown and (points := _sentence_ends(text)):
            at = min(points, key=lambda b: abs(b - middle))
            inserts.append((at, nl + nl + shown + nl + nl, "middle"))
        else:
            placement = "suffix"  # no fitting middle point: the end is the next best place
    if placement in ("suffix", "both"):
        before = text[:end]
        trailing = len(before) - len(before.rstrip("\r\n"))
        sep = nl * max(0, 2 - trailing // len(nl)) if before.strip() else ""
        inserts.append((end, sep + shown + nl + (nl if end < len(text) else ""), "suffix"))
    out = text
    placements: list[dict[str, Any]] = []
    shift = 0
    for at, piece, where in sorted(inserts, key=lambda t: t[0]):
        out = out[: at + shift] + piece + out[at + shift :]
        placements.append({"where": where, "offset": at + shift + piece.index(shown), "length": len(shown)})
        shift += len(piece)
    return out, placements


_SENTENCE_END: Final = re.compile(r"[。！？!?.](?=\s|$)|[。！？]")


def _sentence_ends(text: str) -> list[int]:
    return [m.end() for m in _SENTENCE_END.finditer(text)]


# --- HTML ---------------------------------------------------------------------------------------

_VOID: Final = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    ]
)
_OPAQUE: Final = frozenset(
    [
        "pre",
        "code",
        "script",
        "style",
        "template",
        "textarea",
        "table",
        "ul",
        "ol",
        "dl",
        "select",
        "svg",
        "math",
        "iframe",
        "noscript",
    ]
)
_CONTAINERS: Final = frozenset(["body", "main", "article", "section", "div"])
_BLOCKS: Final = frozenset(
    [
        "p",
        "div",
        "section",
        "article",
        "aside",
        "header",
        "footer",
        "main",
        "nav",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "ul",
        "ol",
        "dl",
        "table",
        "blockquote",
        "figure",
        "pre",
        "hr",
        "address",
        "details",
        "form",
        "fieldset",
    ]
)


class _Scanner(HTMLParser):
    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=False)
        self.text = text
        self.line_starts = [0]
        for m in re.finditer("\n", text):
            self.line_starts.append(m.end())
        self.stack: list[str] = []
        self.body_open: int | None = None
        self.body_close: int | None = None
        self.head_close: int | None = None
        self.html_close: int | None = None
        self.html_open: int | None = None
        self.after_doctype = 0
        self.middle_points: list[int] = []

    def _offset(self) -> int:
        line, col = self.getpos()
        return self.line_starts[line - 1] + col

    def handle_decl(self, decl: str) -> None:
        self.after_doctype = self._offset() + len(decl) + 3

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raw = self.get_starttag_text() or ""
        end = self._offset() + len(raw)
        if tag == "body":
            self.body_open = end
        elif tag == "html":
            self.html_open = end
        if tag in _VOID:
            return
        if tag in _BLOCKS and self.stack and self.stack[-1] == "p":
            self.stack.pop()  # a block start closes an open paragraph
        self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        return

    def handle_endtag(self, tag: str) -> None:
        start = self._offset()
        close = self.text.find(">", start)
        end = len(self.text) if close < 0 else close + 1
        if tag == "body":
            self.body_close = start
        elif tag == "head":
            self.head_close = end
        elif tag == "html":
            self.html_close = start
        if tag in self.stack:
            while self.stack and self.stack.pop() != tag:
                pass
            if (
                tag in _BLOCKS
                and (not self.stack or self.stack[-1] in _CONTAINERS | {"html"})
                and not _OPAQUE.intersection(self.stack)
            ):
                self.middle_points.append(end)


def _insert_html(text: str, label: str, placement: str) -> tuple[str, list[dict[str, Any]]]:
    scanner = _Scanner(text)
    try:
        scanner.feed(text)
        scanner.close()
    except AssertionError as exc:  # html.parser's way of giving up on broken markup
        raise CorruptMediaError(f"cannot parse HTML: {exc}") from None
    element = f'<p class="aigc-label" role="note" data-aigc-label="">{html.escape(label)}</p>'
    if scanner.body_open is not None:
        start = scanner.body_open
    elif scanner.head_close is not None:
        start = scanner.head_close
    elif scanner.html_open is not None:
        start = scanner.html_open
    else:
        start = scanner.after_doctype
    end = next((p for p in (scanner.body_close, scanner.html_close) if p is not None), len(text))
    inserts: list[tuple[int, str]] = []
    if placement in ("prefix", "both"):
        inserts.append((start, "prefix"))
    if placement == "middle":
        points = [p for p in scanner.middle_points if start < p < end]
        if points:
            middle = start + (end - start) // 2
            inserts.append((min(points, key=lambda p: abs(p - middle)), "middle"))
        else:
            placement = "suffix"
    if placement in ("suffix", "both"):
        inserts.append((end, "suffix"))
    out = text
    shift = 0
    placements: list[dict[str, Any]] = []
    for at, where in sorted(inserts):
        out = out[: at + shift] + element + out[at + shift :]
        placements.append({"where": where, "offset": at + shift, "length": len(element)})
        shift += len(element)
    return out, placements


# --- public API ---------------------------------------------------------------------------------


def label_text(
    text: str, label: str, *, placement: str = "prefix", fmt: TextFormat = TextFormat.PLAIN
) -> tuple[str, list[dict[str, Any]]]:
    """``text`` with ``label`` added at ``placement`` (prefix, suffix, both or middle), and where.

    ``label`` is shown as given (see :func:`decorate`); for HTML it is escaped. A ``middle`` with no
    fitting point (a single paragraph of Markdown, HTML without block children) falls back to the
    end. Each placement is ``{"where", "offset", "length"}`` in the returned text.
    """
    if placement not in TEXT_PLACEMENTS:
        raise UsageError(f"text placement must be one of {', '.join(TEXT_PLACEMENTS)}, got {placement!r}")
    if fmt is TextFormat.HTML:
        return _insert_html(text, label, placement)
    return _insert_plain(text, label, placement, markdown=fmt is TextFormat.MARKDOWN)


def text_format_for(path: str | os.PathLike[str], head: str) -> TextFormat:
    """The markup of a text file: HTML by name or by a leading doctype/``<html>``, plain for
    ``.txt``, Markdown otherwise (Markdown-aware placement is safe for plain text too)."""
    suffix = Path(path).suffix.lower()
    if suffix in (".html", ".htm", ".xhtml") or re.match(r"\s*<(!doctype\s+html|html)[\s>]", head, re.I):
        return TextFormat.HTML
    if suffix in (".txt", ".text"):
        return TextFormat.PLAIN
    return TextFormat.MARKDOWN


def label_text_file(src: str | os.PathLike[str], dst: str | os.PathLike[str], settings: Any) -> VisibleResult:
    """Write UTF-8 text ``src`` with the configured text label to ``dst`` (atomically); the BOM and
    line-ending style are kept. Raises ``CorruptMediaError`` for text that is not UTF-8."""
    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise UsageError(f"{src}: output must differ from the input (inputs are never modified)")
    wording = wording_from_settings(settings)
    label = decorate(wording.text("long", bilingual=bool(getattr(settings, "visible_bilingual", False))))
    placement = str(getattr(settings, "visible_text_placement", "prefix"))
    try:
        size = src.stat().st_size
        if size > MAX_TEXT_BYTES:
            raise MediaLimitError(f"text of {size} bytes is larger than {MAX_TEXT_BYTES}", path=src)
        data = src.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{src}: no such file") from None
    bom = data.startswith(codecs.BOM_UTF8)
    try:
        text = data[3 if bom else 0 :].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptMediaError("text is not UTF-8", offset=exc.start, path=src) from None
    fmt = text_format_for(src, text[:1024])
    try:
        out, placements = label_text(text, label, placement=placement, fmt=fmt)
    except CorruptMediaError as exc:
        raise exc.with_path(src) from None
    with atomic_output(dst) as fh:
        fh.write((codecs.BOM_UTF8 if bom else b"") + out.encode("utf-8"))
    return VisibleResult(
        modality="text",
        wording=label,
        placements=placements,
        glyph_height_fraction=None,
        details={"format": fmt.value},
        conforms=True,
    )


# --- streaming ----------------------------------------------------------------------------------

_EVENT_END: Final = re.compile(r"\r\n\r\n|\n\n|\r\r")


def _label_event(template: dict[str, Any], index: int, content: str) -> str:
    chunk = {k: copy.deepcopy(v) for k, v in template.items() if k not in ("choices", "usage")}
    chunk["choices"] = [{"index": index, "delta": {"content": content}, "finish_reason": None}]
    return "data: " + json.dumps(chunk, ensure_ascii=False) + "\n\n"


def _event_json(event: str) -> Any:
    data = "\n".join(line[5:].removeprefix(" ") for line in event.splitlines() if line.startswith("data:"))
    if not data or data.strip() == "[DONE]":
        return data.strip() or None
    try:
        return json.loads(data)
    except json.JSONDecodeError:
        return None


def _sse_events(chunks: Iterable[str]) -> Iterator[str]:
    buffer = ""
    for chunk in chunks:
        buffer += chunk
        while (m := _EVENT_END.search(buffer)) is not None:
            yield buffer[: m.end()]
            buffer = buffer[m.end() :]
    if buffer:
        yield buffer


def _final_content_choice(choices: list[Any], finished: set[int]) -> dict[str, Any] | None:
    """The only choice of a chunk that both carries content and finishes, if that is the case."""
    if len(choices) != 1 or not isinstance(choices[0], dict):
        return None
    choice: dict[str, Any] = choices[0]
    delta = choice.get("delta")
    if choice.get("finish_reason") is None or int(choice.get("index", 0)) in finished:
        return None
    return choice if isinstance(delta, dict) and delta.get("content") else None


def _note_started(choices: list[Any], started: set[int]) -> None:
    for choice in choices:
        if isinstance(choice, dict):
            started.add(int(choice.get("index", 0)))


def label_sse_stream(
    chunks: Iterable[bytes] | Iterable[str],
    label: str,
    *,
    at_start: bool = True,
    at_end: bool = False,
) -> Iterator[str]:
    """Pass a chat-completion SSE stream through, adding the label as content of its own.

    With ``at_start``, a chunk whose ``delta.content`` is the label and a blank line follows the
    first chunk of each choice (after the role); with ``at_end``, a chunk with a blank line and the
    label goes before the chunk that sets the choice's ``finish_reason`` (or before ``[DONE]``, or
    at the end of the stream). Events are passed through byte for byte; input chunks may split
    events anywhere; bytes are decoded as UTF-8 (incrementally). Yields ``str``.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()

    def text_chunks() -> Iterator[str]:
        for chunk in chunks:
            yield decoder.decode(chunk) if isinstance(chunk, bytes) else chunk
        tail = decoder.decode(b"", final=True)
        if tail:
            yield tail

    started: set[int] = set()
    finished: set[int] = set()
    template: dict[str, Any] = {}
    for event in _sse_events(text_chunks()):
        payload = _event_json(event)
        if payload == "[DONE]" and at_end:
            for index in sorted(started - finished):
                yield _label_event(template, index, "\n\n" + label)
                finished.add(index)
        choices = payload.get("choices") if isinstance(payload, dict) else None
        if isinstance(payload, dict):
            template = payload
        if isinstance(choices, list) and at_end:
            last = _final_content_choice(choices, finished)
            if last is not None and isinstance(payload, dict):
                # the finishing chunk carries content too: send it unfinished, then the label
                # carrying its finish_reason, so the label still comes after all the content
                index, reason = int(last.get("index", 0)), last["finish_reason"]
                if at_start and index not in started:  # a one-chunk answer: its start is here
                    yield _label_event(payload, index, label + "\n\n")
                unfinished = copy.deepcopy(payload)
                unfinished["choices"][0]["finish_reason"] = None
                yield "data: " + json.dumps(unfinished, ensure_ascii=False) + "\n\n"
                closing = json.loads(_label_event(payload, index, "\n\n" + label)[6:])
                closing["choices"][0]["finish_reason"] = reason
                yield "data: " + json.dumps(closing, ensure_ascii=False) + "\n\n"
                finished.add(index)
                _note_started(choices, started)
                continue
            for choice in choices:
                if isinstance(choice, dict) and choice.get("finish_reason") is not None:
                    index = int(choice.get("index", 0))
                    if index not in finished:
                        yield _label_event(payload, index, "\n\n" + label)
                        finished.add(index)
        yield event
        if isinstance(choices, list):
            for choice in choices:
                if not isinstance(choice, dict):
                    continue
                index = int(choice.get("index", 0))
                if index not in started:
                    started.add(index)
                    if at_start:
                        yield _label_event(payload, index, label + "\n\n")
    if at_end:
        for index in sorted(started - finished):
            yield _label_event(template, index, "\n\n" + label)


def label_chat_stream(chunks: Iterable[bytes] | Iterable[str], settings: Any) -> Iterator[str]:
    """:func:`label_sse_stream` with the configured text label and placement: ``prefix`` labels
    the start, ``suffix`` the end, ``both`` both; ``middle`` has no meaning for a stream whose
    length is unknown and labels the start."""
    wording = wording_from_settings(settings)
    label = decorate(wording.text("long", bilingual=bool(getattr(settings, "visible_bilingual", False))))
    placement = str(getattr(settings, "visible_text_placement", "prefix"))
    return label_sse_stream(
        chunks,
        label,
        at_start=placement in ("prefix", "both", "middle"),
        at_end=placement in ("suffix", "both"),
    )


# --- interactive interfaces ---------------------------------------------------------------------


def interface_snippet(wording: str, kind: str = "html") -> str:
    """The embeddable label for chat interfaces, with ``wording`` filled in (escaped).

    ``kind="html"``: a self-contained HTML/CSS snippet showing the label continuously at the bottom
    of its container; ``kind="component"``: a ``<script>`` defining the ``<aigc-label>`` web
    component (use it as ``<aigc-label></aigc-label>`` or ``<aigc-label text="...">``).
    """
    names = {"html": "aigc-label.html", "component": "aigc-label.js"}
    if kind not in names:
        raise UsageError(f"snippet kind must be html or component, got {kind!r}")
    template = (resources.files("synthguard.visible") / "web" / names[kind]).read_text(encoding="utf-8")
    escaped = html.escape(wording, quote=True)
    if kind == "component":
        escaped = json.dumps(wording, ensure_ascii=False)[1:-1].replace("<", "\\u003c")
    return template.replace("{{WORDING}}", escaped)
