"""The Secrets Manager provider: one class composed of the handler families (lifecycle, values,
resource policies, rotation), plus the Vault (RDS's interface) and the rotation scheduler it owns.

The app registers ``resource_policy_source`` with the IAM authorizer for secret ARNs, and starts and
stops ``rotation`` with the server.
"""

from __future__ import annotations

from auroral.kms.keyring import Keyring
from auroral.secrets.lifecycle import LifecycleOperations
from auroral.secrets.policies import PolicyOperations
from auroral.secrets.records import SecretRecords
from auroral.secrets.rotate_api import RotationOperations
from auroral.secrets.rotation import RotationScheduler
from auroral.secrets.values import ValueOperations
from auroral.secrets.vault import Vault
from auroral.store import Store


class SecretsManagerService(LifecycleOperations, ValueOperations, PolicyOperations, RotationOperations):
    def __init__(self, store: Store, keyring: Keyring, region: str, *, check_seconds: float | None = None) -> None:
        records = SecretRecords(store, keyring, region)
        vault = Vault(records)
        super().__init__(records, vault, RotationScheduler(vault, check_seconds=check_seconds))
        records.purge_expired()
