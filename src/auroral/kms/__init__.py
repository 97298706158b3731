"""KMS: customer and AWS managed symmetric keys, envelope encryption, aliases, grants and key policies.

    model.py      records (keys, aliases, grants), KeyRef, ARNs
    records.py    persistence through the store; keys past their deletion date are gone
    policy.py     default / AWS managed key policies, the KMS evaluation rule
    keyring.py    Keyring: THE internal interface (resolve, check, encrypt, decrypt, data keys)
    authz.py      KeyPolicyAuthorizer: key ARNs by key policy + IAM, everything else by IAM
    base.py keys.py aliases.py crypto_ops.py grants.py service.py   the HTTP handlers (KmsService)
"""

from auroral.kms.keyring import Keyring
from auroral.kms.model import KeyRef

__all__ = ["KeyRef", "Keyring"]
