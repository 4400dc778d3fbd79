import orjson
import pytest

from bot import webhooks
from bot.settings import WEBHOOK_BODY_MAX_BYTES

SECRET = "s3cret"


def test_signature_of_the_exact_bytes_is_accepted():
    body = b'{"zen": "Keep it logically awesome."}'
    webhooks.verify_signature(SECRET, body, webhooks.sign(SECRET, body))


@pytest.mark.parametrize(
    "signature",
    [None, "", "sha1=0123", "sha256=", "sha256=" + "0" * 64],
)
def test_missing_or_wrong_signature_is_401(signature):
    with pytest.raises(webhooks.WebhookRejected) as rejected:
        webhooks.verify_signature(SECRET, b"{}", signature)
    assert rejected.value.status == 401


@pytest.mark.parametrize("signature", ["sha256=" + "é" * 64, "sha256=\udc80", "sha256=" + "\u00ff" * 64])
def test_a_signature_with_non_ascii_characters_is_401(signature):
    with pytest.raises(webhooks.WebhookRejected) as rejected:
        webhooks.verify_signature(SECRET, b"{}", signature)
    assert rejected.value.status == 401


def test_signature_over_other_bytes_is_401():
    signature = webhooks.sign(SECRET, b'{"a": 1}')
    with pytest.raises(webhooks.WebhookRejected) as rejected:
        webhooks.verify_signature(SECRET, b'{"a": 1} ', signature)
    assert rejected.value.status == 401


def test_no_secret_means_insecure_dev_and_checks_nothing():
    webhooks.verify_signature(None, b"{}", None)


def test_declared_size_over_cap_is_413():
    with pytest.raises(webhooks.WebhookRejected) as rejected:
        webhooks.check_body_size(str(WEBHOOK_BODY_MAX_BYTES + 1))
    assert rejected.value.status == 413
    webhooks.check_body_size(str(WEBHOOK_BODY_MAX_BYTES))


@pytest.mark.parametrize(
    ("body", "event", "delivery"),
    [
        (b'{"a":', "push", "d-1"),  # truncated JSON
        (b"[1, 2]", "push", "d-1"),  # not an object
        (b"\xff\xfe", "push", "d-1"),  # not UTF-8
        (b"{}", None, "d-1"),
        (b"{}", "push", None),
        (b"{}", "push", "x" * 65),
        (b"{}", "push", "d-1\n"),  # a control character in the inbox's key
        (b"{}", "push\n", "d-1"),
        (b"{}", "Push Event", "d-1"),
    ],
)
def test_malformed_delivery_is_400(body, event, delivery):
    with pytest.raises(webhooks.WebhookRejected) as rejected:
        webhooks.parse_delivery(body, event=event, delivery_id=delivery)
    assert rejected.value.status == 400


def test_parse_reads_repo_installation_and_action():
    from tests.conftest import fixture_path

    body = fixture_path("issue_comment/created.with-installation.payload.json").read_bytes()
    delivery = webhooks.parse_delivery(body, event="issue_comment", delivery_id="abc-123")
    assert delivery.action == "created"
    assert delivery.repo == "Codertocat/Hello-World"
    assert isinstance(delivery.installation_id, int)


@pytest.mark.parametrize("installation", [{"id": "12"}, {"id": 12.0}, {"id": True}])
def test_an_installation_id_that_is_not_an_integer_belongs_to_no_installation(installation):
    body = orjson.dumps({"action": "created", "installation": installation})
    assert webhooks.parse_delivery(body, event="issue_comment", delivery_id="d-1").installation_id is None


@pytest.mark.parametrize("repository", [{"full_name": 7}, {"full_name": ["a", "b"]}])
def test_a_repository_name_that_is_not_text_names_no_repository(repository):
    body = orjson.dumps({"action": "created", "repository": repository})
    assert webhooks.parse_delivery(body, event="issue_comment", delivery_id="d-1").repo is None
