"""GetRandomPassword: a password from the OS's CSPRNG with Secrets Manager's character classes and rules."""

from __future__ import annotations

import secrets
import string

from auroral.secrets import errors

PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


def random_password(
    length: int = 32,
    *,
    exclude_characters: str = "",
    exclude_numbers: bool = False,
    exclude_punctuation: bool = False,
    exclude_uppercase: bool = False,
    exclude_lowercase: bool = False,
    include_space: bool = False,
    require_each_included_type: bool = True,
) -> str:
    if not 4 <= length <= 4096:
        raise errors.invalid_parameter("PasswordLength must be between 4 and 4096.")
    classes = []
    for excluded, chars in ((exclude_lowercase, string.ascii_lowercase), (exclude_uppercase, string.ascii_uppercase),
                            (exclude_numbers, string.digits), (exclude_punctuation, PUNCTUATION),
                            (not include_space, " ")):
        if not excluded:
            allowed = "".join(c for c in chars if c not in exclude_characters)
            if allowed:
                classes.append(allowed)
    if not classes:
        raise errors.invalid_parameter("No characters are left to build a password from.")
    if require_each_included_type and length < len(classes):
        raise errors.invalid_parameter("Password length is too short based on the required types.")
    pool = "".join(classes)
    while True:
        password = "".join(secrets.choice(pool) for _ in range(length))
        if not require_each_included_type or all(any(c in cls for c in password) for cls in classes):
            return password
