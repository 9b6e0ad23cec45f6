"""Visible labels in text: plain, Markdown and HTML placement, files, SSE streams, the snippet."""

from __future__ import annotations

import codecs
import itertools
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthguard.config import Settings
from synthguard.errors import CorruptMediaError, UnsupportedFormatError, UsageError
from synthguard.visible.apply import apply_visible_label
from synthguard.visible.text import (
    TextFormat,
    decorate,
    interface_snippet,
    label_chat_stream,
    label_sse_stream,
    label_text,
    label_text_file,
)
from synthguard.visible.wording import conforms, find_label_phrases

LABEL = decorate("人工智能生成")

MARKDOWN = """---
title: 报告
---
# 标题

第一段。

```python
x = 1

y = 2
```

| a | b |
|---|---|
| 1 | 2 |

1. 第一项

2. 第二项

    indented continuation

> 引用一
>
> 引用二

最后一段。
"""


def _fenced_ranges(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"^```.*?^```$", text, re.M | re.S)]


@pytest.mark.parametrize("placement", ["prefix", "suffix", "both", "middle"])
def test_plain_text(placement: str) -> None:
    text = "第一段内容。\n\n第二段内容。\n\n第三段内容。\n"
    out, placements = label_text(text, LABEL, placement=placement)
    assert out.replace(LABEL, "").replace("\n", "") == text.replace("\n", "")
    expected = {
        "prefix": ["prefix"],
        "suffix": ["suffix"],
        "both": ["prefix", "suffix"],
        "middle": ["middle"],
    }
    assert [p["where"] for p in placements] == expected[placement]
    for p in placements:
        assert out[p["offset"] : p["offset"] + p["length"]] == LABEL
    if placement in ("prefix", "both"):
        assert out.startswith(LABEL + "\n\n")
    if placement in ("suffix", "both"):
        assert out.endswith("\n\n" + LABEL + "\n")
    if placement == "middle":  # both paragraph breaks are equally near the middle: the first wins
        assert out == "第一段内容。\n\n" + LABEL + "\n\n第二段内容。\n\n第三段内容。\n"


@pytest.mark.parametrize("placement", ["prefix", "suffix", "both", "middle"])
def test_markdown_label_stays_out_of_code_front_matter_lists_and_quotes(placement: str) -> None:
    out, placements = label_text(MARKDOWN, LABEL, placement=placement, fmt=TextFormat.MARKDOWN)
    assert out.startswith("---\ntitle: 报告\n---\n")
    for p in placements:
        offset = p["offset"]
        assert not any(start <= offset < end for start, end in _fenced_ranges(out))
        line_start = out.rfind("\n", 0, offset) + 1
        assert out[line_start:offset] == ""  # a line (paragraph) of its own
        before, after = out[:line_start].rstrip("\n"), out[offset + p["length"] :].lstrip("\n")
        assert not before.endswith(("第一项", "第二项", "continuation", "> 引用一", ">"))
        assert out[: line_start - 1].endswith("\n") or line_start == 0 or before.endswith("---")
        assert not after.startswith(("    ", "2. ", ">"))
    # the document's own blocks are all still there, whole
    for block in (
        "```python\nx = 1\n\ny = 2\n```",
        "| a | b |\n|---|---|\n| 1 | 2 |",
        "> 引用一\n>\n> 引用二",
    ):
        assert block in out


def test_markdown_middle_is_between_blocks() -> None:
    out, placements = label_text(MARKDOWN, LABEL, placement="middle", fmt=TextFormat.MARKDOWN)
    assert placements[0]["where"] == "middle"
    offset = placements[0]["offset"]
    assert out[offset - 2 : offset] == "\n\n" or out[offset - 1] == "\n"


def test_markdown_unclosed_fence_is_not_entered() -> None:
    text = "正文。\n\n```\ncode that never ends\n"
    out, _placements = label_text(text, LABEL, placement="suffix", fmt=TextFormat.MARKDOWN)
    assert out.index(LABEL) < out.index("```")


def test_markdown_escapes_special_characters_in_the_label() -> None:
    out, _ = label_text("正文\n", "*AI生成*", placement="prefix", fmt=TextFormat.MARKDOWN)
    assert out.startswith("\\*AI生成\\*")


