"""Credentials: API keys are kept only as SHA-256 hashes; webhook secrets are sealed.

A webhook secret must be recoverable (HMAC verification needs it, and a Twilio
auth token is chosen by Twilio), so it is sealed with AES-GCM under the server's
secret key instead of hashed. Neither appears in plain text in an event.
"""

import base64
import hashlib
import hmac
import os
import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

API_KEY_PREFIX = "lk_"


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def new_secret_key() -> str:
    return base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode()


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def constant_time_equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


class SecretBox:
    """The deployment's secret key: seals secrets and data keys, and keys the hashes of addresses."""

    def __init__(self, secret_key: str) -> None:
        key = base64.urlsafe_b64decode(secret_key.encode())
        if len(key) != 32:
            raise ValueError("the secret key must be 32 bytes, urlsafe-base64 encoded")
        self._aead = AESGCM(key)
        # A key of its own for the keyed hashes, derived so that neither use weakens the other.
        self._digest_key = hmac.new(key, b"ledger keyed digests v1", hashlib.sha256).digest()

    def digest(self, value: str, purpose: str) -> str:
        """HMAC-SHA256 of the value under the deployment's secret: equal values give equal digests,
        and nobody without the secret can test a guess (a phone number is easy to guess)."""
        return hmac.new(self._digest_key, f"{purpose}\x1f{value}".encode(), hashlib.sha256).hexdigest()

    def seal(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, sealed: str, context: str) -> str:
        raw = base64.urlsafe_b64decode(sealed.encode())
        return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
