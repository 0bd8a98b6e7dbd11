import time

from apps.integrations.signing import compute_signature, signature_header, verify_signature

SECRET = "whsec_test"
BODY = b'{"type":"conversation.created"}'


def test_a_fresh_signature_verifies():
    now = int(time.time())
    header = signature_header([SECRET], now, BODY)
    assert header == f"v1={compute_signature(SECRET, now, BODY)}"
    assert verify_signature(SECRET, str(now), BODY, header)


def test_a_tampered_body_or_wrong_secret_is_rejected():
    now = int(time.time())
    header = signature_header([SECRET], now, BODY)
    assert not verify_signature(SECRET, now, BODY + b" ", header)
    assert not verify_signature("whsec_other", now, BODY, header)
    assert not verify_signature(SECRET, now, BODY, "v0=" + header[3:])
    assert not verify_signature(SECRET, "not-a-number", BODY, header)


def test_a_timestamp_outside_the_tolerance_is_a_replay():
    sent = 1_700_000_000
    header = signature_header([SECRET], sent, BODY)
    assert verify_signature(SECRET, sent, BODY, header, now=sent + 299)
    assert not verify_signature(SECRET, sent, BODY, header, now=sent + 301)
    assert not verify_signature(SECRET, sent, BODY, header, now=sent - 301)
    # Changing the timestamp to look fresh breaks the signature, which covers it.
    assert not verify_signature(SECRET, sent + 600, BODY, header, now=sent + 600)


def test_either_secret_verifies_during_a_rotation():
    now = int(time.time())
    header = signature_header(["whsec_new", "whsec_old"], now, BODY)
    assert verify_signature("whsec_new", now, BODY, header)
    assert verify_signature("whsec_old", now, BODY, header)
