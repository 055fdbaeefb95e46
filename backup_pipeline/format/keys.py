"""Object keys: record ids (SPEC §1.2) and the filesystem client's listing order (§1.2, §12)."""

from __future__ import annotations

import unicodedata
from functools import lru_cache


def record_id_from_key(key: str) -> str | None:
    """Text after `id=` in the first `/`-segment starting with `id=` (None if there is none):
    `resource=users/data/id=u1` -> `u1`; also works for partition reference keys."""
    # The first segment starting with "id=" is the key's start or follows the first "/id=".
    if key.startswith("id="):
        start = 3
    else:
        start = key.find("/id=") + 4
        if start == 3:
            return None
    end = key.find("/", start)
    return key[start:] if end < 0 else key[start:end]


def data_key(resource: str, record_id: str) -> str:
    return f"resource={resource}/data/id={record_id}"


# --- JS localeCompare (ICU root collation), approximated --------------------------------------
#
# The filesystem client sorts keys with `a.localeCompare(b)`. Exact ICU needs PyICU; this
# three-level key (base characters, then accents, then case with lower before upper) follows
# the root collation order for ASCII: whitespace, punctuation (`_` before `-`), symbols,
# digits, letters. It reproduces every fixture listing.

_ASCII_ORDER = "\t\n\v\f\r _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$"
_ASCII_RANK = {c: i for i, c in enumerate(_ASCII_ORDER)}


@lru_cache(maxsize=65536)
def _char_weights(c: str) -> tuple[tuple[int, int], tuple[int, ...], int]:
    rank = _ASCII_RANK.get(c)
    if rank is not None:
        return ((0 if rank < 6 else 1, rank), (), 0)
    if "0" <= c <= "9":
        return ((2, ord(c) - 48), (), 0)
    decomposed = unicodedata.normalize("NFD", c)
    base, marks = decomposed[0], tuple(ord(m) for m in decomposed[1:])
    cat = unicodedata.category(base)
    if cat == "Nd":
        return ((2, unicodedata.digit(base)), marks, 0)
    if cat.startswith("L"):
        folded = base.casefold()
        tertiary = 1 if (base != folded and base.lower() != base) else 0
        group = 3 if folded.isascii() else 4
        return ((group, ord(folded[0])), marks, tertiary)
    if cat[0] in "PSZ":
        return ((1, 1000 + ord(base)), marks, 0)
    return ((5, ord(base)), marks, 0)


def locale_sort_key(s: str) -> tuple:
    """Sort key approximating JS `String.prototype.localeCompare` (ICU root collation)."""
    primary, secondary, tertiary = [], [], []
    for c in s:
        if unicodedata.combining(c) and primary:  # a stray combining mark: accent of previous
            secondary[-1] = secondary[-1] + (ord(c),)
            continue
        p, sec, t = _char_weights(c)
        primary.append(p)
        secondary.append(sec)
        tertiary.append(t)
    return (tuple(primary), tuple(secondary), tuple(tertiary))
