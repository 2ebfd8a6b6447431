"""``edgestore token``: issue bearer tokens (hashed opaque tokens or Ed25519 JWTs)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..auth import Role, create_jwt, generate_keypair, hash_token, load_private_key, new_token
from ..errors import ConfigError


@click.group()
def token() -> None:
    """Issue tokens for the HTTP API and libSQL clients."""


@token.command("create")
@click.option(
    "--role",
    type=click.Choice(["ro", "rw", "admin"]),
    default="rw",
    show_default=True,
    help="What the token may do: ro (reads), rw (plus writes), admin (plus ops actions).",
)
@click.option(
    "--jwt",
    "as_jwt",
    is_flag=True,
    help="Issue an Ed25519 JWT in the libSQL/Turso format instead of an opaque token.",
)
@click.option(
    "--private-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="PEM file of the Ed25519 private key that signs JWTs (see 'token keygen').",
)
@click.option(
    "--expires-in",
    type=float,
    default=None,
    help="JWT lifetime in seconds (default: no expiry).",
)
def create(role: str, as_jwt: bool, private_key: Path | None, expires_in: float | None) -> None:
    """Print a new token.

    Opaque tokens: the token goes to the client, the printed ``auth_tokens`` entry (a SHA-256
    digest, not the token) goes to the server's configuration (EDGESTORE_AUTH_TOKENS,
    comma-separated). JWTs: verified by the server with ``jwt_public_key``.
    """
    if as_jwt:
        if private_key is None:
            raise click.UsageError("--jwt needs --private-key (create one with 'token keygen')")
        if Role.parse(role) is Role.ADMIN:
            raise click.UsageError("JWTs carry ro or rw only; use an opaque token for admin")
        try:
            key = load_private_key(private_key.read_bytes())
        except (OSError, ConfigError) as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(create_jwt(key, access=role, expires_in=expires_in))
        return
    if expires_in is not None:
        raise click.UsageError("--expires-in applies to --jwt tokens only")
    value = new_token()
    click.echo(f"token:       {value}")
    click.echo(f"auth_tokens: {role}:{hash_token(value)}")


@token.command("keygen")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the private key (PEM, mode 0600).",
)
def keygen(out: Path) -> None:
    """Create an Ed25519 key pair for JWTs; prints the public key for ``jwt_public_key``."""
    pem, public = generate_keypair()
    if out.exists():
        raise click.ClickException(f"{out} exists; refusing to overwrite a key")
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    click.echo(f"jwt_public_key: {public}")
