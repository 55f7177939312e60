"""A referenced Secret's value as gridshift reads it (`hub.client.secret_value`): text, or an error naming
the Secret and key, never quoting the value."""

from __future__ import annotations

import base64

import pytest

from gridshift.hub.client import SECRET_PURPOSE_LABEL, SecretMissing, SecretPurpose, secret_value

LABELS = {SECRET_PURPOSE_LABEL: SecretPurpose.MEMBER_KUBECONFIG.value}


def read(raw: str) -> str:
    return secret_value(
        "gridshift-system", "kc-eu-fr", "kubeconfig", SecretPurpose.MEMBER_KUBECONFIG, LABELS, {"kubeconfig": raw}
    )


def test_a_utf8_value_is_read() -> None:
    assert read(base64.b64encode("apiVersion: v1 # é".encode()).decode()) == "apiVersion: v1 # é"


@pytest.mark.parametrize("value", ["apiVersion: v1 token: s3cr3tvalue".encode("utf-16"), b"\xff\xfes3cr3tvalue"])
def test_a_value_that_is_not_utf8_text_names_the_secret_and_key_and_quotes_nothing(value: bytes) -> None:
    # Found in review: the cluster's condition read "internal error (UnicodeDecodeError)", naming nothing.
    with pytest.raises(SecretMissing) as raised:
        read(base64.b64encode(value).decode())
    message = str(raised.value)
    assert message.startswith("Secret gridshift-system/kc-eu-fr key 'kubeconfig' is not UTF-8 text"), message
    assert "s3cr3t" not in message and raised.value.__suppress_context__
