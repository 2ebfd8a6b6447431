"""Bearer-token authentication, framework-free.

Two kinds of token are accepted, each mapping to a :class:`Role`:

* **hashed tokens**: ``settings.auth_tokens`` holds entries ``role:sha256hex``; a caller
  presenting a token whose SHA-256 hex digest matches an entry gets that role. Only digests are
  configured, so a leaked config file does not leak a usable token.
* **Ed25519 JWTs in the libSQL/Turso format** (``alg: EdDSA``), verified with
  ``settings.jwt_public_key`` by PyJWT. The claim ``a`` is ``"ro"`` or ``"rw"``; like sqld, a token
  without ``a`` means full (read-write) access. ``exp`` and ``nbf`` are honoured when present.
  JWTs never grant ``admin``: ops actions need a configured hashed admin token.

With neither configured, authentication is off and every caller is ``ADMIN``; ``edgestore
serve`` then binds loopback only (see ``edgestore.cli.serve``).
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import secrets
import time
from functools import cache
from typing import TYPE_CHECKING, Any

from .config import Settings, parse_jwt_public_key
from .errors import AuthError, ConfigError, PermissionDenied

# PyJWT and cryptography are imported where a key is used: loading them costs ~10 MB of RSS
# (cryptography's Rust extension and OpenSSL), which a server without JWT auth would carry
# for nothing.
if TYPE_CHECKING:
    import jwt
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

# Bound on remembered JWT verifications. Kept next to PyJWT on measurement
# (bench/bench_jwt.py): on a busy 2-core machine a PyJWT decode with its Ed25519 check took
# 360-590 us (the former hand-written decoder the same: the signature check dominates), an
# authenticate that hits this cache 1-1.5 us; a busy client reuses one token for every request.
_JWT_CACHE_MAX = 1024
# Bound on remembered hashed-token matches. A SHA-256 of the token and a constant-time compare
# against every configured digest cost ~1-2 µs a request (py-spy: ~2.5% of a served point
# read); a dict lookup of a token seen before costs ~0.1 µs. Only tokens that matched are kept
# (a stream of invalid ones cannot fill it), and the configured digests never change while the
# process runs, so a remembered answer cannot go stale.
_TOKEN_CACHE_MAX = 1024


@cache
def _pyjwt() -> jwt.PyJWT:
    """The JWT codec. It checks what sqld checks, and no more: the signature (EdDSA only), exp
    and nbf; iat, aud, sub and jti are informational in libSQL tokens (Turso's carry ``id``
    and sometimes ``aud``)."""
    import jwt

    return jwt.PyJWT(
        options={
            "verify_iat": False,
            "verify_aud": False,
            "verify_sub": False,
            "verify_jti": False,
            "require": [],
        }
    )


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


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def load_public_key(text: str) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM text or base64url of the raw 32 bytes (sqld accepts both)."""
    return parse_jwt_public_key(text)


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
    return _pyjwt().encode(claims, key, algorithm="EdDSA")


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
        self._token_cache: dict[str, Role] = {}
        self.enabled: bool = bool(self._hashed) or self._public_key is not None

    def authenticate(self, token: str | None) -> Role:
        """The role of ``token``; every caller is ADMIN when auth is not configured."""
        if not self.enabled:
            return Role.ADMIN
        if not token:
            raise AuthError("authentication required: send 'Authorization: Bearer <token>'")
        known_role = self._token_cache.get(token)
        if known_role is not None:
            return known_role
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
        if len(self._token_cache) >= _TOKEN_CACHE_MAX:
            self._token_cache.clear()
        self._token_cache[token] = found
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
        role, exp = self._decode_jwt(token)
        if len(self._jwt_cache) >= _JWT_CACHE_MAX:
            self._jwt_cache.clear()
        self._jwt_cache[token] = (role, exp)
        return role

    def _decode_jwt(self, token: str) -> tuple[Role, float | None]:
        import jwt

        assert self._public_key is not None
        try:
            claims = _pyjwt().decode(token, self._public_key, algorithms=["EdDSA"])
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.ImmatureSignatureError:
            raise AuthError("token not yet valid") from None
        except jwt.InvalidSignatureError:
            raise AuthError("invalid token signature") from None
        except jwt.InvalidAlgorithmError:
            raise AuthError("unsupported token algorithm (expected EdDSA)") from None
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"malformed token: {exc}") from None
        access = claims.get("a", "rw")  # sqld: a token without ``a`` grants full access
        if access == "ro":
            role = Role.RO
        elif access == "rw":
            role = Role.RW
        else:
            raise AuthError(f"unsupported access claim {access!r}")
        exp = claims.get("exp")
        return role, (float(exp) if exp is not None else None)
