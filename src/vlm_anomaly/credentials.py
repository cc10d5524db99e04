"""Who may use the dashboard: a password kept only as a scrypt hash, the API's tokens, a throttle.

Why here, under the settings: the settings validate a configured hash when they load (a typo fails
at start, not at the first login), the CLI makes hashes (``vlm-anomaly ui --hash-password``) and
decides whether the dashboard may start on an address, and the dashboard and the REST API compare
secrets with the same constant-time code.

A hash reads ``scrypt:N:r:p:SALT:KEY`` (hex salt and key): no ``$``, so it can sit in a compose
``.env`` file or an environment variable without being taken for a variable.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import ConfigError

#: scrypt cost: 32 MiB and about 0.1 s a check on one core (OWASP's minimum is N=2**17/r=8/p=1
#: for a server hashing many users' passwords; one owner's password behind a throttle needs less)
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
_MAX_N, _MAX_R, _MAX_P = 2**20, 32, 16  # a hash that asks for more memory than this is refused
MIN_PASSWORD_CHARS = 8


@dataclass(frozen=True)
class PasswordHash:
    """A parsed ``scrypt:N:r:p:SALT:KEY`` string."""

    n: int
    r: int
    p: int
    salt: bytes
    key: bytes

    @classmethod
    def parse(cls, text: str) -> PasswordHash:
        """Raises :class:`ConfigError` (never quoting ``text``) when it is not a hash this module made."""
        parts = str(text).strip().split(":")
        why = "expected scrypt:N:r:p:SALT:KEY as printed by `vlm-anomaly ui --hash-password`"
        if len(parts) != 6 or parts[0] != "scrypt":
            raise ConfigError(f"dashboard_password_hash is not a password hash ({why})")
        try:
            n, r, p = (int(x) for x in parts[1:4])
            salt, key = bytes.fromhex(parts[4]), bytes.fromhex(parts[5])
        except ValueError:
            raise ConfigError(f"dashboard_password_hash is malformed ({why})") from None
        if not (2 <= n <= _MAX_N and n & (n - 1) == 0 and 1 <= r <= _MAX_R and 1 <= p <= _MAX_P):
            raise ConfigError("dashboard_password_hash has scrypt parameters out of range "
                              f"(N a power of two up to {_MAX_N}, r up to {_MAX_R}, p up to {_MAX_P})")
        if len(salt) < 16 or len(key) < 32:
            raise ConfigError("dashboard_password_hash has a salt or key too short (16 and 32 bytes at least)")
        return cls(n, r, p, salt, key)

    def matches(self, password: str) -> bool:
        """Derive and compare in constant time (the derivation's cost does not depend on the password)."""
        return hmac.compare_digest(_scrypt(password, self.salt, self.n, self.r, self.p, len(self.key)), self.key)

    def __str__(self) -> str:
        return f"scrypt:{self.n}:{self.r}:{self.p}:{self.salt.hex()}:{self.key.hex()}"


def hash_password(password: str) -> str:
    """A new salted scrypt hash of ``password`` for the ``dashboard_password_hash`` setting."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise ConfigError(f"a dashboard password needs at least {MIN_PASSWORD_CHARS} characters")
    if password != password.strip() or any(ord(c) < 32 for c in password):
        raise ConfigError("a dashboard password may not start or end with spaces or hold control characters")
    salt = secrets.token_bytes(16)
    return str(PasswordHash(SCRYPT_N, SCRYPT_R, SCRYPT_P, salt, _scrypt(password, salt, SCRYPT_N, SCRYPT_R,
                                                                         SCRYPT_P, 32)))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8", "surrogatepass"), salt=salt, n=n, r=r, p=p, dklen=dklen,
                          maxmem=129 * n * r * p + 2**22)


def token_matches(given: str, tokens: Sequence[str]) -> bool:
    """True when ``given`` equals one of ``tokens``; every token is compared (no early exit)."""
    g = given.encode("utf-8", "surrogatepass")
    ok = False
    for t in tokens:
        ok |= hmac.compare_digest(g, t.encode("utf-8", "surrogatepass"))
    return ok and bool(tokens)


@dataclass(frozen=True)
class DashboardCredentials:
    """What opens the dashboard: the password behind ``dashboard_password_hash`` and/or any API token."""

    password: PasswordHash | None = None
    tokens: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings) -> DashboardCredentials:
        """From ``dashboard_password_hash`` and ``api_tokens`` (the API's tokens open the dashboard too)."""
        h = settings.dashboard_password_hash
        return cls(PasswordHash.parse(h) if h else None, tuple(t for t in settings.api_tokens if t))

    @property
    def configured(self) -> bool:
        return self.password is not None or bool(self.tokens)

    def check(self, secret: str) -> bool:
        """True when ``secret`` is the password or one of the tokens; both are always computed, so the
        time taken says nothing about which one (or whether either) is configured."""
        dummy = PasswordHash(SCRYPT_N, SCRYPT_R, SCRYPT_P, b"\0" * 16, b"\0" * 32)
        pw_ok = (self.password or dummy).matches(secret) and self.password is not None
        tok_ok = token_matches(secret, self.tokens)
        return bool(secret) and (pw_ok or tok_ok)


def is_loopback(address: str | None) -> bool:
    """True only for addresses that this machine alone can reach (``localhost``, 127.0.0.0/8, ::1).

    Anything else - ``0.0.0.0``, ``::``, a host name, an empty address (all interfaces) - is public.
    """
    a = (address or "").strip().strip("[]").lower()
    if a == "localhost":
        return True
    try:
        return ipaddress.ip_address(a).is_loopback
    except ValueError:
        return False


def dashboard_exposure(settings, address: str | None, *, insecure_no_auth: bool = False) -> str | None:
    """Why the dashboard may not start on ``address`` with ``settings`` (one line), or None when it may.

    It may when it listens on loopback only, when credentials are configured (then every page asks
    for them), or when the owner said ``--insecure-no-auth`` (setting ``dashboard_insecure_no_auth``).
    """
    if is_loopback(address) or insecure_no_auth or settings.dashboard_insecure_no_auth:
        return None
    if DashboardCredentials.from_settings(settings).configured:
        return None
    return (f"the dashboard would listen on {address or 'every interface'} with no login: set "
            "dashboard_password_hash (make one with `vlm-anomaly ui --hash-password`) or api_tokens, "
            "or pass --insecure-no-auth on a trusted network")


class LoginThrottle:
    """Failed logins per client: the first ``free`` are answered at once, then each further one locks
    the client out for ``base_s`` doubling up to ``max_s``; a success clears the count.

    Process-wide (shared by every browser session), so reloading the page does not reset it.
    """

    def __init__(self, free: int = 5, base_s: float = 30.0, max_s: float = 900.0, max_clients: int = 10000):
        self.free, self.base_s, self.max_s, self.max_clients = free, base_s, max_s, max_clients
        self._fails: dict[str, tuple[int, float]] = {}  # client -> (failures, locked until)
        self._lock = threading.Lock()

    def wait_s(self, client: str, now: float | None = None) -> float:
        """Seconds ``client`` must wait before its next try (0 = may try now)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            _, until = self._fails.get(client, (0, 0.0))
        return max(0.0, until - now)

    def failed(self, client: str, now: float | None = None) -> float:
        """Count a failure; returns the lock-out it starts (0 while within the free tries)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._fails) >= self.max_clients and client not in self._fails:
                self._fails.pop(next(iter(self._fails)))  # forget the oldest client, keep bounded
            n = self._fails.get(client, (0, 0.0))[0] + 1
            lock = 0.0 if n <= self.free else min(self.max_s, self.base_s * 2 ** (n - self.free - 1))
            self._fails[client] = (n, now + lock)
        return lock

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._fails.pop(client, None)


__all__ = ["DashboardCredentials", "LoginThrottle", "PasswordHash", "dashboard_exposure", "hash_password",
           "is_loopback", "token_matches"]
