"""What a key's holder can write into the credential report: the service of the key's last use is the
service its request was signed for, the signer's text. A name that no AWS service has (a spreadsheet
formula, say: auditors open the report in one) is never recorded: the report and GetAccessKeyLastUsed
say N/A for it, as for a key never used."""

from __future__ import annotations

import csv
import io
import urllib.error
import urllib.request

import botocore.auth
import botocore.awsrequest
import botocore.credentials
from tests.conftest import fresh_server

ACCOUNT = "246813579024"
FORMULA = '=HYPERLINK("http:x")'


def test_a_signed_service_name_is_not_a_formula_in_the_report() -> None:
    with fresh_server(ACCOUNT) as srv:
        iam = srv.client("iam")
        iam.create_user(UserName="mallory")
        key = iam.create_access_key(UserName="mallory")["AccessKey"]
        creds = botocore.credentials.Credentials(key["AccessKeyId"], key["SecretAccessKey"])
        req = botocore.awsrequest.AWSRequest(method="POST", url=srv.url + "/", data="Action=ListUsers",
                                             headers={"Content-Type": "application/x-www-form-urlencoded"})
        botocore.auth.SigV4Auth(creds, FORMULA, "us-east-1").add_auth(req)
        try:
            urllib.request.urlopen(urllib.request.Request(srv.url + "/", data=b"Action=ListUsers",
                                                          headers=dict(req.headers.items()), method="POST"))
        except urllib.error.HTTPError as err:
            assert err.code < 500
        used = iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"])["AccessKeyLastUsed"]
        assert used["ServiceName"] == "N/A"
        iam.generate_credential_report()
        text = iam.get_credential_report()["Content"].decode()
        assert FORMULA not in text
        row = next(r for r in csv.DictReader(io.StringIO(text)) if r["user"] == "mallory")
        assert row["access_key_1_last_used_service"] == "N/A"
