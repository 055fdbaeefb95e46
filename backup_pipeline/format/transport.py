"""Metadata transport layer, read side (SPEC §5.3, §5.4, §6.5).

Every user-metadata value passed through this on its way in: `null`/`undefined` literals,
`d:` dictionary codes, `z:`/`z85:` deflated text, `u:` URL encoding, `b:` base64. Node's
decoders never throw here (base64 is lenient, bad UTF-8 becomes U+FFFD, a bad `u:` or `z:`
value is kept as is), so neither do these.
"""

from __future__ import annotations

import binascii
import codecs
import re
import urllib.parse
import zlib

from ._js import UNDEFINED

# --- dictionaries (SPEC §5.4) ---------------------------------------------------------------

CONTENT_TYPE_DICT = {
    "application/json": "j", "application/xml": "X", "application/ld+json": "J",
    "text/html": "H", "text/plain": "T", "text/css": "C", "text/javascript": "V",
    "text/csv": "v", "image/png": "P", "image/jpeg": "I", "image/gif": "G",
    "image/svg+xml": "S", "image/webp": "W", "application/pdf": "Q", "application/zip": "z",
    "application/octet-stream": "o", "application/x-www-form-urlencoded": "u",
    "multipart/form-data": "F", "font/woff": "w", "font/woff2": "f",
}
STATUS_MESSAGE_DICT = {
    "processing": "p", "completed": "c", "succeeded": "s", "failed": "f", "cancelled": "x",
    "timeout": "t", "retrying": "r", "authorized": "a", "captured": "K", "refunded": "R",
    "declined": "d", "shipped": "h", "delivered": "D", "returned": "e", "in_transit": "i",
    "initialized": "n", "terminated": "m",
}
URL_PREFIX_DICT = {
    "/api/v1/": "@1", "/api/v2/": "@2", "/api/v3/": "@3", "/api/": "@a",
    "https://api.example.com/": "@A", "https://api.": "@H", "https://www.": "@W",
    "https://": "@h", "http://": "@t", "https://s3.amazonaws.com/": "@s", "https://s3-": "@S",
    "http://localhost:": "@L", "http://localhost": "@l", "/v1/": "@v", "/users/": "@u",
    "/products/": "@p",
}
# Status codes win on collisions, so 'd:f' (written for font/woff2) reads back as 'failed'.
VALUE_BY_CODE = {
    **{v: k for k, v in CONTENT_TYPE_DICT.items()},
    **{v: k for k, v in STATUS_MESSAGE_DICT.items()},
}
PREFIX_BY_CODE = {v: k for k, v in URL_PREFIX_DICT.items()}


def dictionary_decode(value: str) -> str | None:
    payload = value[2:]
    if not payload:
        return None
    if len(payload) == 1:
        hit = VALUE_BY_CODE.get(payload)
        if hit:
            return hit
    if payload.startswith("@"):
        prefix = PREFIX_BY_CODE.get(payload[:2])
        if prefix:
            return prefix + payload[2:]
    return None


# --- Node decoders --------------------------------------------------------------------------

_B64 = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}
_B64["-"] = 62  # Node also accepts the URL-safe alphabet
_B64["_"] = 63


def node_base64_decode(s: str) -> bytes:
    """`Buffer.from(s, 'base64')`: skips foreign characters, stops at '=', never throws."""
    if len(s) % 4 == 0 and s.isascii():
        try:  # canonical base64: the C decoder gives the same bytes, much faster
            return binascii.a2b_base64(s, strict_mode=True)
        except binascii.Error:
            pass
    n = len(s)
    if n and s[-1] == "=":
        n -= 1
        if n and s[n - 1] == "=":
            n -= 1
    cap = (n * 3) >> 2  # the buffer Node allocates before decoding
    out = bytearray()
    acc = 0
    cnt = 0
    for ch in s:
        v = _B64.get(ch)
        if v is None:
            if ch == "=":
                break
            continue
        acc = (acc << 6) | v
        cnt += 1
        if cnt >= 2:  # every character after the first of a group completes one byte
            if cnt == 2:
                out.append((acc >> 4) & 0xFF)
            elif cnt == 3:
                out.append((acc >> 2) & 0xFF)
            else:
                out.append(acc & 0xFF)
                acc = 0
                cnt = 0
    return bytes(out[:cap])


