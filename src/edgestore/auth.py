"""Bearer-token authentication, framework-free.

Two kinds of token are accepted, each mapping to a :class:`Role`:

* **hashed tokens**: ``settings.auth_tokens`` holds entries ``role:sha256hex``; a caller
  presenting a token whose SHA-256 hex digest matches an entry gets that role. Only digests are
  configured, so a leaked config file does not leak a usable token.
* **Ed25519 JWTs in the libSQL/Turso format** (``alg: EdDSA``), verified with
  ``settings.jwt_public_key``. The claim ``a`` is ``"ro"`` or ``"rw"``; like sqld, a token
  without ``a`` means full (read-write) access. ``exp`` and ``nbf`` are honoured when present.
  JWTs never grant ``admin``: ops actions need a configured hashed admin token.

With neither configured, authentication is off and every caller is ``ADMIN``; ``edgestore
serve`` then binds loopback only (see ``edgestore.cli.serve``).
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .config import Settings
from .errors import AuthError, ConfigError, PermissionDenied

# cryptography is imported where a key is used: loading it costs ~10 MB of RSS (its Rust
# extension and OpenSSL), which a server without JWT auth would carry for nothing.
if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

__all__ = [
    "Authenticator",
    "Role",
    "create_jwt",
    "generate_keypair",
    "hash_token",
    "load_private_key",
    "load_public_key",
    "new_token",
]

# Bound on remembered JWT verifications: a verify costs ~50 µs, a dict hit ~0.1 µs, and a
# busy client reuses one token for every request.
_JWT_CACHE_MAX = 1024


class Role(enum.IntEnum):
    """What a caller may do; a higher role includes every lower one."""

    RO = 1  # reads and cache reads
    RW = 2  # plus writes
    ADMIN = 3  # plus ops actions (memory optimize / clear, ...)

    @classmethod
    def parse(cls, name: str) -> Role:
        """``"ro"`` / ``"rw"`` / ``"admin"`` (case-insensitive) to a Role."""
        try:
            return _ROLE_NAMES[name.strip().lower()]
        except KeyError:
            raise ConfigError(f"unknown role {name!r}: expected ro, rw or admin") from None

    @property
    def label(self) -> str:
        return self.name.lower()


_ROLE_NAMES = {"ro": Role.RO, "rw": Role.RW, "admin": Role.ADMIN}


def hash_token(token: str) -> str:
    """The SHA-256 hex digest configured in ``auth_tokens`` for ``token``."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A fresh random opaque token (256 bits, URL-safe)."""
    return "es_" + secrets.token_urlsafe(32)


def _b64url_decode(text: str) -> bytes:
    pad = "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(text + pad)


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def load_public_key(text: str) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM text or base64url of the raw 32 bytes (sqld accepts both)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode("ascii"))
            if not isinstance(key, Ed25519PublicKey):
                raise ConfigError("jwt_public_key is not an Ed25519 key")
            return key
        return Ed25519PublicKey.from_public_bytes(_b64url_decode(text))
    except (ValueError, binascii.Error, TypeError) as exc:
        raise ConfigError(f"jwt_public_key is not a valid Ed25519 public key: {exc}") from exc


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    """An Ed25519 private key from unencrypted PEM (PKCS#8)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"not a valid unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError("the private key is not an Ed25519 key")
    return key


def generate_keypair() -> tuple[bytes, str]:
    """A new Ed25519 key pair: (private key PEM, public key as base64url raw bytes)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return pem, _b64url_encode(raw)


