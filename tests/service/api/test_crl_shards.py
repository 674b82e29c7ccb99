"""GET /crl/{ca}/{shard}.crl serves the newest stored CRL of a shard and never signs; an unknown CA or a shard
out of range is a 404 problem, as an unknown CA is for the complete CRL."""

from __future__ import annotations

from cryptography import x509

from ca.profiles import load_profiles
from tests.support.api_world import Api

PROBLEM = "application/problem+json"


def test_every_shard_is_served_with_its_own_scope(api: Api) -> None:
    shards = load_profiles().hierarchy.crl_shards("signature")
    assert shards > 1
    base = api.runtime.urls
    for shard in (0, shards - 1):
        crls = len(api.runtime.repo.crls("signature", shard))
        response = api.client.get(f"/crl/signature/{shard}.crl")
        assert response.status_code == 200 and response.headers["content-type"] == "application/pkix-crl"
        crl = x509.load_der_x509_crl(response.content)
        idp = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint).value
        assert [n.value for n in idp.full_name or []] == [base.crl("signature", shard)]
        stored = api.runtime.repo.latest_crl("signature", shard)
        assert stored is not None and stored.crl_der == response.content
        assert len(api.runtime.repo.crls("signature", shard)) == crls  # a read never signs
    complete = x509.load_der_x509_crl(api.client.get("/crl/signature.crl").content)
    assert x509.IssuingDistributionPoint.oid not in [e.oid for e in complete.extensions]


def test_unknown_ca_or_shard_is_a_404_problem(api: Api) -> None:
    shards = load_profiles().hierarchy.crl_shards("signature")
    for path, needle in (
        (f"/crl/signature/{shards}.crl", "no CRL shard"),
        ("/crl/signature/-1.crl", "no CRL shard"),
        ("/crl/signature/x.crl", "no CRL shard"),
        ("/crl/root/0.crl", "root"),
        ("/crl/nope/0.crl", "nope"),
    ):
        response = api.client.get(path)
        assert response.status_code == 404, (path, response.text)
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["type"] == "/problems/not-found" and needle in response.json()["detail"], path
