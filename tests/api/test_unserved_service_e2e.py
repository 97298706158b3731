"""A service auroral does not serve, called with unmodified boto3 (as Prowler calls Organizations,
Account, Support...): InvalidAction (400) in that service's own protocol, which the SDK parses into a
ClientError with the code; a scope botocore does not know at all, or a caller not authenticated, still
gets STS's query-form error."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.conftest import Server


@pytest.mark.parametrize(("service", "call"), [
    ("organizations", lambda c: c.describe_organization()),  # json
    ("account", lambda c: c.get_contact_information()),  # rest-json
    ("cloudformation", lambda c: c.list_stacks()),  # query
])
def test_unserved_service_is_invalid_action(server: Server, service: str, call: Any) -> None:
    with pytest.raises(ClientError) as err:
        call(server.client(service))
    error = err.value.response["Error"]
    assert error["Code"] == "InvalidAction"
    assert error["Message"] == f"auroral does not serve the {service} API."
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_unserved_service_still_authenticates(server: Server) -> None:
    """A bad signature is refused before anything else, in STS's query form (the caller's protocol is
    only looked up for an authenticated caller: an anonymous one cannot make auroral load models)."""
    org = server.client("organizations", secret_key="not-the-secret")
    with pytest.raises(ClientError) as err:
        org.describe_organization()
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "SignatureDoesNotMatch" in str(err.value)
