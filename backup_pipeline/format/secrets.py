"""`secret` fields (SPEC §9.1): PBKDF2-HMAC-SHA256 (100 000 rounds) + AES-256-GCM.

Stored value = base64(salt(16) ‖ iv(12) ‖ ciphertext ‖ tag(16)). Any failure means "keep the
value as stored", exactly like s3db.js (a wrong passphrase silently yields ciphertext).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .transport import node_base64_decode

PBKDF2_ITERATIONS = 100_000
_MIN_LEN = 16 + 12 + 16  # salt + iv + tag: anything shorter cannot decrypt


@lru_cache(maxsize=4096)
def derive_key(passphrase: str, salt: bytes) -> AESGCM:
    """PBKDF2 is the expensive part (~tens of ms); a record re-read or a value decoded twice
    with the same salt hits this cache."""
    key = hashlib.pbkdf2_hmac("sha256", passphrase.encode("utf-8"), salt, PBKDF2_ITERATIONS, 32)
    return AESGCM(key)


def decrypt_secret(value: str, passphrase: str) -> str | None:
    """Plaintext, or None when the value does not decrypt with this passphrase."""
    data = node_base64_decode(value)
    if len(data) < _MIN_LEN:
        return None
    try:
        plain = derive_key(passphrase, data[:16]).decrypt(data[16:28], data[28:], None)
    except Exception:
        return None
    if plain.startswith(b"\xef\xbb\xbf"):  # TextDecoder drops a leading BOM
        plain = plain[3:]
    return plain.decode("utf-8", "replace")
