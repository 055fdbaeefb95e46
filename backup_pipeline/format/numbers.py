"""Number codecs shared by several types (SPEC §6.1): base62, base36 keys, decimals, fixed point.

Decoders return JS numbers as Python floats (NaN for "not a number"), accumulating exactly
as s3db.js does in doubles; records are normalised to ints for output by `to_json_compatible`.
"""

from __future__ import annotations

from ._js import NAN, number_from_string, number_to_string

BASE62_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
BASE36_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_B62 = {c: i for i, c in enumerate(BASE62_ALPHABET)}
_B36 = {c: i for i, c in enumerate(BASE36_ALPHABET)}
_EXACT = 2.0**53


def base62_decode(s: str) -> float:
    """Base62 integer: optional leading '-', '' -> 0, any foreign character -> NaN."""
    if s == "":
        return 0.0
    neg = s[0] == "-"
    body = s[1:] if neg else s
    if len(body) <= 8:  # 62**8 < 2**53: exact in ints, identical to JS's doubles
        r = 0
        for ch in body:
            i = _B62.get(ch)
            if i is None:
                return NAN
            r = r * 62 + i
        f = float(r)
    else:  # longer strings: accumulate in doubles exactly like JS does
        f = 0.0
        for ch in body:
            i = _B62.get(ch)
            if i is None:
                return NAN
            f = f * 62 + i
    return -f if neg else f


def encode_key(n) -> str:
    """Registry index -> base36 short key (SPEC §4.1); non-numbers give 'undefined' like JS."""
    if isinstance(n, bool) or not isinstance(n, (int, float)) or n != n:
        return "undefined"
    if n in (float("inf"), float("-inf")):
        return "undefined"
    if n == 0:
        return "0"
    if n < 0:
        return "-" + encode_key(-(n // 1))
    n = int(n // 1)
    s = ""
    while n:
        s = BASE36_ALPHABET[n % 36] + s
        n //= 36
    return s


def decode_key(s: str) -> float:
    if s == "":
        return 0.0
    neg = s[0] == "-"
    r = 0
    for ch in s[1:] if neg else s:
        i = _B36.get(ch)
        if i is None:
            return NAN
        r = r * 36 + i
    return float(-r if neg else r)


def decode_decimal(s) -> float:
    """base62 decimal: base62 integer part + decimal digits kept verbatim (SPEC §6.1)."""
    if type(s) is not str:
        return NAN
    neg = s[:1] == "-"
    body = s[1:] if neg else s
    parts = body.split(".")
    int_part = base62_decode(parts[0])
    if int_part != int_part:
        return NAN
    dec = parts[1] if len(parts) > 1 else ""
    if not dec:
        num = int_part
    elif -_EXACT < int_part < _EXACT and dec.isdigit() and dec.isascii():
        # number_to_string prints an integral double below 2**53 as its exact integer, and
        # Number("<digits>.<digits>") is float() of the same text
        num = float(f"{int(int_part)}.{dec}")
    else:
        num = number_from_string(number_to_string(int_part) + "." + dec)
    return -num if neg else num


def _scale(precision: int) -> float:
    return float(10**precision)


def decode_fixed_point(s, precision: int = 6) -> float:
    """`^`-prefixed fixed point: ±base62 / 10**precision (a float division)."""
    if type(s) is not str or not s.startswith("^"):
        return NAN
    body = s[1:]
    if body == "0":
        return 0.0
    neg = body[:1] == "-"
    if neg:
        body = body[1:]
    r = 0.0
    for ch in body:
        i = _B62.get(ch)
        if i is None:
            return NAN
        r = r * 62 + i
    return (-r if neg else r) / _scale(precision)


def decode_fixed_point_batch(s, precision: int = 6) -> list:
    """`^[a,b,…]` batches (embeddings): '0' -> 0, '' -> NaN."""
    if type(s) is not str or not s.startswith("^["):
        return []
    inner = s[2:-1]
    if inner == "":
        return []
    scale = _scale(precision)
    out = []
    for part in inner.split(","):
        if part == "0":
            out.append(0.0)
            continue
        if part == "":
            out.append(NAN)
            continue
        neg = part[0] == "-"
        body = part[1:] if neg else part
        r = 0.0
        for ch in body:
            i = _B62.get(ch)
            if i is None:
                r = NAN
                break
            r = r * 62 + i
        out.append((-r if neg else r) / scale)
    return out
