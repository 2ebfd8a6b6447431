"""What a web browser may do to this server: Host, Origin, body type, CORS.

A no-auth server on loopback is the default, and every web page the developer has open can
send requests to it. Browsers send some cross-origin requests without asking first (a POST
with a ``text/plain`` body, a WebSocket), so the server refuses them itself:

- **Host** (against DNS rebinding, where a hostile name resolves to 127.0.0.1): on a loopback
  bind, or whenever ``allowed_hosts`` is set, the Host header must be a loopback name, the
  bound address or an ``allowed_hosts`` entry (421 otherwise). A non-loopback bind requires
  auth (``edgestore serve`` enforces it), so there any Host is accepted unless configured.
- **Origin**: browsers name the page's origin on cross-origin requests. Unsafe methods and
  WebSocket upgrades are refused (403) unless the origin is the server's own (same host and
  port; the scheme is not compared, as a TLS-terminating proxy changes it) or listed in
  ``allowed_origins``. Requests without Origin (curl, libSQL clients) are not browsers'.
- **Body type**: a body sent with an unsafe method must be JSON (``application/json`` or
  ``application/*+json``), else 415. A missing Content-Type is accepted: the libSQL Rust
  client (the ``libsql`` package) sends none, and a browser request without one is
  cross-origin only with an Origin header, which the rule above refuses.
- **CORS**: off unless ``allowed_origins`` lists the origin; then preflights are answered
  and responses carry ``Access-Control-Allow-Origin`` for it (no credentials: edgestore
  authenticates with bearer tokens, not cookies).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from litestar.types import Send

from ..config import Settings, is_loopback_host
from ..errors import EdgestoreError, MisdirectedRequest, OriginRefused, UnsupportedMediaType
from .errors import NO_CONTENT

__all__ = ["BrowserPolicy"]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_WILDCARD_BINDS = frozenset({"0.0.0.0", "::", "[::]", ""})
# Routes of the libSQL sync protocol: their bodies are not JSON (pushes are refused anyway).
_NON_JSON_PREFIXES = ("/sync/",)
_PREFLIGHT_HEADERS = (
    b"authorization, content-type, x-edgestore-position, x-edgestore-accept-stale, if-none-match"
)
_PREFLIGHT_METHODS = b"GET, HEAD, POST, PUT, PATCH, DELETE"
_PREFLIGHT_MAX_AGE = b"600"
_HOST_VERDICTS_KEPT = 256


def _header(scope: Any, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


def _split_host(netloc: str) -> str:
    """The host name of ``host[:port]`` / ``[v6]:port``, lower-case, without brackets."""
    netloc = netloc.strip().lower()
    if netloc.startswith("["):
        return netloc[1 : netloc.find("]")] if "]" in netloc else netloc[1:]
    if netloc.count(":") == 1:
        return netloc.partition(":")[0]
    return netloc


def _normal_netloc(netloc: str, scheme: str) -> str:
    """``host:port`` with the scheme's default port made explicit, for comparisons."""
    netloc = netloc.strip().lower()
    after_host = netloc.rsplit("]", 1)[-1] if netloc.startswith("[") else netloc
    if after_host.count(":") == 1:
        return netloc
    return f"{netloc}:{443 if scheme in ('https', 'wss') else 80}"


