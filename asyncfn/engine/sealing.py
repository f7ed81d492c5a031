"""SecretBox: seals the secrets a node must keep readable (signing keys' secrets: a signature can
only be checked with the secret) under a server key from ASYNCFN_SIGNING_KEY_SECRET, using
`cryptography`'s Fernet (AES-128-CBC + HMAC-SHA256, authenticated). The Fernet key is derived
from the setting with HKDF-SHA256, so any string of at least 16 characters serves."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

INFO = b"asyncfn signing keys v1"


class SecretBox:
    def __init__(self, server_secret: str) -> None:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=INFO).derive(
            server_secret.encode()
        )
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def seal(self, secret: str) -> bytes:
        return self._fernet.encrypt(secret.encode())

    def unseal(self, sealed: bytes) -> str | None:
        """The secret, or None when it was sealed under another server key (the setting
        changed since): such a key cannot sign in."""
        try:
            return self._fernet.decrypt(sealed).decode()
        except InvalidToken:
            return None