_blocks = st.sampled_from(
    [
        "普通段落。",
        "```\ncode\n\nmore\n```",
        "~~~~\nx\n\n~~~\ny\n~~~~",
        "    indented code",
        "- a\n\n- b",
        "| x | y |\n|---|---|\n| 1 | 2 |",
        "# 标题",
        "<pre>\nraw\n\nraw\n</pre>",
        "<!--\ncomment\n\nstill\n-->",
        "> quote\n>\n> more",
    ]
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_blocks, min_size=1, max_size=8), st.sampled_from(["prefix", "suffix", "both", "middle"]))
def test_markdown_never_lands_inside_code_or_raw_html(blocks: list[str], placement: str) -> None:
    text = "\n\n".join(blocks) + "\n"
    out, placements = label_text(text, LABEL, placement=placement, fmt=TextFormat.MARKDOWN)
    assert out.replace(LABEL, "").replace("\n", "") == text.replace("\n", "")
    for p in placements:
        before = out[: p["offset"]]
        # every fence, <pre> and comment opened before the label is closed before it
        assert len(re.findall(r"^(```|~~~~)$", before, re.M)) % 2 == 0
        assert before.count("<pre>") == before.count("</pre>")
        assert before.count("<!--") == before.count("-->")


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.labels: list[tuple[list[str], str]] = []
        self._in_label = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if ("class", "aigc-label") in attrs:
            self._in_label = True
            self.labels.append((list(self.stack), ""))
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        while self.stack and self.stack.pop() != tag:
            pass
        self._in_label = False

    def handle_data(self, data: str) -> None:
        if self._in_label:
            ancestors, text = self.labels[-1]
            self.labels[-1] = (ancestors, text + data)


HTML = """<!DOCTYPE html>
<html><head><title>t</title><style>p { color: red }</style></head>
<body>
<h1>标题</h1>
<p>第一段</p>
<pre><code>code

more</code></pre>
<div><p>第二段</p><ul><li>项</li></ul></div>
<script>var s = "</p>";</script>
<p>最后</p>
</body></html>
"""


@pytest.mark.parametrize("placement", ["prefix", "suffix", "both", "middle"])
def test_html_label_is_a_body_element_with_escaped_text(placement: str) -> None:
    out, placements = label_text(HTML, "AI生成 <b>&", placement=placement, fmt=TextFormat.HTML)
    collected = _Collect()
    collected.feed(out)
    assert len(collected.labels) == len(placements) == (2 if placement == "both" else 1)
    for ancestors, text in collected.labels:
        assert text == "AI生成 <b>&"
        assert ancestors[-1] in ("body", "div")
        assert not {"pre", "code", "script", "style", "ul", "head"} & set(ancestors)
    if placement == "prefix":
        assert out.index("aigc-label") < out.index("<h1>")
    if placement == "suffix":
        assert out.index("aigc-label") > out.index("<p>最后</p>")
    stripped = re.sub(r'<p class="aigc-label"[^>]*>.*?</p>', "", out)
    assert stripped == HTML


def test_html_fragment_without_body() -> None:
    out, _ = label_text("<p>a</p><p>b</p>", "AI生成", placement="suffix", fmt=TextFormat.HTML)
    assert out.endswith('<p class="aigc-label" role="note" data-aigc-label="">AI生成</p>')


def test_text_file_keeps_bom_and_crlf(tmp_path: Path) -> None:
    src = tmp_path / "in.txt"
    src.write_bytes(codecs.BOM_UTF8 + "第一行。\r\n\r\n第二行。\r\n".encode())
    result = label_text_file(src, tmp_path / "out.txt", Settings(visible_text_placement="both"))
    data = (tmp_path / "out.txt").read_bytes()
    assert data.startswith(codecs.BOM_UTF8 + LABEL.encode() + b"\r\n\r\n")
    assert data.endswith(b"\r\n\r\n" + LABEL.encode() + b"\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert result.details["format"] == "plain" and conforms(result.wording)


def test_html_file_by_content(tmp_path: Path) -> None:
    src = tmp_path / "page"
    src.write_text(HTML, encoding="utf-8")
    result = label_text_file(src, tmp_path / "out", Settings())
    assert result.details["format"] == "html"
    assert '<body><p class="aigc-label"' in (tmp_path / "out").read_text(encoding="utf-8").replace("\n", "")


def test_not_utf8_is_refused_and_nothing_written(tmp_path: Path) -> None:
    src = tmp_path / "in.txt"
    src.write_bytes("中文".encode("gb18030"))
    with pytest.raises(CorruptMediaError):
        label_text_file(src, tmp_path / "out.txt", Settings())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]


def test_apply_dispatches_text_and_refuses_pdf(tmp_path: Path) -> None:
    src = tmp_path / "in.md"
    src.write_text("# 标题\n\n正文。\n", encoding="utf-8")
    result = apply_visible_label(src, tmp_path / "out.md", Settings())
    assert result.modality == "text"
    text = (tmp_path / "out.md").read_text(encoding="utf-8")
    assert find_label_phrases(text)[0][2] == "人工智能生成"
    pdf = tmp_path / "in.pdf"
    pdf.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n")
    with pytest.raises((UnsupportedFormatError, CorruptMediaError)):
        apply_visible_label(pdf, tmp_path / "out.pdf", Settings())
    with pytest.raises(UsageError):
        apply_visible_label(tmp_path / "missing.md", tmp_path / "x.md", Settings())


def _sse(payloads: list[object]) -> str:
    return "".join(
        f"data: {p if isinstance(p, str) else json.dumps(p, ensure_ascii=False)}\n\n" for p in payloads
    )


def _chunk(index: int, delta: dict[str, str], finish: str | None = None) -> dict[str, object]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
    }


