"""Credentials out of everything the system shows: logs, errors, payloads, topics, folder names.

Why one module at the bottom of the package: a camera URL such as ``rtsp://user:pw@cam/1`` or a
database URL with a password reaches many places (MQTT topics, webhook bodies, event folders, the
API, the dashboard, error text, log lines). Every one of them goes through :func:`redact_url` (one
URL), :func:`redact_text` (free text that may hold URLs) or :func:`source_slug` (a topic/folder-safe
name), so there is one rule for what counts as a secret.

Why a parser and not a pattern: a password may hold quotes, spaces, ``@``, ``/`` or ``%``-escapes
(``rtsp://admin:pa'ss w@rd@cam/live``), and a pattern that ends a URL at the first quote or space
leaves the rest of the password readable. The user info is taken up to the *last* ``@`` that is
followed by a host, so a password is never cut short (text after such a URL may be masked with it:
showing too little is the safe side). Passwords and secret query values seen in any URL are also
remembered for the life of the process, so the same password quoted bare (an error message that
prints it without its URL, decoded from its ``%``-escapes) is masked too. :func:`install_log_redaction`
passes every log record of the process (uvicorn's access log included) through the same rule.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import OrderedDict
from urllib.parse import parse_qsl, quote, unquote

#: what replaces the user info (``user:password@``) and secret query values
MASK = "***"

# query parameters whose values are credentials (cameras often take ?user=..&password=..)
_SECRET_KEY = re.compile(r"pass|pwd|secret|token|key|auth|sig|credential|session|user|login", re.I)
# secret keys whose values are remembered and masked wherever they appear (not user names)
_REMEMBERED_KEY = re.compile(r"pass|pwd|secret|token|key|auth|sig|credential|session", re.I)
_URL_START = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
# where a host starts being a host: name or [IPv6], optional port, then the end of the authority
_HOST_AFTER_AT = re.compile(r"(?:[A-Za-z0-9._\-]+|\[[0-9A-Fa-f:.]+\])(?::\d*)?(?=$|[/?#\s'\"<>`),;\]])")
# characters that end the visible part of a URL inside free text (not inside a secret value)
_TEXT_END = set(" \t\r\n'\"<>`")
# a query value may hold quotes: inside a secret one only these end it (in free text, space too)
_VALUE_END = set("&;#")

#: secrets shorter than this are not searched for bare in free text (too many false matches)
MIN_REMEMBERED = 6
_REMEMBER_MAX = 512
_known: OrderedDict[str, None] = OrderedDict()
_known_lock = threading.Lock()


def _remember(secret: str) -> None:
    global _sorted_known
    plain = {secret, unquote(secret), unquote(secret.replace("+", " "))}
    # as repr() and JSON quote it too (an error message's {pw!r}, a JSON body): \' and \" escapes
    forms = plain | {repr(p)[1:-1] for p in plain} | {json.dumps(p)[1:-1] for p in plain}
    with _known_lock:
        for s in forms:
            if len(s) >= MIN_REMEMBERED and s != MASK:
                _known[s] = None
                _known.move_to_end(s)
        while len(_known) > _REMEMBER_MAX:
            _known.popitem(last=False)
        _sorted_known = None  # re-sorted on next use


def _userinfo_end(s: str, start: int, stop: int) -> int:
    """Index of the ``@`` that ends the user info of the URL whose authority starts at ``start``
    (``stop`` bounds the search), or -1 when it has none."""
    first = stop
    for ch in "/?#":
        i = s.find(ch, start, stop)
        if i != -1:
            first = min(first, i)
    authority = s[start:first]
    tail = authority.rsplit(":", 1)[1] if ":" in authority else ""
    has_userinfo = "@" in authority or (":" in authority and not tail.isdigit())
    if not has_userinfo:
        return -1
    # the last '@' followed by a host and then a port or a path wins (a password may hold '@' and
    # '/'); failing that the last one followed by a host at all
    strong = weak = -1
    at = s.find("@", start, stop)
    while at != -1:
        m = _HOST_AFTER_AT.match(s, at + 1, stop)
        if m:
            weak = at
            if ":" in m.group(0) or (m.end() < stop and s[m.end()] in "/?#"):
                strong = at
        at = s.find("@", at + 1, stop)
    best = strong if strong != -1 else weak
    if best == -1 and "@" in authority:
        best = start + authority.rindex("@")
    return best


def _scan_url(s: str, start: int, stop: int, *, in_text: bool, keep_masks: bool) -> tuple[str, int]:
    """(the redacted URL, index where it ended) for the URL at ``s[start:]``, at most to ``stop``."""
    m = _URL_START.match(s, start)
    assert m is not None
    out = [m.group(0)]
    opener = s[start - 1] if in_text and start > 0 and s[start - 1] in "'\"`" else ""
    i = m.end()
    at = _userinfo_end(s, i, stop)
    if at != -1:
        userinfo = s[i:at]
        if ":" in userinfo:
            _remember(userinfo.split(":", 1)[1])
        if keep_masks:
            out.append(f"{MASK}@")
        i = at + 1
    ends = _TEXT_END if in_text else set()
    # host and path
    j = i
    while j < stop and s[j] not in ends and s[j] != "?":
        j += 1
    out.append(s[i:j])
    i = j
    if i < stop and s[i] == "?":
        query: list[str] = []
        i += 1
        while True:
            k = i
            while k < stop and s[k] not in ends and s[k] not in "=&;#":
                k += 1
            key = s[i:k]
            if k < stop and s[k] == "=":
                v = k + 1
                secret = bool(_SECRET_KEY.search(unquote(key)))
                stops = (_VALUE_END | ({" ", "\t", "\r", "\n"} if in_text else set())) if secret \
                    else (_VALUE_END | ends)
                w = v
                while w < stop and s[w] not in stops:
                    w += 1
                if secret and in_text and opener and opener in s[v:w]:
                    # the quote that opened the URL closes it: "'...?password=pa'ss' (x)"
                    q = s.rindex(opener, v, w)
                    if all(c in ")]},.;:!" for c in s[q + 1 : w]):
                        w = q
                value = s[v:w]
                if secret and value:
                    if _REMEMBERED_KEY.search(unquote(key)):
                        _remember(value)
                    if keep_masks:
                        query.append(f"{key}={MASK}")
                else:
                    query.append(f"{key}={value}")
                k = w
            elif key:
                query.append(key)
            i = k
            if i < stop and s[i] in "&;":
                query.append(s[i])
                i += 1
                continue
            break
        text = "".join(query)
        if not keep_masks:  # drop separators left by removed items
            text = re.sub(r"[&;]{2,}", "&", text).strip("&;")
        if text or keep_masks:
            out.append("?" + text)
    if i < stop and s[i] == "#":
        j = i
        while j < stop and s[j] not in ends:
            j += 1
        out.append(s[i:j])
        i = j
    return "".join(out), i


def _clean(url: str, *, keep_masks: bool) -> str:
    if not _URL_START.match(url):  # not a URL; text that holds one is masked as free text
        return redact_text(url) if "://" in url else url
    _scan_url(url, 0, len(url), in_text=False, keep_masks=True)  # learn its secrets first
    url = _mask_known(url)  # a password repeated where the parser ends early (a query's '#')
    text, end = _scan_url(url, 0, len(url), in_text=False, keep_masks=keep_masks)
    return text + url[end:]


def redact_url(url: str | object) -> str:
    """``url`` with its user info and secret query values masked; other strings unchanged.

    Example:
        >>> redact_url("rtsp://admin:hunter2@cam.lan:554/live?channel=1&password=x")
        'rtsp://***@cam.lan:554/live?channel=1&password=***'
        >>> redact_url("rtsp://admin:pa'ss w@rd@cam.lan/live")
        'rtsp://***@cam.lan/live'
        >>> redact_url("/videos/lobby.mp4")
        '/videos/lobby.mp4'
    """
    return _clean(str(url), keep_masks=True)


_sorted_known: tuple[str, ...] | None = None


def _known_secrets() -> tuple[str, ...]:
    """The remembered secrets, longest first (sorted again only after one was added)."""
    global _sorted_known
    with _known_lock:
        if _sorted_known is None:
            _sorted_known = tuple(sorted(_known, key=len, reverse=True))
        return _sorted_known


def redact_text(text: str | object) -> str:
    """Free text (an error message, a log line) with every URL in it passed through
    :func:`redact_url`, and every password seen in a URL before masked where it stands bare."""
    s = str(text)
    if "://" in s:
        _scan_text(s)  # first learn the passwords this text holds, so none is masked only in part
        s = _scan_text(_mask_known(s))
    return _mask_known(s)


def _mask_known(s: str) -> str:
    for secret in _known_secrets():
        if secret in s:
            s = s.replace(secret, MASK)
    return s


def _scan_text(s: str) -> str:
    out: list[str] = []
    pos = 0
    for m in _URL_START.finditer(s):
        if m.start() < pos:
            continue  # inside the URL just redacted (a password holding "://")
        line_end = s.find("\n", m.start())
        stop = len(s) if line_end == -1 else line_end
        nxt = _next_url_start(s, m.end(), stop)
        red, end = _scan_url(s, m.start(), nxt, in_text=True, keep_masks=True)
        out.append(s[pos : m.start()])
        out.append(red)
        pos = end
    out.append(s[pos:])
    return "".join(out)


def _next_url_start(s: str, start: int, stop: int) -> int:
    """Where the next URL of a free text begins (one that follows a space, quote or bracket)."""
    for m in _URL_START.finditer(s, start, stop):
        if m.start() > 0 and s[m.start() - 1] in " \t'\"(<[,;=`":
            return m.start()
    return stop


def redact_query(query: str) -> str:
    """A URL's query string with every value decoded and passed through :func:`redact_text`.

    Why: a client may send a credentialed URL as a query value (``?source=rtsp%3A%2F%2F...``),
    %-encoded, where :func:`redact_text` sees no ``://``; an access log line must not keep it.
    """
    if not query:
        return query
    items = []
    for key, value in parse_qsl(query, keep_blank_values=True):
        shown = MASK if _SECRET_KEY.search(key) and value else redact_text(value)
        items.append(f"{quote(key, safe='')}={quote(shown, safe=':/@*,')}")
    return "&".join(items)


def source_slug(source: str | object) -> str:
    """A name of a source fit for MQTT topics and folder names: no credentials, no '/', '+', '#'.

    Example:
        >>> source_slug("rtsp://admin:hunter2@cam.lan/live?channel=1")
        'cam.lan_live_channel_1'
    """
    s = _clean(str(source), keep_masks=False)
    s = re.sub(r"^[A-Za-z][A-Za-z0-9+.\-]*://", "", s)
    s = re.sub(r"[^A-Za-z0-9_.-]+", "_", s).strip("_.")
    return s[-80:].lstrip("_.") or "source"


#: control characters but the line feed and the tab: C0, DEL and C1 (ESC, CSI, BEL, CR...)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str | object, *, keep_width: bool = False) -> str:
    r"""``text`` with its control characters (but line feeds and tabs) written as visible escapes
    (``keep_width``: each as one U+FFFD, for text already laid out in columns).

    Why: a file, camera or stream name is the user's or a stranger's (an uploaded file, a Frigate
    camera); printed raw on a terminal, an ESC in it could clear the screen, recolour or rewrite
    what is shown, and a carriage return overwrite a log line.

    Example:
        >>> printable("lobby\x1b[2J.mp4")
        'lobby\\x1b[2J.mp4'
    """
    if keep_width:
        return _CONTROL.sub("\ufffd", str(text))
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


# -- log records -------------------------------------------------------------------------------
_installed = False
_install_lock = threading.Lock()


def _redact_record(record: logging.LogRecord) -> None:
    """Rewrite a log record in place so that nothing it prints holds a credential."""
    try:
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            # uvicorn's access formatter unpacks these five arguments itself: keep their shape,
            # mask the request line's query (a ``?source=`` may carry a camera URL, %-encoded)
            args = list(record.args)
            base, sep, q = str(args[2]).partition("?")
            # decoded to be masked, then quoted again: a %0A in the path must not start a forged log line
            path = quote(redact_text(unquote(base)), safe="/:@*,;=+!$&'()~")
            args[2] = path + (f"?{redact_query(q)}" if sep else "")
            record.args = tuple(args)
            return
        msg = record.getMessage()
    except Exception:  # noqa: BLE001 - a bad format string is logging's to report, not ours
        return
    clean = printable(redact_text(msg))
    if clean != msg:
        record.msg, record.args = clean, None
    if record.exc_info and not record.exc_text:
        text = logging.Formatter().formatException(record.exc_info)
        record.exc_text = redact_text(text)
    if record.stack_info:
        record.stack_info = redact_text(record.stack_info)


def install_log_redaction() -> None:
    """Make every log record of this process pass through :func:`redact_text` when it is made.

    Why a record factory and not a handler filter: records reach handlers added later (uvicorn's,
    a test's, an operator's) and loggers' own filters do not see their children's records; the
    factory is the one place every record passes. Idempotent.
    """
    global _installed
    with _install_lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args, **kwargs) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            _redact_record(record)
            return record

        logging.setLogRecordFactory(factory)
        _installed = True


__all__ = [
    "MASK",
    "install_log_redaction",
    "printable",
    "redact_query",
    "redact_text",
    "redact_url",
    "source_slug",
]
