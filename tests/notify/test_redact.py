"""What of a notification URL may be shown, and that every secret of it is taken out of text."""
import pytest

from handler.notify.redact import HIDDEN, Redactor, describe, secrets_of

# (url, the secrets in it, what describe() may show)
URLS = [
    ("slack://T1AAAAAA/B2BBBBBB/C3CCCCCCCCCCCC/#ops", ["T1AAAAAA", "B2BBBBBB", "C3CCCCCCCCCCCC"], "slack://…"),
    ("discord://123456789012/webhook-token-xyz", ["123456789012", "webhook-token-xyz"], "discord://…"),
    ("tgram://123456:AAbotTOKENzz/-1001234", ["123456:AAbotTOKENzz", "AAbotTOKENzz"], "tgram://…"),
    ("msteams://tokenA@tokenB/tokenC/tokenD", ["tokenA", "tokenB", "tokenC", "tokenD"], "msteams://…"),
    ("mailto://alice:p%40ss-w0rd@smtp.example.com:587?to=ops@example.com", ["p%40ss-w0rd", "p@ss-w0rd"],
     "mailto://smtp.example.com:587…"),
    ("json://bob:hunter2hunter@127.0.0.1:8080/hooks/s3cr3t-path?+Authorization=Bearer%20abc.def",
     ["hunter2hunter", "s3cr3t-path", "Bearer abc.def"], "json://127.0.0.1:8080…"),
    ("ntfy://user:pw9@ntfy.example.com/my-topic?token=tk_123456", ["pw9", "my-topic", "tk_123456"],
     "ntfy://ntfy.example.com…"),
    ("gotify://gotify.example.com/AppTokenABC", ["AppTokenABC"], "gotify://gotify.example.com…"),
]


@pytest.mark.parametrize("url, secrets, shown", URLS)
def test_a_url_is_described_without_any_of_its_secrets(url, secrets, shown):
    text = describe(url, 3)
    assert text == f"notify URL 3 ({shown})"
    assert not any(secret in text for secret in secrets)


@pytest.mark.parametrize("url, secrets, shown", URLS)
def test_every_secret_of_a_url_is_taken_out_of_free_text(url, secrets, shown):
    assert set(secrets) <= secrets_of(url)
    text = "failed: " + " / ".join(secrets) + f" at {url}"
    cleaned = Redactor([url])(text)
    assert not any(secret in cleaned for secret in secrets)
    assert cleaned.startswith("failed: ") and HIDDEN in cleaned


def test_text_that_is_not_a_url_is_never_shown():
    assert describe("hunter2 is my password", 1) == "notify URL 1 (not a URL)"


def test_a_short_password_is_still_a_secret():
    assert "pw" in secrets_of("mailto://a:pw@example.com")


def test_a_comma_splits_urls_only_where_a_new_scheme_follows():
    from handler.settings import NOTIFY_URLS

    text = "mailto://u:p@x.org?to=a@x.org,b@x.org, slack://A/B/C\njson://h/x ,, "
    assert NOTIFY_URLS.parse(text) == ("mailto://u:p@x.org?to=a@x.org,b@x.org", "slack://A/B/C", "json://h/x")


def test_the_action_masks_each_url_and_each_secret_piece():
    from handler.action import mask_values, read_inputs

    masks = mask_values(read_inputs({"INPUT_NOTIFY_URLS": "slack://TokA1/TokB2/TokC3\nmailto://me:pw9x@x.org"}))
    assert {"slack://TokA1/TokB2/TokC3", "TokA1", "TokB2", "TokC3", "pw9x"} <= set(masks)
    assert masks == sorted(masks, key=len, reverse=True)  # longest first: a part never masks before its whole
