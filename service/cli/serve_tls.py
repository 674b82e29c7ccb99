"""``koshin serve --tls``: uvicorn on a private Unix socket behind stunnel, which holds the TLS session with
the server key on the token (service/tls/stunnel.py) and a ``tls-server`` certificate from koshin's own CA
(service/tls/credentials.py)."""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence
from types import FrameType

from service.bootstrap import token_config
from service.cli.context import console, runtime
from service.errors import ConfigurationError
from service.provisioning import provision
from service.settings import Settings
from service.tls.credentials import ensure_credentials
from service.tls.stunnel import StunnelSpec, Terminator


class Terminated(BaseException):
    """SIGTERM reached koshin serve --tls (after uvicorn's graceful shutdown)."""


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated


def serve_tls(settings: Settings, host: str, port: int, workers: int, names: Sequence[str]) -> None:
    import uvicorn

    from service.observability.logs import uvicorn_options
    from service.observability.metrics import share_between_workers

    settings = settings.model_copy(update={"behind_tls": True})  # EST simpleenroll checks it
    os.environ["KOSHIN_BEHIND_TLS"] = "true"  # the same for workers, which read their settings from the environment
    with runtime(create=True) as rt:  # initialise once, before any worker starts
        provision(rt)
        credentials = ensure_credentials(rt, names)
    token = token_config(settings, create=False)
    directory = settings.home / "tls" / "run"
    backend = directory / "backend.sock"
    spec = StunnelSpec(host, port, backend, credentials.chain_pem, credentials.key_uri, token.module_path,
                       token.pin, directory)  # fmt: skip
    terminator = Terminator(spec, on_give_up=lambda: os.kill(os.getpid(), signal.SIGTERM))
    certificate = credentials.certificate
    state = "reused" if credentials.reused else "issued"
    subject = certificate.subject.rfc4514_string()
    console.print(f"TLS certificate {state}: serial {certificate.serial_number:x}, {subject}, "
                  f"valid to {certificate.not_valid_after_utc:%Y-%m-%d}, chain {credentials.chain_pem}")  # fmt: skip
    console.print(f"TLS key on the token: {credentials.key_uri} (used by stunnel through the PKCS#11 engine)")
    backend.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    backend.unlink(missing_ok=True)
    terminator.start()
    console.print(f"koshin serving on https://{host}:{port}  (API docs: https://{host}:{port}/docs, /redoc)")
    # uvicorn re-raises the SIGTERM it shut down on once it has restored the previous handler: this handler
    # turns it into an exception, so stunnel is stopped (and reaped) here rather than orphaned.
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        if workers == 1:
            from service.api.app import create_app

            uvicorn.run(create_app(settings), uds=str(backend), **uvicorn_options())
        else:
            share_between_workers(settings.home / "run" / f"metrics-tls-{port}")
            uvicorn.run("service.api.app:create_app", factory=True, uds=str(backend), workers=workers,
                        **uvicorn_options())  # fmt: skip
    except Terminated:
        pass
    finally:
        terminator.stop()
        signal.signal(signal.SIGTERM, previous)
    if terminator.failed:
        raise ConfigurationError(f"stunnel kept failing; see {spec.log_path}")
