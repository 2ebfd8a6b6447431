"""Auth: hashed tokens, libSQL-format Ed25519 JWTs, roles over HTTP, `edgestore token`."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgestore.auth import (
    Authenticator,
    Role,
    create_jwt,
    generate_keypair,
    hash_token,
    load_private_key,
)
from edgestore.cli.main import main as cli
from edgestore.config import Settings
from edgestore.errors import AuthError, ConfigError, PermissionDenied

from .conftest import AppFactory
from .test_sql_api import assert_error

RO, RW, ADMIN = "ro-secret", "rw-secret", "admin-secret"
TOKENS = (f"ro:{hash_token(RO)}", f"rw:{hash_token(RW)}", f"admin:{hash_token(ADMIN)}")


def keypair() -> tuple[Ed25519PrivateKey, str]:
    pem, public = generate_keypair()
    return load_private_key(pem), public


def test_no_auth_configured_means_admin() -> None:
    auth = Authenticator(Settings())
    assert not auth.enabled
    assert auth.authenticate(None) is Role.ADMIN
    assert Role.RO < Role.RW < Role.ADMIN


def test_hashed_tokens() -> None:
    auth = Authenticator(Settings(auth_tokens=TOKENS))
    assert auth.enabled
    assert auth.authenticate(RO) is Role.RO
    assert auth.authenticate(RW) is Role.RW
    assert auth.authenticate(ADMIN) is Role.ADMIN
    for bad in (None, "", "nope", hash_token(RO)):
        with pytest.raises(AuthError):
            auth.authenticate(bad)
    with pytest.raises(PermissionDenied):
        auth.authorize(RO, Role.RW)
    assert auth.authorize(ADMIN, Role.RW) is Role.ADMIN


def test_libsql_jwts() -> None:
    key, public = keypair()
    auth = Authenticator(Settings(jwt_public_key=public))
    assert auth.authenticate(create_jwt(key, access="ro")) is Role.RO
    assert auth.authenticate(create_jwt(key, access="rw", expires_in=60)) is Role.RW
    expired = create_jwt(key, access="rw", expires_in=10, now=time.time() - 100)
    with pytest.raises(AuthError, match="expired"):
        auth.authenticate(expired)
    other_key, _ = keypair()
    with pytest.raises(AuthError, match="signature"):
        auth.authenticate(create_jwt(other_key, access="rw"))
    # Tampering with the claims breaks the signature.
    head, _claims, sig = create_jwt(key, access="ro").split(".")
    forged = base64.urlsafe_b64encode(json.dumps({"a": "rw"}).encode()).rstrip(b"=").decode()
    with pytest.raises(AuthError):
        auth.authenticate(f"{head}.{forged}.{sig}")
    with pytest.raises(AuthError):
        auth.authenticate("a.b.c")


def test_jwt_key_formats_and_a_claim(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    from cryptography.hazmat.primitives import serialization

    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    auth = Authenticator(Settings(jwt_public_key=pem.decode()))
    assert auth.authenticate(create_jwt(key, access="ro")) is Role.RO
    with pytest.raises(ConfigError):
        Authenticator(Settings(jwt_public_key="not a key"))
    with pytest.raises(ConfigError):
        create_jwt(key, access="admin")


def test_token_cli_issues_both_kinds(tmp_path: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(cli, ["token", "create", "--role", "ro"])
    assert out.exit_code == 0, out.output
    lines = dict(line.split(":", 1) for line in out.output.strip().splitlines())
    token, entry = lines["token"].strip(), lines["auth_tokens"].strip()
    assert Authenticator(Settings(auth_tokens=(entry,))).authenticate(token) is Role.RO

    key_path = tmp_path / "jwt.pem"
    out = runner.invoke(cli, ["token", "keygen", "--out", str(key_path)])
    assert out.exit_code == 0, out.output
    public = out.output.split(":", 1)[1].strip()
    assert (key_path.stat().st_mode & 0o777) == 0o600
    out = runner.invoke(
        cli,
        [
            "token",
            "create",
            "--jwt",
            "--private-key",
            str(key_path),
            "--role",
            "rw",
            "--expires-in",
            "60",
        ],
    )
    assert out.exit_code == 0, out.output
    jwt = out.output.strip()
    assert Authenticator(Settings(jwt_public_key=public)).authenticate(jwt) is Role.RW
    assert runner.invoke(cli, ["token", "keygen", "--out", str(key_path)]).exit_code != 0
    assert runner.invoke(cli, ["token", "create", "--jwt"]).exit_code != 0
    assert (
        runner.invoke(
            cli, ["token", "create", "--jwt", "--private-key", str(key_path), "--role", "admin"]
        ).exit_code
        != 0
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_roles_over_http(app_client: AppFactory) -> None:
    key, public = keypair()
    client = app_client(auth_tokens=TOKENS, jwt_public_key=public)
    query: dict[str, Any] = {"sql": "SELECT 1"}
    write: dict[str, Any] = {"sql": "INSERT INTO items(name) VALUES ('a')"}

    r = client.post("/api/v1/query", json=query)
    assert_error(r, 401, "AuthError")
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert_error(client.post("/api/v1/query", json=query, headers=bearer("wrong")), 401)
    assert client.get("/health").status_code == 200  # liveness needs no token
    assert client.get("/health/ready").status_code == 200

    ro_jwt, rw_jwt = create_jwt(key, access="ro"), create_jwt(key, access="rw")
    for token in (RO, ro_jwt):
        assert client.post("/api/v1/query", json=query, headers=bearer(token)).status_code == 200
        assert client.get("/api/v1/tables/items/rows", headers=bearer(token)).status_code == 200
        assert client.get("/metrics", headers=bearer(token)).status_code == 200
        r = client.post("/api/v1/execute", json=write, headers=bearer(token))
        assert_error(r, 403, "PermissionDenied")
        r = client.post("/api/v1/tables/items/rows", json={"name": "a"}, headers=bearer(token))
        assert_error(r, 403)
        r = client.post("/api/v1/batch", json={"statements": [write]}, headers=bearer(token))
        assert_error(r, 403)
        r = client.post("/api/v1/batch", json={"statements": [query]}, headers=bearer(token))
        assert r.status_code == 200, r.text
    for token in (RW, rw_jwt):
        assert client.post("/api/v1/execute", json=write, headers=bearer(token)).status_code == 200
        r = client.post("/api/v1/memory/optimize", json={"level": "light"}, headers=bearer(token))
        assert_error(r, 403, "PermissionDenied")
        r = client.delete("/api/v1/memory/cache?target=query", headers=bearer(token))
        assert_error(r, 403)
    r = client.post("/api/v1/memory/optimize", json={"level": "light"}, headers=bearer(ADMIN))
    assert r.status_code == 200, r.text
    expired = create_jwt(key, access="rw", expires_in=1, now=time.time() - 60)
    assert_error(client.post("/api/v1/query", json=query, headers=bearer(expired)), 401)


def test_jwt_claim_semantics_match_sqld() -> None:
    """No ``a`` grants rw, exp/nbf are honoured, ``a`` never grants admin, EdDSA only, and the
    informational claims libSQL tokens carry (iat in the future, aud, id) do not refuse."""
    import jwt as pyjwt

    key, public = keypair()
    auth = Authenticator(Settings(jwt_public_key=public))
    now = int(time.time())

    def signed(claims: dict[str, Any]) -> str:
        return pyjwt.encode(claims, key, algorithm="EdDSA")

    assert auth.authenticate(signed({})) is Role.RW
    assert auth.authenticate(signed({"a": "ro", "aud": "x", "id": "db-1", "iat": now + 99})) is (
        Role.RO
    )
    with pytest.raises(AuthError, match="not yet valid"):
        auth.authenticate(signed({"a": "rw", "nbf": now + 3600}))
    with pytest.raises(AuthError, match="expired"):
        auth.authenticate(signed({"a": "rw", "exp": now - 1}))
    with pytest.raises(AuthError, match="access claim"):
        auth.authenticate(signed({"a": "admin"}))
    # HS256 "signed" with the public key text (algorithm confusion) is refused.
    forged = pyjwt.encode({"a": "rw"}, public.encode() * 2, algorithm="HS256")
    with pytest.raises(AuthError, match="algorithm"):
        auth.authenticate(forged)


def test_hashed_token_answers_are_remembered_for_valid_tokens_only() -> None:
    auth = Authenticator(Settings(auth_tokens=TOKENS))
    for _ in range(3):
        assert auth.authenticate(RW) is Role.RW
        with pytest.raises(AuthError):
            auth.authenticate("not-a-token")
    # Invalid tokens are never remembered (they cannot crowd the valid ones out), valid ones
    # once each; the bound holds whatever callers send.
    assert auth._token_cache == {RW: Role.RW}
    for i in range(3000):
        with pytest.raises(AuthError):
            auth.authenticate(f"guess-{i}")
    assert auth._token_cache == {RW: Role.RW}
    assert auth.authenticate(RO) is Role.RO
    with pytest.raises(PermissionDenied):
        auth.authorize(RO, Role.RW)