class BrowserPolicy:
    """The Host / Origin / Content-Type / CORS rules of one app's settings."""

    def __init__(self, settings: Settings) -> None:
        allowed = {h.strip().lower() for h in settings.allowed_hosts if h.strip()}
        self._any_host = "*" in allowed or (not allowed and not is_loopback_host(settings.host))
        bound = settings.host.strip("[]").lower()
        if bound not in _WILDCARD_BINDS:
            allowed.add(bound)
        self._hosts = frozenset(h for h in allowed if not h.startswith("."))
        self._host_suffixes = tuple(h for h in allowed if h.startswith("."))
        origins = {o.strip().lower() for o in settings.allowed_origins if o.strip()}
        self._any_origin = "*" in origins
        self._origins = frozenset(origins - {"*"})
        self._cors = bool(origins)
        # Host header -> allowed?, for the few names a server really sees (bounded: the
        # header is the caller's to choose).
        self._host_verdicts: dict[bytes, bool] = {}

    # -- the rules -------------------------------------------------------------------------

    def host_allowed(self, host: str) -> bool:
        if self._any_host:
            return True
        name = _split_host(host)
        if name in self._hosts or name.endswith(self._host_suffixes):
            return True
        if name == "localhost" or name.endswith(".localhost"):
            return True
        try:
            return ipaddress.ip_address(name).is_loopback
        except ValueError:
            return False

    def origin_listed(self, origin: str) -> bool:
        return self._any_origin or origin.lower() in self._origins

    def origin_allowed(self, origin: str, scope: Any) -> bool:
        if self.origin_listed(origin):
            return True
        scheme, sep, netloc = origin.lower().partition("://")
        host = _header(scope, b"host")
        if not sep or host is None or "/" in netloc:
            return False  # "null" (sandboxed pages, file:) or malformed
        return _normal_netloc(netloc, scheme) == _normal_netloc(host.decode("latin-1"), scheme)

    def _host_ok(self, host: bytes) -> bool:
        verdict = self._host_verdicts.get(host)
        if verdict is None:
            verdict = self.host_allowed(host.decode("latin-1"))
            if len(self._host_verdicts) < _HOST_VERDICTS_KEPT:
                self._host_verdicts[host] = verdict
        return verdict

    def refusal(self, scope: Any) -> EdgestoreError | None:
        """Why this request (HTTP or WebSocket) is refused, or None."""
        host = None if self._any_host else _header(scope, b"host")
        if host is not None and not self._host_ok(host):
            return MisdirectedRequest(
                f"host {host.decode('latin-1')!r} is not served here; add it to "
                "allowed_hosts if it names this server"
            )
        websocket = str(scope["type"]) == "websocket"
        method = "GET" if websocket else scope["method"]
        if method in _SAFE_METHODS and not websocket:
            return None
        raw_origin = _header(scope, b"origin")
        if raw_origin is not None:
            origin = raw_origin.decode("latin-1")
            if not self.origin_allowed(origin, scope):
                what = "WebSocket connections" if websocket else f"{method} requests"
                return OriginRefused(
                    f"{what} from origin {origin!r} are refused; add it to allowed_origins "
                    "to allow that web page"
                )
        if not websocket and _has_body(scope) and not _json_body_ok(scope):
            return UnsupportedMediaType(
                "request bodies must be JSON: send Content-Type: application/json"
            )
        return None

    # -- CORS ------------------------------------------------------------------------------

    def cors_origin(self, scope: Any) -> bytes | None:
        """The Origin to echo in Access-Control-Allow-Origin, if this one is allowed."""
        if not self._cors:
            return None
        origin = _header(scope, b"origin")
        if origin is None or not self.origin_listed(origin.decode("latin-1")):
            return None
        return origin

    async def answer_preflight(self, scope: Any, send: Send) -> bool:
        """Answer a CORS preflight from an allowed origin; False for anything else. ``send``
        adds the Allow-Origin headers (see :meth:`add_cors_headers`)."""
        if scope["method"] != "OPTIONS" or _header(scope, b"access-control-request-method") is None:
            return False
        if self.cors_origin(scope) is None:
            return False  # no CORS headers: the browser will not send the real request
        await send(
            {
                "type": "http.response.start",
                "status": NO_CONTENT,
                "headers": [
                    (b"access-control-allow-methods", _PREFLIGHT_METHODS),
                    (b"access-control-allow-headers", _PREFLIGHT_HEADERS),
                    (b"access-control-max-age", _PREFLIGHT_MAX_AGE),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return True

    @staticmethod
    def add_cors_headers(message: Any, origin: bytes) -> None:
        headers: Iterable[tuple[bytes, bytes]] = message.get("headers", ())
        message["headers"] = [
            *headers,
            (b"access-control-allow-origin", origin),
            (b"access-control-expose-headers", b"etag, x-edgestore-position, retry-after"),
            (b"vary", b"Origin"),
        ]


def _has_body(scope: Any) -> bool:
    length = _header(scope, b"content-length")
    if length is not None:
        return length.strip() not in (b"", b"0")
    return _header(scope, b"transfer-encoding") is not None


def _json_body_ok(scope: Any) -> bool:
    if scope.get("path", "").startswith(_NON_JSON_PREFIXES):
        return True
    content_type = _header(scope, b"content-type")
    if content_type is None or not content_type.strip():
        return True
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )
