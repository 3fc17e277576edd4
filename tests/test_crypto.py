from __future__ import annotations

import pytest

from bot.store.crypto import DecryptionError, FieldCipher, Pseudonymizer


def test_round_trip_and_fresh_nonces() -> None:
    cipher = FieldCipher(b"k" * 32)
    a = cipher.encrypt_text("أنا محبوس", context=b"col")
    b = cipher.encrypt_text("أنا محبوس", context=b"col")
    assert a != b and "محبوس".encode() not in a
    assert cipher.decrypt_text(a, context=b"col") == "أنا محبوس"


def test_tampering_wrong_context_and_unknown_keys_are_refused() -> None:
    cipher = FieldCipher(b"k" * 32)
    blob = bytearray(cipher.encrypt_text("secret", context=b"col"))
    with pytest.raises(DecryptionError):
        cipher.decrypt_text(bytes(blob), context=b"other-column")
    blob[-1] ^= 1
    with pytest.raises(DecryptionError):
        cipher.decrypt_text(bytes(blob), context=b"col")
    with pytest.raises(DecryptionError):
        FieldCipher(b"z" * 32).decrypt_text(cipher.encrypt_text("x"))
    with pytest.raises(DecryptionError):
        cipher.decrypt(b"garbage")


def test_rotation_reads_old_rows_and_writes_with_the_new_key() -> None:
    old = FieldCipher(b"old-key" * 5)
    sealed = old.encrypt_text("hello")
    rotated = FieldCipher(b"new-key" * 5, old_secrets=[b"old-key" * 5])
    assert rotated.decrypt_text(sealed) == "hello"
    assert rotated.needs_rotation(sealed)
    assert not rotated.needs_rotation(rotated.encrypt_text("hello"))


def test_pseudonyms_are_stable_keyed_and_do_not_contain_the_id() -> None:
    one, other = Pseudonymizer(b"a" * 32), Pseudonymizer(b"b" * 32)
    key = one.user_key("whatsapp", "201001234567")
    assert key == one.user_key("whatsapp", "201001234567")
    assert key != one.user_key("telegram", "201001234567")
    assert key != other.user_key("whatsapp", "201001234567")
    assert "201001234567" not in key
