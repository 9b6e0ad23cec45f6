"""Where the command line gets its ``CompiledLibrary``: a library file, the store, or the bundled sample.

``load(settings, path=None)`` decides, in this order:

1. ``path`` given: that library file (``load_file``; format below).
2. The characteristics database (``synthguard.review.library.load_compiled_library(settings)``) when
   that module provides it and a store is configured: ``database_url`` set, or the default SQLite
   file under ``data_dir`` already there (reviewing never creates a database). Its errors propagate
   (a configured store that cannot be read is not silently replaced by the sample). A store without
   active entries falls through to 3.
3. The bundled SAMPLE library (``sample_library.json``): a few dozen entries that show the format and
   let the commands be tried. It is not a content-security library; libraries loaded from it have
   ``sample=True``, and every decision made with them says ``"sample_library": true``.

The file format (``"format": "synthguard-library/1"``), a JSON object::

    {"notice": "...", "format": "synthguard-library/1",
     "entries": [{"id"?, "term", "category", "action", "match"?, "reason"?, "source"?}, ...],
     "rumors": [{"id"?, "claim", "category"?, "notice": {"id", "title", "url", "published"}}, ...],
     "images": [{"id"?, "pdq", "quality"?, "category"?, "reason"?}, ...]}

``category`` is a risk code (``A1.6``); ``action`` one of ``block``, ``review``, ``mask``, ``allow``;
``match`` the full list of normalisation steps of the entry (default: ``nfkc``, ``width``, ``t2s``,
``case``, ``strip``, ``numerals``); ``pdq`` a PDQ hash in 64 hex digits, ``quality`` its quality
(default 100). Entries without an ``id`` get ``k1``, ``k2``... (``r1``..., ``i1``...). A file that
does not follow the format raises ``ConfigError`` naming the entry at fault.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Final

from synthguard.config import Settings
from synthguard.errors import ConfigError, SynthguardError
from synthguard.review.engine import CompiledLibrary, ReviewPolicy
from synthguard.review.images import PdqHash
from synthguard.review.keywords import Action, KeywordEntry
from synthguard.review.normalize import DEFAULT_STEPS, parse_steps
from synthguard.review.risks import RiskCategory
from synthguard.review.rumors import RefutationNotice, RumorEntry

__all__ = ["FORMAT", "SAMPLE_FILE", "load", "load_file", "load_sample", "parse_library"]

FORMAT: Final = "synthguard-library/1"
SAMPLE_FILE: Final = "sample_library.json"
#: Library files larger than this are refused (a 100,000-entry library is about 20 MB of JSON).
MAX_FILE_BYTES: Final = 256 * 1024 * 1024


def load(settings: Settings, path: str | Path | None = None) -> CompiledLibrary:
    """The library to review with; see the module docstring for the order."""
    if path is not None:
        return load_file(path)
    from_store = _from_store(settings)
    if from_store is not None and from_store.size > 0:
        return from_store
    return load_sample()


def load_sample() -> CompiledLibrary:
    """The bundled SAMPLE library (``sample=True``)."""
    data = resources.files("synthguard.review").joinpath(SAMPLE_FILE).read_bytes()
    return parse_library(data, name=SAMPLE_FILE, version_prefix="sample", sample=True)


def load_file(path: str | Path) -> CompiledLibrary:
    """A library file in the format of the module docstring."""
    file = Path(path)
    try:
        size = file.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ConfigError(
                f"library file {file}: {size:,} bytes, more than the limit of {MAX_FILE_BYTES:,}"
            )
        data = file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read library file {file}: {exc.strerror or exc}") from None
    return parse_library(data, name=str(file), version_prefix="file")


def parse_library(
    data: bytes, *, name: str, version_prefix: str = "file", sample: bool = False
) -> CompiledLibrary:
    """Compile the library in ``data``; its version is ``<prefix>:sha256:<first 16 hex digits>``."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"library file {name} is not UTF-8 JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"library file {name}: the top level must be a JSON object")
    if document.get("format") != FORMAT:
        raise ConfigError(f"library file {name}: format must be {FORMAT!r}, got {document.get('format')!r}")
    keywords = [_keyword(item, k, name) for k, item in enumerate(_list(document, "entries", name), 1)]
    rumors = [_rumor(item, k, name) for k, item in enumerate(_list(document, "rumors", name), 1)]
    images = [_image(item, k, name) for k, item in enumerate(_list(document, "images", name), 1)]
    version = f"{version_prefix}:sha256:{hashlib.sha256(data).hexdigest()[:16]}"
    try:
        return CompiledLibrary.build(
            version, keywords=keywords, images=images, rumors=rumors, policy=ReviewPolicy(), sample=sample
        )
    except SynthguardError as exc:
        raise ConfigError(f"library file {name}: {exc}") from None


