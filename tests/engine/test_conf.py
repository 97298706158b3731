"""The peer-trust list of IAM users (``auroral.iam_users``): role names are user text, so only names
that are provably one literal pg_hba.conf token are ever written, and reading back drops anything else
(a file written by an older auroral)."""

from __future__ import annotations

import pytest

from auroral.engine import conf

LITERAL = ["all", "samerole", "+rds_superuser", "@pg_ident.conf", 'a"b', '""', "a,all", "has space", "#x",
           "x\\", "a/b", "é" * 31 + "x"]
NOT_TOKENS = ["", "x\nall\ny", "x\rall", "x\0", "/^.*$", "/(", "u" * 64, "é" * 32]


@pytest.mark.parametrize("name", LITERAL)
def test_literal_names_round_trip(name: str) -> None:
    assert conf.hba_name_ok(name)
    text = conf.iam_users_conf([name])
    assert conf.parse_iam_users(text) == {name}
    # one line per name (and the placeholder), each one quoted token
    lines = [line for line in text.split("\n") if line and not line.startswith("#")]
    assert sorted(lines) == sorted([conf.hba_token(name), '"rdsadmin"'])


@pytest.mark.parametrize("name", NOT_TOKENS)
def test_names_that_cannot_be_one_token_are_never_written(name: str) -> None:
    assert not conf.hba_name_ok(name)
    with pytest.raises(ValueError):
        conf.iam_users_conf(["iamuser", name])


def test_reading_back_drops_what_was_not_written_as_one_token() -> None:
    poisoned = ('# old\n"iamuser"\n"x\nall\ny"\n+grp\n"/^.*$"\n"a""b"\n"a"b"\n"rdsadmin"\n"z\r\n'
                + '"' + "u" * 64 + '"\n')
    assert conf.parse_iam_users(poisoned) == {"iamuser", 'a"b'}
