"""Rumor refutation records (Art. 11), as services, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator

import pytest

from synthguard.errors import ConflictError, NotFoundError, UsageError
from synthguard.governance import rumors
from synthguard.store import Store
from synthguard.store.models import LibraryEntryRow, ReviewHitRow
from tests.governance import rows
from tests.governance.rows import rumor_entry
from tests.store import backends, migrated_store

T0 = dt.datetime(2026, 2, 1, 12, 0, tzinfo=dt.UTC)
CLAIM = "本市自来水检测出致癌物质，市民千万不要饮用"


def library_entry(entry_id: str, *, kind: str = "rumor", term: str = CLAIM) -> LibraryEntryRow:
    return rumor_entry(
        entry_id, at=T0, term=term, kind=kind, title="自来水安全", url="https://example.gov.cn/n1"
    )


def review_hit(entry_id: str, subject: str, detail: dict[str, str] | None = None) -> ReviewHitRow:
    return rows.review_hit(entry_id, subject, at=T0, detail=detail)


@pytest.fixture(scope="module", params=backends())
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    with migrated_store(request.param, tmp_path_factory.mktemp("rumors")) as opened:
        with opened.session(write=True) as session:
            session.add_all([library_entry("rumor-1"), library_entry("kw-1", kind="keyword", term="x")])
        yield opened


def _record(session: object, **overrides: object) -> rumors.Rumor:
    values: dict[str, object] = {
        "claim": CLAIM,
        "refutation_title": "自来水安全",
        "refutation_text": "经检测，本市自来水符合国家标准。",
        "refutation_source": "市水务局",
        "refutation_url": "https://example.gov.cn/n1",
        "refuted_at": T0,
        "actor": "user:alice",
        "now": T0,
    }
    values.update(overrides)
    return rumors.record_rumor(session, **values)  # type: ignore[arg-type]


def test_rumor_with_refutation_linked_to_library_entries_and_occurrences(store: Store) -> None:
    digest = hashlib.sha256(b"video bytes").hexdigest()
    with store.session(write=True) as session:
        rumor = _record(session, entry_ids=["rumor-1"])
        assert rumor.entries == (("rumor-1", CLAIM),) and rumor.refutation.source == "市水务局"
        assert rumor.risk == "A1.7"
        first, new = rumors.add_occurrence(
            session, rumor.id, produce_id="00000000000000ff", location="https://v.example/1", actor="user:bob"
        )
        assert new
        again, new = rumors.add_occurrence(
            session, rumor.id, produce_id="00000000000000ff", location="https://v.example/1", actor="user:bob"
        )
        assert not new and again.id == first.id
        rumors.add_occurrence(
            session, rumor.id, content_digest=digest.upper(), location="weibo", actor="user:bob"
        )
        assert rumors.get_rumor(session, rumor.id).occurrence_count == 2
        assert [r.id for r in rumors.rumors_of_content(session, content_digest=digest)] == [rumor.id]
        assert [r.id for r in rumors.rumors_of_content(session, produce_id="00000000000000ff")] == [rumor.id]
        assert rumors.rumors_of_content(session, produce_id="nothing") == []


def test_review_hits_of_linked_entries_become_occurrences_once(store: Store) -> None:
    with store.session(write=True) as session:
        session.add_all(
            [
                review_hit("rumor-1", "request-1", {"produce_id": "00000000000000aa"}),
                review_hit("rumor-1", "request-2"),
                review_hit("kw-1", "request-3"),
            ]
        )
        rumor = _record(session, entry_ids=["rumor-1"])
        created = rumors.link_review_hits(session, rumor.id, actor="system")
        assert sorted(o.location for o in created) == ["review:request-1", "review:request-2"]
        assert {o.produce_id for o in created} == {"00000000000000aa", None}
        assert rumors.link_review_hits(session, rumor.id, actor="system") == []
        assert len(rumors.list_occurrences(session, rumor.id)) == 2


def test_links_and_occurrences_are_checked(store: Store) -> None:
    with store.session(write=True) as session:
        rumor = _record(session)
        with pytest.raises(NotFoundError):
            rumors.link_entry(session, rumor.id, "missing", actor="user:a")
        with pytest.raises(UsageError):
            rumors.link_entry(session, rumor.id, "kw-1", actor="user:a")
        rumors.link_entry(session, rumor.id, "rumor-1", actor="user:a")
        with pytest.raises(ConflictError):
            rumors.link_entry(session, rumor.id, "rumor-1", actor="user:a")
        with pytest.raises(UsageError):
            rumors.add_occurrence(session, rumor.id, location="x", actor="user:a")
        with pytest.raises(UsageError):
            rumors.add_occurrence(session, rumor.id, content_digest="abc", location="x", actor="user:a")
        with pytest.raises(NotFoundError):
            rumors.add_occurrence(session, 10**9, produce_id="1", location="x", actor="user:a")
        for bad in ({"refutation_url": "javascript:alert(1)"}, {"risk": "Z9"}, {"claim": ""}):
            with pytest.raises(UsageError):
                _record(session, **bad)
    with store.session() as session:
        assert rumor.id in [r.id for r in rumors.list_rumors(session)]