# -- the store -----------------------------------------------------------------------------------


def _from_store(settings: Settings) -> CompiledLibrary | None:
    if not _store_configured(settings):
        return None
    from synthguard.review.library import load_compiled_library  # SQLAlchemy: only when needed

    return load_compiled_library(settings)


def _store_configured(settings: Settings) -> bool:
    if settings.database_url:
        return True
    return (Path(settings.data_dir) / "synthguard.db").is_file()


# -- parsing -------------------------------------------------------------------------------------


def _list(document: Mapping[str, Any], key: str, name: str) -> list[Any]:
    value = document.get(key, [])
    if not isinstance(value, list):
        raise ConfigError(f"library file {name}: {key!r} must be a list")
    return value


def _field(item: Any, key: str, where: str, *, required: bool = True, default: str = "") -> str:
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: must be a JSON object")
    value = item.get(key)
    if value is None:
        if required:
            raise ConfigError(f"{where}: {key!r} is missing")
        return default
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {key!r} must be a string")
    return value


def _category(item: Any, where: str, default: str = "") -> RiskCategory:
    code = _field(item, "category", where, required=not default, default=default)
    try:
        return RiskCategory(code)
    except ValueError:
        raise ConfigError(f"{where}: unknown risk category {code!r} (codes A1.1 ... A5.2)") from None


def _keyword(item: Any, k: int, name: str) -> KeywordEntry:
    where = f"library file {name}: entries[{k - 1}]"
    term = _field(item, "term", where)
    action_name = _field(item, "action", where)
    try:
        action = Action(action_name)
    except ValueError:
        known = ", ".join(a.value for a in Action)
        raise ConfigError(f"{where}: unknown action {action_name!r} (known: {known})") from None
    steps = item.get("match")
    if steps is not None and (not isinstance(steps, list) or not all(isinstance(s, str) for s in steps)):
        raise ConfigError(f"{where}: 'match' must be a list of normalisation names")
    try:
        match = parse_steps(steps) if steps is not None else DEFAULT_STEPS
        return KeywordEntry(
            _field(item, "id", where, required=False, default=f"k{k}"),
            term,
            _category(item, where),
            action,
            match,
        )
    except SynthguardError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _rumor(item: Any, k: int, name: str) -> RumorEntry:
    where = f"library file {name}: rumors[{k - 1}]"
    claim = _field(item, "claim", where)
    notice = item.get("notice")
    try:
        refutation = RefutationNotice(
            _field(notice, "id", f"{where}.notice"),
            _field(notice, "title", f"{where}.notice"),
            _field(notice, "url", f"{where}.notice"),
            _field(notice, "published", f"{where}.notice"),
        )
        return RumorEntry(
            _field(item, "id", where, required=False, default=f"r{k}"),
            claim,
            refutation,
            _category(item, where, default=RiskCategory.A1_7.value),
        )
    except ConfigError:
        raise
    except SynthguardError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _image(item: Any, k: int, name: str) -> tuple[str, PdqHash]:
    where = f"library file {name}: images[{k - 1}]"
    digest = _field(item, "pdq", where)
    quality = item.get("quality", 100)
    if isinstance(quality, bool) or not isinstance(quality, int):
        raise ConfigError(f"{where}: 'quality' must be an integer 0..100")
    try:
        pdq = PdqHash.from_hex(digest, quality=quality)
    except SynthguardError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    _category(item, where, default=RiskCategory.A1_8.value)  # checked; the hash index keeps ids only
    return _field(item, "id", where, required=False, default=f"i{k}"), pdq
