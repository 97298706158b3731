"""The network policy's settings: the translation in force and the drop mode."""

from __future__ import annotations

import pytest

from auroral.ec2.network import parse_translation
from auroral.rds.network_policy import DEFAULT_TRANSLATION, drop_mode, translation_spec


def test_the_default_translation_applies_after_the_given_one() -> None:
    assert translation_spec({}) == DEFAULT_TRANSLATION
    spec = translation_spec({"AURORAL_NET_TRANSLATE": "127.10.0.0/16=10.0.0.0/16"})
    pairs = parse_translation(spec)
    assert [str(p[0]) for p in pairs] == ["127.10.0.0/16", "127.0.0.0/16"]
    assert [str(p[1]) for p in pairs] == ["10.0.0.0/16", "172.31.0.0/16"]


def test_drop_mode() -> None:
    assert drop_mode({}) == "timeout"
    assert drop_mode({"AURORAL_NET_DROP": "close"}) == "close"
    assert drop_mode({"AURORAL_NET_DROP": " TIMEOUT "}) == "timeout"
    with pytest.raises(ValueError, match="AURORAL_NET_DROP"):
        drop_mode({"AURORAL_NET_DROP": "reset"})
