"""Scenario ``peer-cfssl``: Cloudflare's ``cfssl serve`` sign endpoint under the same client harness as
``rest`` (client processes, one request after another each). Debian's golang-cfssl has no PKCS#11, so cfssl
signs with a file key of the same algorithm. Skipped, with a message, where cfssl is not installed."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from bench.context import BenchContext
from bench.servers import free_port, running
from bench.setup import holder_csr_pem
from bench.workers import measure
from hsm import admin

SCENARIO = "peer-cfssl"


def _file_ca(algorithm: str) -> tuple[bytes, bytes]:
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    key = ec.generate_private_key(ec.SECP256R1()) if algorithm == "p256" else rsa.generate_private_key(65537, 2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"cfssl bench CA {algorithm}")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def run(ctx: BenchContext) -> None:
    cfssl = shutil.which("cfssl")
    if cfssl is None:
        ctx.skip(SCENARIO, "cfssl is not installed (Debian package golang-cfssl; `make test` installs it)")
        return
    clients_list = (2,) if ctx.quick else (1, 2, 4)
    csr_pem = holder_csr_pem()
    for algorithm in ctx.algorithms:
        work = ctx.home.root / f"cfssl-{algorithm}"
        work.mkdir(exist_ok=True)
        cert_pem, key_pem = _file_ca(algorithm)
        (work / "ca.pem").write_bytes(cert_pem)
        admin.write_private_file(work / "ca-key.pem", key_pem.decode())
        port = free_port()
        args = [cfssl, "serve", "-address", "127.0.0.1", "-port", str(port),
                "-ca", str(work / "ca.pem"), "-ca-key", str(work / "ca-key.pem"), "-loglevel", "4"]  # fmt: skip
        with running(args, {"PATH": "/usr/bin:/bin"}, f"http://127.0.0.1:{port}/api/v1/cfssl/health", work / "log"):
            for clients in clients_list:
                params = {"base_url": f"http://127.0.0.1:{port}", "csr_pem": csr_pem}
                runs = measure("bench.http_clients:cfssl_client", params, clients, ctx.runs, seconds=ctx.seconds)
                ctx.add_rates(SCENARIO, f"{algorithm} c{clients}", runs, algorithm=algorithm, clients=clients)