def utf8_decode(b: bytes) -> str:
    """`buf.toString('utf8')`: invalid sequences become U+FFFD."""
    return b.decode("utf-8", "replace")


_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def decode_uri_component(s: str) -> str:
    """JS `decodeURIComponent`; raises ValueError where JS throws URIError."""
    if "%" not in s:
        return s
    if _BAD_PERCENT.search(s):
        raise ValueError("URIError: URI malformed")
    if s.isascii() and "\\" not in s:
        # Every '%' starts a valid %XX escape (checked above) and there is no other backslash,
        # so escape_decode turns exactly the %XX escapes into bytes: the bytes unquote()
        # collects for an ASCII string, decoded the same way (UnicodeDecodeError is a
        # ValueError, like unquote's).
        return codecs.escape_decode(s.replace("%", "\\x").encode("ascii"))[0].decode("utf-8")
    return urllib.parse.unquote(s, encoding="utf-8", errors="strict")


BASE85_ALPHABET = (
    "!#$%&()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_abcdefghijklmnopqrstuvwxyz{|}~"
)
_B85 = {c: i for i, c in enumerate(BASE85_ALPHABET)}


def base85_decode(s: str) -> bytes:
    """s3db.js's own base85 (not Ascii85/Z85); unknown characters count as 0 like its table."""
    full, rem = divmod(len(s), 5)
    out = bytearray()

    def digit(c: str) -> float:
        if ord(c) >= 128:
            return float("nan")
        return _B85.get(c, 0)

    for g in range(full):
        val = 0.0
        for c in s[g * 5 : g * 5 + 5]:
            val = val * 85 + digit(c)
        v = 0 if val != val else int(val) % 4294967296
        out += v.to_bytes(4, "big")
    if rem:
        val = 0.0
        for c in s[full * 5 :]:
            val = val * 85 + digit(c)
        for _ in range(5 - rem):
            val = val * 85 + 84
        v = 0 if val != val else int(val) % 4294967296
        out += v.to_bytes(4, "big")[: rem - 1]
    return bytes(out)


def inflate_raw(data: bytes) -> bytes:
    """`zlib.inflateRawSync`; raises on corrupt or truncated streams."""
    d = zlib.decompressobj(-15)
    out = d.decompress(data) + d.flush()
    if not d.eof:
        raise ValueError("unexpected end of file")
    return out


def decompress_text(value: str) -> str:
    """`z85:`/`z:` compressed text (SPEC §5.3 rule 3); raises on corrupt payloads."""
    if value.startswith("z85:"):
        payload = value[4:]
        return "" if not payload else utf8_decode(inflate_raw(base85_decode(payload)))
    if value.startswith("z:"):
        payload = value[2:]
        return "" if not payload else utf8_decode(inflate_raw(node_base64_decode(payload)))
    return value


def decode_metadata_value(value):
    """One raw metadata string -> decoded value (str, None for null, UNDEFINED)."""
    if value == "null":
        return None
    if value == "undefined":
        return UNDEFINED
    if type(value) is not str or len(value) < 2 or value[1] != ":" and not value.startswith("z85:"):
        return value  # fast path: no transport prefix
    if value.startswith("d:"):
        hit = dictionary_decode(value)
        if hit is not None:
            return hit
    if value.startswith("z85:"):
        if len(value) <= 4:
            return value
        try:
            return decompress_text(value)
        except Exception:
            return value
    if value.startswith("z:"):
        if len(value) <= 2:
            return value
        try:
            return decompress_text(value)
        except Exception:
            return value
    if value[0] == "u":
        if len(value) == 2:
            return value
        try:
            return decode_uri_component(value[2:])
        except ValueError:
            return value
    if value[0] == "b":
        if len(value) == 2:
            return value
        return utf8_decode(node_base64_decode(value[2:]))
    return value


def decode_metadata(metadata: dict[str, str]) -> dict:
    """Decode every value, keeping the stored key order (it drives the record's key order)."""
    # Inlined fast path of decode_metadata_value: a string that is not a null/undefined
    # literal and has no transport prefix (no ':' second, no 'z85:') is returned as is.
    return {
        k: v
        if type(v) is str and v[1:2] != ":" and v != "null" and v != "undefined" and not v.startswith("z85:")
        else decode_metadata_value(v)
        for k, v in metadata.items()
    }