def create_jwt(
    key: Ed25519PrivateKey,
    *,
    access: str = "rw",
    expires_in: float | None = None,
    now: float | None = None,
) -> str:
    """A libSQL-format JWT (``alg: EdDSA``, claim ``a``) signed with ``key``."""
    if access not in ("ro", "rw"):
        raise ConfigError(f"JWT access must be 'ro' or 'rw', not {access!r}")
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {"iat": issued, "a": access}
    if expires_in is not None:
        claims["exp"] = issued + int(expires_in)
    header = {"alg": "EdDSA", "typ": "JWT"}
    signing_input = (
        _b64url_encode(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64url_encode(json.dumps(claims, separators=(",", ":")).encode())
    )
    signature = key.sign(signing_input.encode("ascii"))
    return signing_input + "." + _b64url_encode(signature)


class Authenticator:
    """Turns the bearer token of a request into a :class:`Role` (or raises :class:`AuthError`)."""

    def __init__(self, settings: Settings) -> None:
        self._hashed: dict[str, Role] = {}
        for entry in settings.auth_tokens:
            role, _, digest = entry.partition(":")
            self._hashed[digest.lower()] = Role.parse(role)
        self._public_key = (
            load_public_key(settings.jwt_public_key) if settings.jwt_public_key else None
        )
        self._jwt_cache: dict[str, tuple[Role, float | None]] = {}
        self.enabled: bool = bool(self._hashed) or self._public_key is not None

    def authenticate(self, token: str | None) -> Role:
        """The role of ``token``; every caller is ADMIN when auth is not configured."""
        if not self.enabled:
            return Role.ADMIN
        if not token:
            raise AuthError("authentication required: send 'Authorization: Bearer <token>'")
        if token.count(".") == 2 and self._public_key is not None:
            return self._verify_jwt(token)
        digest = hash_token(token)
        # compare_digest against every entry: constant time in the token, so response timing
        # does not reveal how much of a digest matched.
        found: Role | None = None
        for known, role in self._hashed.items():
            if hmac.compare_digest(known, digest):
                found = role
        if found is None:
            raise AuthError("invalid token")
        return found

    def authorize(self, token: str | None, needed: Role) -> Role:
        """Authenticate and require at least ``needed``; raises PermissionDenied otherwise."""
        role = self.authenticate(token)
        if role < needed:
            raise PermissionDenied(
                f"this needs the {needed.label!r} role; the token is {role.label!r}"
            )
        return role

    def _verify_jwt(self, token: str) -> Role:
        now = time.time()
        hit = self._jwt_cache.get(token)
        if hit is not None:
            role, exp = hit
            if exp is None or now < exp:
                return role
            del self._jwt_cache[token]
            raise AuthError("token expired")
        role, exp = self._decode_jwt(token, now)
        if len(self._jwt_cache) >= _JWT_CACHE_MAX:
            self._jwt_cache.clear()
        self._jwt_cache[token] = (role, exp)
        return role

    def _decode_jwt(self, token: str, now: float) -> tuple[Role, float | None]:
        from cryptography.exceptions import InvalidSignature

        assert self._public_key is not None
        head_b64, claims_b64, sig_b64 = token.split(".")
        try:
            header = json.loads(_b64url_decode(head_b64))
            claims = json.loads(_b64url_decode(claims_b64))
            signature = _b64url_decode(sig_b64)
        except (ValueError, binascii.Error) as exc:
            raise AuthError("malformed token") from exc
        if not isinstance(header, Mapping) or header.get("alg") not in ("EdDSA", "Ed25519"):
            raise AuthError("unsupported token algorithm (expected EdDSA)")
        try:
            self._public_key.verify(signature, f"{head_b64}.{claims_b64}".encode("ascii"))
        except InvalidSignature:
            raise AuthError("invalid token signature") from None
        if not isinstance(claims, Mapping):
            raise AuthError("malformed token claims")
        exp = claims.get("exp")
        nbf = claims.get("nbf")
        if exp is not None and (not isinstance(exp, int | float) or now >= exp):
            raise AuthError("token expired")
        if nbf is not None and (not isinstance(nbf, int | float) or now < nbf):
            raise AuthError("token not yet valid")
        access = claims.get("a", "rw")
        if access == "ro":
            role = Role.RO
        elif access == "rw":
            role = Role.RW
        else:
            raise AuthError(f"unsupported access claim {access!r}")
        return role, (float(exp) if exp is not None else None)
