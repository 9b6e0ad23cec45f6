"""File-level watermarking: the modality dispatch, and text marks kept out of code and links."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from synthguard.config import Settings
from synthguard.errors import UsageError
from synthguard.watermark.files import detect_file, embed_file, embed_prose
from synthguard.watermark.text import _SELECTOR_RUN

SECRET = b"files-test-watermark-secret-0001"
MARKDOWN = (
    """---
title: 回答
---
# 如何安装

运行下面的命令安装依赖，然后打开 [文档](https://example.com/docs?a=1) 查看说明。

```sh
pip install synthguard
```

    indented_code = True

行内代码 `print("hello")` 不应被改动，<b>标签</b> 也一样，链接 https://example.com/x 同样。
"""
    + "这是一段很长的说明文字，" * 30
)


def test_markdown_prose_carries_the_mark_and_code_links_and_front_matter_do_not(tmp_path: Path) -> None:
    cfg = dataclasses.replace(Settings(), watermark_key=SECRET.decode())
    src = tmp_path / "answer.md"
    src.write_text(MARKDOWN, encoding="utf-8")
    embed_file(src, tmp_path / "out.md", "0123456789ABCDEF", cfg)
    marked = (tmp_path / "out.md").read_text(encoding="utf-8")
    assert _SELECTOR_RUN.sub("", marked) == MARKDOWN
    for kept in (
        "---\ntitle: 回答\n---\n",
        "```sh\npip install synthguard\n```",
        "    indented_code = True",
        '`print("hello")`',
        "<b>",
        "](https://example.com/docs?a=1)",
        "https://example.com/x",
    ):
        assert kept in marked
    assert len(_SELECTOR_RUN.findall(marked)) >= 3
    found = detect_file(tmp_path / "out.md", cfg)
    assert found is not None and found.found and found.produce_id == "0123456789ABCDEF"
    assert detect_file(src, cfg) is not None and not detect_file(src, cfg).found  # type: ignore[union-attr]


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab 中文\n`<>()[]:/-_#\t\U000f0000")), min_size=1, max_size=200))
def test_prose_embedding_only_inserts(text: str) -> None:
    if not any(c.isalnum() for c in text):
        return
    try:
        marked = embed_prose(text, "0123456789ABCDEF", SECRET)
    except UsageError as exc:  # the documented refusal: no letter outside the protected spans
        assert "no letter" in str(exc)
        return
    assert _SELECTOR_RUN.sub("", marked) == text
