"""A mass incident on a live runtime: suspend, resume after an interruption, release, revoke; every change
audited with its rule and its incident, every touched CRL shard re-published, and the recovery per regime."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509

from ca.profiles import load_profiles
from hsm import TokenSession
from service.db.incident_store import Candidate, IncidentQuery
from service.db.registry_models import Actor
from service.errors import IncidentInvalid, PolicyDenied
from service.flows.incident import Predicate, affected, incident_predicate, run_incident
from service.flows.incident_report import Holders, recovery
from service.policy.regime import load_regime
from service.whatif.scenario import load_scenario
from tests.support.api_world import Api, serve_api

OPERATOR = Actor(name="operator", role="ca_operator", token_sha256="", created_at=datetime.now(UTC))


@pytest.fixture(params=["sqlite"])
def world(request: pytest.FixtureRequest, token: TokenSession, tmp_path_factory: pytest.TempPathFactory) -> Api:
    return serve_api(request, token, tmp_path_factory, "incident")


def _issue(world: Api, holders: int) -> tuple[datetime, list[str]]:
    """``holders`` residents with a signature certificate each; the window that holds exactly them."""
    since = datetime.now(UTC).replace(microsecond=0)
    serials = []
    for _ in range(holders):
        response = world.issue(world.new_resident(), "signature")
        assert response.status_code == 201, response.text
        serials.append(response.json()["serial"])
    return since, serials


def _status(world: Api, serial: str) -> tuple[str, str | None]:
    body = world.get(f"/v1/certificates/{serial}", "auditor").json()
    return body["status"], body["revocation_reason"]


def _listed(world: Api, serial: str) -> bool:
    """Whether the newest CRL shard the certificate names lists it."""
    cert = world.get(f"/v1/certificates/{serial}", "auditor").json()["certificate_pem"]
    dp = x509.load_pem_x509_certificate(cert.encode()).extensions.get_extension_for_class(x509.CRLDistributionPoints)
    url = dp.value[0].full_name[0].value
    path = url.split("://", 1)[1].split("/", 1)[1]
    crl = x509.load_der_x509_crl(world.client.get(f"/{path}").content)
    return crl.get_revoked_certificate_by_serial_number(int(serial, 16)) is not None


def test_suspend_release_and_revoke_each_change_only_what_is_left(world: Api) -> None:
    rt = world.runtime
    since, serials = _issue(world, 3)
    predicate = Predicate(IncidentQuery(issuer="signature", issued_from=since, issued_until=since + timedelta(hours=1)))
    name = f"test-{since:%H%M%S}-{serials[0][-6:].lower()}"
    assert sum(len(b) for b in affected(rt, predicate, "suspend")) == 3

    suspended = run_incident(rt, OPERATOR, name, "suspend", predicate, batch=2)
    assert suspended.changed == 3 and suspended.rule_id == "REVOKE-CA"
    assert all(_status(world, s) == ("revoked", "certificateHold") for s in serials)
    assert all(_listed(world, s) for s in serials)
    assert {c["issuer"] for c in suspended.crls} == {"signature"} and any(c["shard"] is None for c in suspended.crls)
    assert run_incident(rt, OPERATOR, name, "suspend").changed == 0  # the recorded predicate; nothing is left

    records = [r for r in rt.repo.audit_records(limit=1_000_000) if r.object.lower() == serials[0].lower()]
    suspend_records = [r for r in records if r.action == "certificate.suspend"]
    assert len(suspend_records) == 1 and suspend_records[0].rule_id == "REVOKE-CA"
    assert json.loads(suspend_records[0].details)["incident"] == name

    released = run_incident(rt, OPERATOR, name, "release")
    assert released.changed == 3
    assert all(_status(world, s) == ("issued", None) for s in serials)
    assert not any(_listed(world, s) for s in serials)  # the re-published shards dropped them

    run_incident(rt, OPERATOR, name, "suspend")
    revoked = run_incident(rt, OPERATOR, name, "revoke", reason="keyCompromise")
    assert revoked.changed == 3
    assert all(_status(world, s) == ("revoked", "keyCompromise") for s in serials)
    assert run_incident(rt, OPERATOR, name, "release").changed == 0  # a revocation is for good
    assert all(_listed(world, s) for s in serials)


def test_an_interrupted_suspension_resumes_where_it_stopped(world: Api) -> None:
    rt = world.runtime
    since, serials = _issue(world, 3)
    predicate = Predicate(IncidentQuery(issuer="signature", issued_from=since, issued_until=since + timedelta(hours=1)))
    name = f"crash-{since:%H%M%S}-{serials[0][-6:].lower()}"

    def crash(done: int) -> None:
        raise KeyboardInterrupt  # the operator's ^C (or a kill) after the first committed batch

    with pytest.raises(KeyboardInterrupt):
        run_incident(rt, OPERATOR, name, "suspend", predicate, batch=1, progress=crash)
    held = [s for s in serials if _status(world, s)[1] == "certificateHold"]
    assert len(held) == 1  # one batch committed, nothing half-done
    resumed = run_incident(rt, OPERATOR, name, "suspend", batch=1)
    assert resumed.changed == 2
    assert all(_status(world, s)[1] == "certificateHold" for s in serials)
    run_incident(rt, OPERATOR, name, "revoke")


def test_the_policy_decides_and_names_the_rule(world: Api) -> None:
    rt = world.runtime
    clerk = Actor(name="clerk", role="municipal_staff", municipality_code="452017", token_sha256="",
                  created_at=datetime.now(UTC))  # fmt: skip
    predicate = Predicate(IncidentQuery(issuer="signature", issued_from=datetime(2099, 1, 1, tzinfo=UTC)))
    with pytest.raises(PolicyDenied) as refused:
        run_incident(rt, clerk, "clerk-try", "suspend", predicate)
    assert refused.value.rule_id == "REVOKE-CA-REASONS"  # on hold is the CA's reason, not a municipality's


def test_an_incident_keeps_its_predicate_and_a_bad_name_is_refused(world: Api) -> None:
    rt = world.runtime
    first = Predicate(IncidentQuery(issuer="signature", issued_from=datetime(2099, 1, 1, tzinfo=UTC)))
    assert incident_predicate(rt, "keeps-1", first) == first
    assert incident_predicate(rt, "keeps-1", None) == first
    with pytest.raises(IncidentInvalid, match="was defined with"):
        incident_predicate(rt, "keeps-1", Predicate(IncidentQuery(issuer="user-authentication")))
    with pytest.raises(IncidentInvalid, match="not an incident name"):
        incident_predicate(rt, "../etc", first)
    with pytest.raises(IncidentInvalid, match="no incident"):
        incident_predicate(rt, "never-defined", None)


def _candidate(serial: str, key_origin: str, device: str | None, card: int | None) -> Candidate:
    return Candidate(1, serial, "signature", 0, "issued", None, "signature", key_origin, 1, card, device, None)


def test_recovery_per_regime_phones_remote_cards_at_the_counter_unless_the_chip_makes_keys() -> None:
    found = [_candidate("01", "device", "phone-1", None), _candidate("02", "device", "phone-1", None),
             _candidate("03", "station", None, 7), _candidate("04", "station", None, 7),
             _candidate("05", "station", None, 8)]  # fmt: skip
    holders = Holders.of(found)
    assert (holders.phones, holders.cards) == (1, 2)
    oids = load_profiles().hierarchy.assurance_policies
    counter = load_scenario("miyazaki")
    today = recovery(holders, load_regime("current-2022"), oids, counter, 0.5, on_hold=False)
    assert (today.phones_remote, today.cards_remote, today.counter_holders) == (1, 0, 2)
    assert today.phone_rule == "P11-REKEY" and today.card_rule == "P12"
    assert today.counter_staff_hours == pytest.approx(2 * 15 / 60)
    proposal = recovery(holders, load_regime("proposal-246"), oids, counter, 0.5, on_hold=False)
    assert proposal.next_generation_rule == "P246-CERT-RENEW"
    assert (proposal.cards_remote, proposal.counter_holders) == (1, 1)  # half the cards can make keys
    held = recovery(holders, load_regime("proposal-246"), oids, counter, 0.5, on_hold=True)
    assert held.cards_remote == 0  # a suspended signature certificate cannot authenticate the re-key


def test_the_pki_s_own_service_certificates_are_never_part_of_an_incident(world: Api) -> None:
    rt = world.runtime
    _issue(world, 1)
    everything = [c for batch in rt.repo.incident_candidates(IncidentQuery(), "revoke") for c in batch]
    services = {c.serial_hex for c in everything if c.profile in rt.profiles.servers}
    assert services  # provisioning issued the CMP responder's certificate, at least
    chosen = {c.serial_hex for batch in affected(rt, Predicate(), "revoke") for c in batch}
    assert chosen and not services & chosen