STREAM = _sse(
    [
        _chunk(0, {"role": "assistant", "content": ""}),
        _chunk(0, {"content": "你好"}),
        _chunk(0, {"content": "，世界"}),
        _chunk(0, {}, "stop"),
        "[DONE]",
    ]
)


def _content(stream: str) -> tuple[str, list[object]]:
    text = ""
    events: list[object] = []
    for event in stream.split("\n\n"):
        if not event.startswith("data: "):
            continue
        data = event[6:]
        if data == "[DONE]":
            events.append("[DONE]")
            continue
        payload = json.loads(data)
        events.append(payload)
        for choice in payload["choices"]:
            text += choice["delta"].get("content", "")
    return text, events


@given(st.lists(st.integers(min_value=1, max_value=len(STREAM.encode()) - 1), max_size=12))
def test_sse_stream_labels_start_and_end_however_the_bytes_are_split(cuts: list[int]) -> None:
    data = STREAM.encode()
    points = [0, *sorted(set(cuts)), len(data)]
    pieces = [data[a:b] for a, b in itertools.pairwise(points)]
    out = "".join(label_sse_stream(pieces, LABEL, at_start=True, at_end=True))
    text, events = _content(out)
    assert text == LABEL + "\n\n你好，世界\n\n" + LABEL
    assert events[-1] == "[DONE]"
    finish = [e for e in events if isinstance(e, dict) and e["choices"][0]["finish_reason"]]
    assert events.index(finish[0]) == len(events) - 2  # the label comes before the finishing chunk
    # the original events pass through unchanged
    for original in STREAM.split("\n\n"):
        assert original in out


def test_sse_stream_without_done_and_several_choices() -> None:
    stream = _sse([_chunk(0, {"content": "a"}), _chunk(1, {"content": "b"})])
    out = "".join(label_sse_stream([stream], "L", at_start=False, at_end=True))
    _, events = _content(out)
    tails = [e for e in events if isinstance(e, dict) and e["choices"][0]["delta"].get("content") == "\n\nL"]
    assert sorted(e["choices"][0]["index"] for e in tails) == [0, 1]  # type: ignore[index]


def test_interface_snippets_escape_the_wording() -> None:
    html_snippet = interface_snippet('AI生成 <script>"', "html")
    assert "AI生成 &lt;script&gt;&quot;" in html_snippet and '<script>"' not in html_snippet
    assert "{{" not in html_snippet
    component = interface_snippet("AI生成</script>", "component")
    assert 'customElements.define("aigc-label"' in component
    assert "</script>" not in component and "AI生成\\u003c/script>" in component
    with pytest.raises(UsageError):
        interface_snippet("AI生成", "iframe")


_html_pieces = st.sampled_from(
    ["<p>", "</p>", "<div>", "</div>", "<pre>", "</pre>", "<body>", "</body>", "<script>", "</script>",
     "<br>", "<!-- c -->", "文字", "&amp;", "<", ">", "\n", "<ul><li>", "</li></ul>", "<!DOCTYPE html>"]
)  # fmt: skip


@settings(max_examples=80, deadline=None)
@given(st.lists(_html_pieces, max_size=20), st.sampled_from(["prefix", "suffix", "both", "middle"]))
def test_html_labelling_of_arbitrary_markup_only_inserts(pieces: list[str], placement: str) -> None:
    html_text = "".join(pieces)
    try:
        out, placements = label_text(html_text, "AI生成", placement=placement, fmt=TextFormat.HTML)
    except CorruptMediaError:
        return
    element = '<p class="aigc-label" role="note" data-aigc-label="">AI生成</p>'
    assert out.replace(element, "") == html_text
    assert len(placements) == out.count(element)


@pytest.mark.parametrize(
    ("placement", "expected"),
    [
        ("prefix", LABEL + "\n\n你好，世界"),
        ("suffix", "你好，世界\n\n" + LABEL),
        ("both", LABEL + "\n\n你好，世界\n\n" + LABEL),
    ],
)
def test_chat_stream_follows_the_text_placement(placement: str, expected: str) -> None:
    out = "".join(label_chat_stream([STREAM], Settings(visible_text_placement=placement)))
    assert _content(out)[0] == expected


def test_sse_label_follows_content_sent_with_the_finish_reason() -> None:
    stream = _sse(
        [_chunk(0, {"role": "assistant", "content": "答"}), _chunk(0, {"content": "案"}, "stop"), "[DONE]"]
    )
    out = "".join(label_sse_stream([stream], "L", at_start=False, at_end=True))
    text, events = _content(out)
    assert text == "答案\n\nL"
    reasons = [e["choices"][0]["finish_reason"] for e in events if isinstance(e, dict)]  # type: ignore[index]
    assert reasons == [None, None, "stop"]


def test_sse_one_chunk_answer_gets_both_labels() -> None:
    stream = _sse([_chunk(0, {"role": "assistant", "content": "答案"}, "stop"), "[DONE]"])
    text, _ = _content("".join(label_sse_stream([stream], "L", at_start=True, at_end=True)))
    assert text == "L\n\n答案\n\nL"
