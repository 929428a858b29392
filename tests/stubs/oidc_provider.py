"""A real OpenID Connect provider on loopback for tests: ``oidc-provider-mock`` in its own process.

``oidc-provider-mock`` (PyPI, requirements-dev.txt) is a complete OIDC provider built on Authlib's
server: discovery document, authorization code flow with an HTML form where the tester types the
subject, signed ID tokens (RS256, JWKS), userinfo and an end-session endpoint. It runs here with
``--require-registration`` (only a client registered through its dynamic registration endpoint,
with its exact redirect URI and secret, gets a token) and ``--require-nonce``.

    with OidcProvider.start(log_path) as idp:           # python -m oidc_provider_mock, free port
        client = idp.register_client("http://localhost:8501/oauth2callback")
        idp.set_user("alice", email="alice@example.com", email_verified=True)
        idp.metadata_url                                  # for [auth] server_metadata_url

Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class OidcClient:
    """A client registered at the provider (the values for the app's ``[auth]`` section)."""

    client_id: str
    client_secret: str
    redirect_uri: str


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class OidcProvider:
    url: str
    log: Path
    proc: subprocess.Popen[bytes]

    @property
    def metadata_url(self) -> str:
        return f"{self.url}/.well-known/openid-configuration"

    @classmethod
    @contextmanager
    def start(cls, log: Path) -> Iterator[OidcProvider]:
        """Run the provider on a free loopback port until the block ends."""
        port = _free_port()
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    sys.executable, "-m", "oidc_provider_mock",
                    "--host", "127.0.0.1", "--port", str(port),
                    "--require-registration", "true", "--require-nonce", "true",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "NO_COLOR": "1"},
            )  # fmt: skip
        provider = cls(url=f"http://127.0.0.1:{port}", log=log, proc=proc)
        try:
            provider._wait_ready()
            yield provider
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the OIDC provider exited with {self.proc.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.metadata_url, timeout=1.0) as resp:  # loopback only
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)  # polling interval, not a wait for a result
        raise RuntimeError(f"the OIDC provider did not answer within {START_TIMEOUT_S:.0f} s:\n{self.output()}")

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-6000:]
        except OSError:
            return "(no output)"

    def _request(self, method: str, path: str, payload: object) -> bytes:
        req = urllib.request.Request(
            f"{self.url}{path}",
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
            method=method,
        )
        with urllib.request.urlopen(req, timeout=5) as resp:  # loopback only
            body: bytes = resp.read()
            return body

    def register_client(self, redirect_uri: str) -> OidcClient:
        """Register a confidential client for ``redirect_uri`` (RFC 7591); its id and secret."""
        body = json.loads(self._request("POST", "/oauth2/clients", {"redirect_uris": [redirect_uri]}))
        return OidcClient(client_id=body["client_id"], client_secret=body["client_secret"], redirect_uri=redirect_uri)

    def set_user(self, subject: str, **claims: object) -> None:
        """Create or replace the identity ``subject`` with ``claims`` (e.g. email, email_verified)."""
        self._request("PUT", f"/users/{urllib.parse.quote(subject, safe='')}", claims)
