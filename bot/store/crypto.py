"""Field encryption and pseudonymous identifiers, both derived from ``SANAD_SECRET_KEY``.

* Pseudonymous user keys are HMAC-SHA256 of ``channel:platform_id``: the database never holds a
  phone number or Telegram id in the clear, yet the same person always maps to the same row.
* Free text and screening answers are sealed with AES-256-GCM. Every ciphertext starts with a
  version byte and a 4-byte key id so that old keys (``SANAD_OLD_SECRET_KEYS``) can still open
  old rows while new rows use the current key: this is what makes rotation possible.
* Platform addresses (needed to send a caseworker's reply) are sealed like free text.
* Crypto-shredding: a user's own data is sealed with a random per-user data key
  (:class:`UserCipher`, version byte 2), stored only wrapped by the master key in
  ``user_keys``; erasing the user deletes that row, so copies of their rows (WAL pages, dead
  tuples, copied tables) stay sealed under a key the system no longer has (a copy that also
  holds the old ``user_keys`` row does not: SECURITY.md, "Crypto-shredding").
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = b"\x01"
_USER_VERSION = b"\x02"
"""Sealed with a user's data key (not the master key): ``\x02`` + data key id + nonce + box."""
_DATA_KEY_BYTES = 32
_NONCE_BYTES = 12
_KEY_ID_BYTES = 4


class DecryptionError(Exception):
    """Ciphertext was tampered with, truncated, or sealed with a key we no longer have."""


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"sanad/v1", info=purpose).derive(secret)


class Pseudonymizer:
    """Maps platform ids to stable pseudonymous keys (one-way)."""

    def __init__(self, secret: bytes) -> None:
        self._key = _derive(secret, b"pseudonym")

    def user_key(self, channel: str, platform_id: str | int) -> str:
        mac = hmac.new(self._key, f"{channel}:{platform_id}".encode(), hashlib.sha256)
        return mac.hexdigest()[:40]


class FieldCipher:
    """AES-GCM sealing of personal fields with key ids for rotation."""

    def __init__(self, secret: bytes, old_secrets: Iterable[bytes] = ()) -> None:
        self._current_id, current = self._key_for(secret)
        self._keys: dict[bytes, AESGCM] = {self._current_id: current}
        for old in old_secrets:
            key_id, aead = self._key_for(old)
            self._keys.setdefault(key_id, aead)

    @staticmethod
    def _key_for(secret: bytes) -> tuple[bytes, AESGCM]:
        key = _derive(secret, b"field-encryption")
        key_id = hashlib.sha256(b"key-id" + key).digest()[:_KEY_ID_BYTES]
        return key_id, AESGCM(key)

    @property
    def current_key_id(self) -> bytes:
        return self._current_id

    @property
    def key_ids(self) -> tuple[bytes, ...]:
        """The current key's id first, then the old keys' still configured."""
        return tuple(self._keys)

    def encrypt(self, plaintext: bytes, *, context: bytes = b"") -> bytes:
        """Seal ``plaintext``; ``context`` (e.g. a column name) is authenticated, not stored."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._keys[self._current_id].encrypt(nonce, plaintext, context)
        return _VERSION + self._current_id + nonce + sealed

    def decrypt(self, blob: bytes, *, context: bytes = b"") -> bytes:
        header = 1 + _KEY_ID_BYTES
        if blob[:1] == _USER_VERSION:
            raise DecryptionError("sealed with a user's data key (``UserCipher``)")
        if len(blob) < header + _NONCE_BYTES + 16 or blob[:1] != _VERSION:
            raise DecryptionError("not a Sanad ciphertext")
        aead = self._keys.get(blob[1:header])
        if aead is None:
            raise DecryptionError("sealed with an unknown key (is SANAD_OLD_SECRET_KEYS set?)")
        nonce = blob[header:header + _NONCE_BYTES]
        try:
            return aead.decrypt(nonce, blob[header + _NONCE_BYTES:], context)
        except Exception as exc:  # cryptography raises InvalidTag without a message
            raise DecryptionError("ciphertext failed authentication") from exc

    def needs_rotation(self, blob: bytes) -> bool:
        """Sealed with an old master key. Blobs under a user's data key never are: rotating the
        master key re-wraps the data keys (``user_keys.key_enc``), not what they seal."""
        return blob[:1] != _USER_VERSION and blob[1:1 + _KEY_ID_BYTES] != self._current_id

    def encrypt_text(self, text: str, *, context: bytes = b"") -> bytes:
        return self.encrypt(text.encode("utf-8"), context=context)

    def decrypt_text(self, blob: bytes, *, context: bytes = b"") -> str:
        return self.decrypt(blob, context=context).decode("utf-8")


def sealed_key_id(blob: bytes) -> tuple[str, bytes]:
    """Who can open ``blob``: ``("master", key id)`` or ``("user", data key id)``."""
    kind = "user" if blob[:1] == _USER_VERSION else "master"
    return kind, blob[1:1 + _KEY_ID_BYTES]


def is_user_sealed(blob: bytes) -> bool:
    return blob[:1] == _USER_VERSION


def new_data_key() -> bytes:
    """A fresh random data key for one user (never derived from anything: deleting its wrapped
    copy is what makes the user's rows unreadable)."""
    return os.urandom(_DATA_KEY_BYTES)


def data_key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"data-key-id" + key).digest()[:_KEY_ID_BYTES]


class UserCipher(FieldCipher):
    """Seals one user's fields with their data key; opens those, and master-sealed blobs
    (version 1, from before per-user keys or from back-office writers) through ``master``.

    Made per turn or per read from the wrapped key (``bot.store.user_keys``) and dropped after
    it: unwrapped data keys are never cached beyond that.
    """

    def __init__(self, master: FieldCipher, key: bytes) -> None:
        # Not FieldCipher.__init__: no key derivation, the data key is used as it is.
        self._master = master
        self._data_id = data_key_id(key)
        self._data = AESGCM(key)
        self._current_id = master.current_key_id
        self._keys = {}

    @property
    def master(self) -> FieldCipher:
        return self._master

    @property
    def data_key_id(self) -> bytes:
        return self._data_id

    def encrypt(self, plaintext: bytes, *, context: bytes = b"") -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return _USER_VERSION + self._data_id + nonce + self._data.encrypt(nonce, plaintext,
                                                                          context)

    def decrypt(self, blob: bytes, *, context: bytes = b"") -> bytes:
        if blob[:1] != _USER_VERSION:
            return self._master.decrypt(blob, context=context)
        header = 1 + _KEY_ID_BYTES
        if len(blob) < header + _NONCE_BYTES + 16:
            raise DecryptionError("not a Sanad ciphertext")
        if blob[1:header] != self._data_id:
            raise DecryptionError("sealed with another data key (another user, or erased)")
        nonce = blob[header:header + _NONCE_BYTES]
        try:
            return self._data.decrypt(nonce, blob[header + _NONCE_BYTES:], context)
        except Exception as exc:
            raise DecryptionError("ciphertext failed authentication") from exc

    def needs_rotation(self, blob: bytes) -> bool:
        return self._master.needs_rotation(blob)

