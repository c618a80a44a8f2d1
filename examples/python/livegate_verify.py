"""Verification of the signed requests a livegate gateway in proxy mode
sends to its backend (docs/proxy.md). Standard library only.

    canonical = METHOD "\\n" REQUEST-URI "\\n" TIMESTAMP "\\n" NONCE "\\n" hex(SHA-256(body))
    Livegate-Signature = "v1=" + hex(HMAC-SHA256(secret, canonical))
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
import time
from collections import OrderedDict
from typing import Callable, Iterable, Mapping, Optional, Union

DEFAULT_MAX_SKEW_SECONDS = 300
DEFAULT_MAX_NONCES = 100_000
MIN_SECRET_BYTES = 32

_TS = re.compile(r"[0-9]{1,12}")
_NONCE = re.compile(r"[A-Za-z0-9_-]{21}[AQgw]")
_SIG = re.compile(r"v1=([0-9a-f]{64})")


class LivegateVerifyError(Exception):
    """A refused request; code is "bad_signature", "stale" or "replayed"."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class NonceCache:
    """Remembers the nonces of accepted requests until their timestamps
    leave the skew window, holding at most max_nonces. When an unexpired
    nonce must make room, every later request no newer than it is refused
    as replayed, so the bound never lets a replay through. Thread-safe."""

    def __init__(self, max_nonces: int = DEFAULT_MAX_NONCES):
        self.max = max_nonces
        self.seen: "OrderedDict[str, int]" = OrderedDict()
        self.floor = -1
        self._lock = threading.Lock()

    def add(self, nonce: str, ts: int, oldest: int) -> None:
        with self._lock:
            for n in [n for n, t in self.seen.items() if t < oldest]:
                del self.seen[n]
            if nonce in self.seen:
                raise LivegateVerifyError("replayed", "nonce already used")
            if ts <= self.floor:
                raise LivegateVerifyError("replayed", "nonce cache full for this time")
            while len(self.seen) >= self.max:
                n, t = min(self.seen.items(), key=lambda kv: kv[1])
                del self.seen[n]
                self.floor = max(self.floor, t)
            if ts <= self.floor:
                raise LivegateVerifyError("replayed", "nonce cache full for this time")
            self.seen[nonce] = ts


_default_cache = NonceCache()


def canonical_string(method: str, request_uri: str, timestamp: str, nonce: str, body: bytes) -> str:
    """The string the gateway signs."""
    return "\n".join([method, request_uri, timestamp, nonce, hashlib.sha256(body).hexdigest()])


def _header(headers, name: str) -> Optional[str]:
    if hasattr(headers, "get_all"):  # http.client.HTTPMessage / email.message.Message
        values = headers.get_all(name) or []
    else:
        v = headers.get(name, headers.get(name.lower()))
        values = [] if v is None else (list(v) if isinstance(v, (list, tuple)) else [v])
    return values[0] if len(values) == 1 else None


def verify_livegate_request(
    method: str,
    request_uri: str,
    headers: Mapping,
    body: bytes,
    secret: Union[str, bytes, Iterable[Union[str, bytes]]],
    *,
    max_skew_seconds: int = DEFAULT_MAX_SKEW_SECONDS,
    cache: Optional[NonceCache] = None,
    now: Optional[Callable[[], float]] = None,
) -> None:
    """Verifies a request from the gateway; raises LivegateVerifyError.

    method and request_uri are the request line's (BaseHTTPRequestHandler's
    self.command and self.path); headers its headers; body the exact raw
    body, read with a size limit; secret the shared secret (at least 32
    bytes) or a list of two during rotation. The signature is checked
    first (a tampered timestamp is a bad signature), then the timestamp's
    freshness ("stale"), then the nonce ("replayed").
    """
    raw = [secret] if isinstance(secret, (str, bytes)) else list(secret)
    secrets = [s.encode() if isinstance(s, str) else bytes(s) for s in raw]
    if not 1 <= len(secrets) <= 2 or any(len(s) < MIN_SECRET_BYTES for s in secrets):
        raise ValueError("livegate: need one or two secrets of at least %d bytes" % MIN_SECRET_BYTES)
    cache = _default_cache if cache is None else cache
    now_s = int((now or time.time)())

    ts = _header(headers, "Livegate-Timestamp")
    nonce = _header(headers, "Livegate-Nonce")
    sig = _header(headers, "Livegate-Signature")
    if ts is None or nonce is None or sig is None:
        raise LivegateVerifyError("bad_signature", "missing or repeated signature header")
    if not _TS.fullmatch(ts):
        raise LivegateVerifyError("bad_signature", "malformed timestamp")
    if not _NONCE.fullmatch(nonce):
        raise LivegateVerifyError("bad_signature", "malformed nonce")
    m = _SIG.fullmatch(sig)
    if not m:
        raise LivegateVerifyError("bad_signature", "malformed signature")
    got = bytes.fromhex(m.group(1))

    canonical = canonical_string(method, request_uri, ts, nonce, body).encode()
    ok = False
    for s in secrets:
        if hmac.compare_digest(hmac.new(s, canonical, hashlib.sha256).digest(), got):
            ok = True
    if not ok:
        raise LivegateVerifyError("bad_signature", "signature mismatch")

    t = int(ts)
    if t < now_s - max_skew_seconds or t > now_s + max_skew_seconds:
        raise LivegateVerifyError("stale", "timestamp outside the allowed skew")
    cache.add(nonce, t, now_s - max_skew_seconds)
