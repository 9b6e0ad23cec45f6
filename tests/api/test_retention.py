"""``/api/retention`` end to end: the policy, and a purge that is audited with counts only."""

from __future__ import annotations

from synthguard.accounts.roles import Role
from synthguard.store import Store
from tests.api.conftest import ClientFactory
from tests.governance.conftest import audit_events


def test_policy_and_purge(client_as: ClientFactory, api_store: Store) -> None:
    auditor = client_as(Role.AUDITOR)
    officer = client_as(Role.COMPLIANCE)
    policy = auditor.get("/api/retention/policy")
    assert policy.status_code == 200 and policy.json()["log_days"] >= policy.json()["min_log_days"] == 183
    assert auditor.post("/api/retention/purge").status_code == 403
    purged = officer.post("/api/retention/purge")
    assert purged.status_code == 200, purged.text
    assert purged.json()["subjects"] == 0 and set(purged.json()["cutoffs"]) == {
        "identity",
        "sms",
        "consent",
        "log",
    }
    (event,) = audit_events(api_store, event="retention.purged")
    assert event["actor"] == f"user:{client_as.principal(officer).name}"
