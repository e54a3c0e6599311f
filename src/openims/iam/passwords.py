"""Password hashing with argon2id (slow by design) and the password-strength rule."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# Huawei IAM's default policy: 8+ characters with at least two character classes.
_CLASSES = (re.compile(r"[a-z]"), re.compile(r"[A-Z]"), re.compile(r"[0-9]"), re.compile(r"[^a-zA-Z0-9]"))
MIN_LENGTH = 8
MAX_LENGTH = 128


class PasswordHashing:
    def __init__(self, *, time_cost: int = 3, memory_kib: int = 65536) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)
        # Verifying against this keeps the timing of "unknown user" close to "wrong password".
        self._dummy = self._hasher.hash("openims-dummy-password")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored or self._dummy, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False


@dataclass(frozen=True)
class NewPassword:
    """A password chosen for a user, hashed before the transaction that stores it.

    Hashing is slow by design (argon2): done inside a write transaction it would hold the write
    lane for its whole length. The password rules are checked in the transaction, where the user's
    name is known, in the order they always were.
    """

    plain: str = field(repr=False)
    hash: str = field(repr=False)

    @classmethod
    def prepare(cls, hashing: PasswordHashing, password: str) -> NewPassword:
        return cls(password, hashing.hash(password))


def password_problem(password: str, user_name: str | None = None) -> str | None:
    """Why a new password is too weak, or None when it is acceptable."""
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        return f"the password must have {MIN_LENGTH} to {MAX_LENGTH} characters"
    if sum(1 for c in _CLASSES if c.search(password)) < 2:
        return "the password must mix at least two of: lower case, upper case, digits, special characters"
    if user_name and user_name.lower() in password.lower():
        return "the password must not contain the user name"
    return None
