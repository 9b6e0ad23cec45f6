"""Retention: personal data erased when its time is up, logs kept >= 183 days, the purge audited."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from pathlib import Path

import pytest
import sqlalchemy as sa

from synthguard.aigc import ProduceID
from synthguard.audit.models import AuditRecordRow
from synthguard.config import Settings, load_settings
from synthguard.errors import ConfigError
from synthguard.governance import consent, generation, identity
from synthguard.governance.consent import Biometric, Evidence
from synthguard.governance.identity import IdentifierType, SubjectKind
from synthguard.governance.models import ConsentRow, GenerationRow, IdentifierRow, SmsChallengeRow, SubjectRow
from synthguard.governance.retention import PURGED_MASK, RetentionPolicy, purge_expired
from synthguard.governance.sms import ConsoleSmsSender
from synthguard.governance.verifiers import StaticIdentityVerifier
from synthguard.store import Store
from tests.governance.conftest import MOBILE, RESIDENT_ID, RESIDENT_ID_2, audit_events

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)

KNOWS_ZHANG_SAN = StaticIdentityVerifier([("resident_id", RESIDENT_ID, "张三")])


def test_log_retention_below_six_months_is_refused() -> None:
    with pytest.raises(ConfigError, match="at least 183"):
        load_settings(env={"SYNTHGUARD_RETENTION_LOG_DAYS": "30"})
    with pytest.raises(ConfigError, match="at least 183"):
        RetentionPolicy.from_settings(Settings(retention_log_days=182))
    with pytest.raises(ConfigError, match="between 0 and"):
        RetentionPolicy.from_settings(Settings(retention_sms_days=-1))
    assert load_settings(env={"SYNTHGUARD_RETENTION_LOG_DAYS": "400"}).retention_log_days == 400


def _populate(store: Store, settings: Settings) -> str:
    """A closed account with identity, a rejected submission, an SMS code, a consent, a generation."""
    sender = ConsoleSmsSender()
    with store.session(write=True) as session:
        identity.register_subject(
            session, settings, user_ref="leaver", kind=SubjectKind.PERSON, name="张三", actor="system", now=T0
        )
        identity.submit_identity(
            session, settings, user_ref="leaver", id_type=IdentifierType.RESIDENT_ID, number=RESIDENT_ID,
            name="张三", actor="system", verifier=KNOWS_ZHANG_SAN,
            now=T0,
        )  # fmt: skip
        identity.start_mobile_verification(
            session, settings, user_ref="leaver", mobile=MOBILE, sender=sender, actor="system", now=T0
        )
        identity.close_account(
            session, user_ref="leaver", reason="user left", actor="user:alice", now=T0 + DAY
        )
        identity.register_subject(
            session, settings, user_ref="stayer", kind=SubjectKind.PERSON, actor="system", now=T0
        )
        identity.submit_identity(
            session, settings, user_ref="stayer", id_type=IdentifierType.RESIDENT_ID, number=RESIDENT_ID_2,
            name="王五", actor="system", verifier=StaticIdentityVerifier(), now=T0,
        )  # fmt: skip
        consent.grant_consent(
            session, subject_ref="person-7", biometric=Biometric.FACE, purpose="advert",
            evidence=Evidence(hashlib.sha256(b"form").hexdigest(), 4, "application/pdf"), actor="user:alice",
            purpose_detail="campaign with 张三", expires_at=T0 + 10 * DAY, now=T0,
        )  # fmt: skip
        pid = ProduceID.new()
        generation.record_generation(
            session, produce_id=pid, user_ref="leaver", modality="text",
            content_digest=hashlib.sha256(b"poem").hexdigest(), labels=["visible", "metadata"],
            unlabeled_agreement_version=None, now=T0,
        )  # fmt: skip
    return pid


def test_nothing_is_purged_before_its_time_and_everything_after(
    gov_store: Store, gov_settings: Settings
) -> None:
    settings = dataclasses.replace(
        gov_settings,
        retention_identity_days=30,
        retention_sms_days=7,
        retention_consent_days=90,
        retention_log_days=183,
    )
    pid = _populate(gov_store, settings)
    audit_before = len(audit_events(gov_store))

    with gov_store.session(write=True) as session:
        early = purge_expired(session, settings, T0 + 5 * DAY)
    assert early.total == 0

    with gov_store.session(write=True) as session:
        week = purge_expired(session, settings, T0 + 8 * DAY)
    assert week.sms_challenges == 1 and week.subjects == 0

    with gov_store.session(write=True) as session:
        month = purge_expired(session, settings, T0 + 32 * DAY)
    assert (month.subjects, month.identifiers, month.consents, month.generations) == (1, 2, 0, 0)
    with gov_store.session() as session:
        leaver = session.scalars(sa.select(SubjectRow).where(SubjectRow.user_ref == "leaver")).one()
        assert leaver.name_cipher is None and leaver.name_masked is None and leaver.purged_at is not None
        rows = session.scalars(sa.select(IdentifierRow).order_by(IdentifierRow.id)).all()
        assert all(r.cipher is None and r.lookup_hash is None and r.masked == PURGED_MASK for r in rows)
        assert not identity.can_publish(session, "leaver")
        assert identity.get_identity(session, "leaver").purged

    with gov_store.session(write=True) as session:
        later = purge_expired(session, settings, T0 + 101 * DAY)
    assert later.consents == 1 and later.generations == 0
    with gov_store.session() as session:
        row = session.scalars(sa.select(ConsentRow)).one()
        assert row.subject_ref is None and row.purpose_detail == "" and row.evidence_sha256  # digest kept

    with gov_store.session(write=True) as session:
        year = purge_expired(session, settings, T0 + 184 * DAY)
    assert year.generations == 1
    with gov_store.session() as session:
        gen = session.scalars(sa.select(GenerationRow)).one()
        assert gen.user_ref is None and gen.produce_id == pid
        assert session.scalar(sa.select(sa.func.count()).select_from(SmsChallengeRow)) == 0
        # the audit log is never purged: it grew by one record per run
        assert session.scalar(sa.select(sa.func.count()).select_from(AuditRecordRow)) == audit_before + 5

    with gov_store.session(write=True) as session:
        assert purge_expired(session, settings, T0 + 184 * DAY).total == 0
    runs = audit_events(gov_store, event="retention.purged")
    assert [r["data"]["generations"] for r in runs] == [0, 0, 0, 0, 1, 0]
    assert all(r["actor"] == "system" for r in runs)
    assert "张三" not in str(runs) and RESIDENT_ID not in str(runs)


def test_cli_purge_and_trace(tmp_path: Path, gov_keys: tuple[str, str]) -> None:
    import json

    from typer.testing import CliRunner

    from synthguard.cli.main import app

    url = f"sqlite:///{tmp_path}/cli.db"
    env = {"SYNTHGUARD_IDENTITY_ENCRYPTION_KEY": gov_keys[0], "SYNTHGUARD_IDENTITY_HASH_KEY": gov_keys[1]}
    runner = CliRunner()
    purged = runner.invoke(app, ["governance", "purge", "--json", "--database", url], env=env)
    assert purged.exit_code == 0, purged.output
    assert json.loads(purged.output)["subjects"] == 0
    missing = runner.invoke(app, ["governance", "trace", "00000000000000AB", "--database", url], env=env)
    assert missing.exit_code == 1 and "NotFoundError" in missing.output
    bad = runner.invoke(app, ["governance", "trace", "nope", "--database", url], env=env)
    assert bad.exit_code == 2
    keys = runner.invoke(app, ["governance", "keygen", "--json"])
    made = json.loads(keys.output)
    assert made["identity_encryption_key"] != made["identity_hash_key"]
    shown = runner.invoke(app, ["governance", "keygen"])
    assert shown.output.startswith("SYNTHGUARD_IDENTITY_ENCRYPTION_KEY=")
