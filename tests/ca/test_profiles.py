from __future__ import annotations

import shutil
from importlib import resources
from ipaddress import ip_address
from pathlib import Path

import pytest
from cryptography import x509

from ca.errors import ProfileInvalid, ProfileNotFound, ProfileViolation
from ca.extensions import ServerNames, server_alt_names, server_subject
from ca.profiles import PERSONAL_SOURCES, AssuranceLevel, load_profiles

SHIPPED = Path(str(resources.files("profiles")))


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "profiles"
    shutil.copytree(SHIPPED, target)
    return target


def test_shipped_profiles_load() -> None:
    profiles = load_profiles()
    assert set(profiles.profiles) == {"signature", "user-authentication"}
    assert set(profiles.hierarchy.issuing) == {"signature", "user-authentication"}
    assert set(profiles.hierarchy.assurance_policies) == set(AssuranceLevel)
    for oid in profiles.hierarchy.assurance_policies.values():
        assert oid.startswith("1.3.6.1.5.5.7.13.")  # RFC 7229 test policies


def test_signature_profile_carries_the_four_jpki_attributes() -> None:
    profile = load_profiles().profile("signature")
    oids = {field.oid: field.source for field in profile.subject_alt_name}
    assert oids == {
        "1.2.392.200149.8.5.5.1": "name",
        "1.2.392.200149.8.5.5.3": "sex",
        "1.2.392.200149.8.5.5.4": "date_of_birth",
        "1.2.392.200149.8.5.5.5": "address",
    }
    assert profile.key_usage == ("digital_signature", "content_commitment")
    assert profile.min_holder_age == 15


def test_user_authentication_profile_has_no_personal_data() -> None:
    profile = load_profiles().profile("user-authentication")
    assert not profile.carries_personal_data
    assert profile.subject_alt_name == ()
    assert not {a.source for a in profile.subject} & PERSONAL_SOURCES
    assert profile.extended_key_usage == ("client_auth",)


def test_unknown_profile_is_named() -> None:
    with pytest.raises(ProfileNotFound, match="unknown profile 'tls'"):
        load_profiles().profile("tls")


def test_unknown_key_is_an_error(tmp_path: Path) -> None:
    base = _copy(tmp_path)
    path = base / "certificate" / "signature.yaml"
    path.write_text(path.read_text() + "validity_years: 99\n")
    with pytest.raises(ProfileInvalid, match="validity_years"):
        load_profiles(base)


def test_personal_data_in_an_attribute_free_profile_is_refused(tmp_path: Path) -> None:
    base = _copy(tmp_path)
    path = base / "certificate" / "user-authentication.yaml"
    path.write_text(path.read_text().replace("source: opaque_id", "source: name"))
    with pytest.raises(ProfileInvalid, match="declares no personal data"):
        load_profiles(base)


def test_bad_oid_is_refused(tmp_path: Path) -> None:
    base = _copy(tmp_path)
    path = base / "certificate" / "signature.yaml"
    path.write_text(path.read_text().replace("1.2.392.200149.8.5.5.1", "jpki.name"))
    with pytest.raises(ProfileInvalid, match="dotted OID"):
        load_profiles(base)


def test_profile_name_must_match_file(tmp_path: Path) -> None:
    base = _copy(tmp_path)
    path = base / "certificate" / "signature.yaml"
    path.rename(base / "certificate" / "sig.yaml")
    with pytest.raises(ProfileInvalid, match="differs from the file name"):
        load_profiles(base)


def test_missing_assurance_level_is_refused(tmp_path: Path) -> None:
    base = _copy(tmp_path)
    path = base / "hierarchy.yaml"
    path.write_text(path.read_text().replace("  IAL1: 1.3.6.1.5.5.7.13.1\n", ""))
    with pytest.raises(ProfileInvalid, match="every level"):
        load_profiles(base)


# -- server profiles (tls-server) ----------------------------------------------------------------------------
def test_tls_server_is_a_server_profile_that_holder_issuance_cannot_name() -> None:
    profiles = load_profiles()
    server = profiles.server("tls-server")
    assert server.issuing_ca == "user-authentication"
    assert server.extended_key_usage == ("server_auth",)
    assert server.subject_alt_name == ("dns_name", "ip_address")
    assert server.key_usage == ("digital_signature",) and server.validity_days <= 398
    assert "tls-server" not in profiles.profiles
    with pytest.raises(ProfileNotFound, match="unknown profile 'tls-server'"):
        profiles.profile("tls-server")
    with pytest.raises(ProfileNotFound, match="unknown server profile 'signature'"):
        profiles.server("signature")


