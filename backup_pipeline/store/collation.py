"""The order s3db.js's filesystem client lists keys in: JS `localeCompare` (ICU root collation).

An approximation good for ASCII and Latin text: compare base letters case- and accent-
insensitively first (punctuation before digits before letters, in ICU's order), then accents,
then case with lower-case first. Order is cosmetic for backup and restore; it matters only
for printing records in the order s3db.js itself would.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

# ICU root order of ASCII punctuation and symbols (all sort before digits and letters).
_PUNCTUATION = " _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$"
_PUNCT_RANK = {c: i for i, c in enumerate(_PUNCTUATION)}


@lru_cache(maxsize=65536)
def _char_weights(ch: str) -> tuple[tuple[int, int], int, int]:
    if ch in _PUNCT_RANK:
        return (0, _PUNCT_RANK[ch]), 0, 0
    decomposed = unicodedata.normalize("NFD", ch)
    base = decomposed[0]
    accent = sum(ord(c) for c in decomposed[1:])
    lower = base.lower()
    case = 1 if base != lower else 0
    if lower.isdigit():
        return (1, ord(lower)), accent, case
    if lower.isalpha():
        return (2, ord(lower)), accent, case
    return (0, 1000 + ord(ch)), accent, case


def locale_sort_key(text: str) -> tuple:
    weights = [_char_weights(c) for c in text]
    return (
        tuple(w[0] for w in weights),
        tuple(w[1] for w in weights),
        tuple(w[2] for w in weights),
    )
