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


@pytest.mark.parametrize(
    "labels",
    [{}, {SECRET_PURPOSE_LABEL: SecretPurpose.PRICE_FEED_TOKEN.value}, {"purpose": "member-kubeconfig"}],
    ids=["unlabelled", "labelled for another purpose", "another label"],
)
def test_a_secret_not_labelled_for_the_purpose_is_not_read(labels: dict[str, str]) -> None:
    # Whoever may reference a Secret (a RegionalCluster's author) must not get gridshift to read any Secret of the
    # namespace: only one its owner labelled for this purpose is read. A price-feed token's Secret, or one with no
    # label, is refused however valid its value, and the refusal says which label to set, quoting no value.
    value = base64.b64encode(b"apiVersion: v1 # s3cr3tvalue").decode()
    with pytest.raises(SecretMissing) as raised:
        secret_value(
            "gridshift-system", "kc-eu-fr", "kubeconfig", SecretPurpose.MEMBER_KUBECONFIG, labels, {"kubeconfig": value}
        )
    message = str(raised.value)
    assert message.startswith(
        f"Secret gridshift-system/kc-eu-fr is not labelled {SECRET_PURPOSE_LABEL}=member-kubeconfig"
    ), message
    assert "s3cr3t" not in message