def test_a_server_profile_refuses_holder_sources_and_long_validity(tmp_path: Path) -> None:
    base = _copy(tmp_path)
    path = base / "certificate" / "tls-server.yaml"
    original = path.read_text()
    path.write_text(original.replace("source: server_name", "source: name"))
    with pytest.raises(ProfileInvalid, match="server_name"):
        load_profiles(base)
    path.write_text(original.replace("validity_days: 90", "validity_days: 825"))
    with pytest.raises(ProfileInvalid, match="validity_days"):
        load_profiles(base)
    path.write_text(original + "min_holder_age: 15\n")
    with pytest.raises(ProfileInvalid, match="min_holder_age"):
        load_profiles(base)


def test_server_names_give_cn_and_alt_names() -> None:
    profile = load_profiles().server("tls-server")
    names = ServerNames(dns=("koshin.test",), ip=(ip_address("127.0.0.1"),))
    assert server_subject(profile, names).rfc4514_string() == "CN=koshin.test,O=koshin,C=JP"
    alt_names = server_alt_names(profile, names)
    assert alt_names is not None
    assert list(alt_names) == [x509.DNSName("koshin.test"), x509.IPAddress(names.ip[0])]
    only_ip = ServerNames(dns=(), ip=(ip_address("::1"),))
    assert server_subject(profile, only_ip).rfc4514_string() == "CN=::1,O=koshin,C=JP"
    with pytest.raises(ValueError, match="at least one"):
        ServerNames(dns=())


# -- the CMP responder: a server profile issued by each issuing CA, without subjectAltName ---------------------
def test_cmp_responder_is_a_server_profile_of_every_issuing_ca_without_alt_names() -> None:
    profiles = load_profiles()
    responder = profiles.server("cmp-responder")
    assert responder.issuing_cas == tuple(profiles.hierarchy.issuing) == ("signature", "user-authentication")
    assert responder.subject_alt_name == () and responder.extended_key_usage == ("cmc_ra",)
    assert responder.key_usage == ("digital_signature",)
    assert responder.issuer("user-authentication") == "user-authentication"
    with pytest.raises(ProfileViolation, match="name it"):
        responder.issuer()
    with pytest.raises(ProfileViolation, match="not issued by 'root'"):
        responder.issuer("root")
    assert profiles.server("tls-server").issuer() == "user-authentication"
    with pytest.raises(ProfileViolation, match="not issued by 'signature'"):
        profiles.server("tls-server").issuer("signature")
    names = ServerNames(dns=(), common_name="koshin Signature CA CMP responder")
    assert server_alt_names(responder, names) is None
    assert server_subject(responder, names).rfc4514_string() == "CN=koshin Signature CA CMP responder,O=koshin,C=JP"
    with pytest.raises(ValueError, match="stands for a server without"):
        ServerNames(dns=("koshin.test",), common_name="x")


def test_only_a_profile_that_states_no_alt_names_goes_without(tmp_path: Path) -> None:
    base = _copy(tmp_path)
    path = base / "certificate" / "tls-server.yaml"
    original = path.read_text()
    path.write_text(original.replace("subject_alt_name: [dns_name, ip_address]\n", ""))
    with pytest.raises(ProfileInvalid, match="subject_alt_name"):
        load_profiles(base)  # omitted is not "none"
    path.write_text(original.replace("subject_alt_name: [dns_name, ip_address]", "subject_alt_name: []"))
    with pytest.raises(ProfileInvalid, match="serverAuth certificate needs subject_alt_name"):
        load_profiles(base)
    path.write_text(original)
    responder = base / "certificate" / "cmp-responder.yaml"
    text = responder.read_text()
    responder.write_text(text.replace("issuing_ca: [signature, user-authentication]", "issuing_ca: [signature, tsa]"))
    with pytest.raises(ProfileInvalid, match="'tsa' is not in hierarchy"):
        load_profiles(base)
    responder.write_text(
        text.replace("issuing_ca: [signature, user-authentication]", "issuing_ca: [signature, signature]")
    )
    with pytest.raises(ProfileInvalid, match="one twice"):
        load_profiles(base)
    responder.write_text(text.replace("  - {attribute: CN, source: server_name}", "  - {attribute: OU, value: cmp}"))
    with pytest.raises(ProfileInvalid, match="needs a CN"):
        load_profiles(base)
    responder.write_text(text.replace("[cmc_ra]", "[cmc_ra, server_auth]"))
    with pytest.raises(ProfileInvalid, match="serverAuth"):
        load_profiles(base)
    holder = base / "certificate" / "user-authentication.yaml"
    responder.write_text(text)
    holder.write_text(holder.read_text().replace("[client_auth]", "[cmc_ra]"))
    with pytest.raises(ProfileInvalid, match="extended_key_usage"):
        load_profiles(base)  # holder profiles cannot name cmcRA
