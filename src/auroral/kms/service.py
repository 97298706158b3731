"""The KMS provider: one class composed of the handler families (keys, aliases, cryptography, grants).

Every handler goes through the ``Keyring``; authorization of key ARNs (key policy + IAM + grants) is
done by ``KeyPolicyAuthorizer`` (one for every region's keyring), which the app installs in front of
the IAM authorizer.
"""

from __future__ import annotations

from auroral.crypto import Sealer
from auroral.iam.authorizer import IamAuthorizer
from auroral.kms.aliases import AliasOperations
from auroral.kms.crypto_ops import CryptoOperations
from auroral.kms.grants import GrantOperations
from auroral.kms.keyring import Keyring
from auroral.kms.keys import KeyOperations
from auroral.store import Store


class KmsService(KeyOperations, AliasOperations, CryptoOperations, GrantOperations):
    def __init__(self, store: Store, sealer: Sealer, region: str, iam: IamAuthorizer) -> None:
        super().__init__(Keyring(store, sealer, region, iam))
        self.keyring.purge_expired()
