"""Redaction of the text the library logs: which secrets it recognises, and how much it reads."""

from __future__ import annotations

import pytest

from resilience_kit import _redact
from resilience_kit._redact import CUT_MARGIN, redact, redact_url, truncate


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://app:s3cret@db:5432/prod", "postgresql://app:***@db:5432/prod"),
        ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("https://ghp_token@github.com/x", "https://***@github.com/x"),
        ("mysql://u:p@ss@host/db", "mysql://u:***@host/db"),
        ("postgresql://app:pa/ss@w0rd@db/prod?x=1", "postgresql://app:***@db/prod?x=1"),
        ("http://example.com/a@b", "http://example.com/a@b"),
        ("password=hunter2 user=bob", "password=*** user=bob"),
        ("DB_PASSWORD: 'hunter2'", "DB_PASSWORD: '***'"),
        ('{"api_key": "abc", "n": 1}', '{"api_key": "***", "n": 1}'),
        ("?apikey=abc&x=1", "?apikey=***&x=1"),
        ("access-key = AKIA1234", "access-key = ***"),
        ("Authorization: Bearer eyJhbGc.x.y", "Authorization: Bearer ***"),
        ("sent bearer abc.def to the server", "sent bearer *** to the server"),
        ("client_secret=xyz;token=t0k", "client_secret=***;token=***"),
        ("a=password=x", "a=password=***"),
        ("nothing secret here: 42", "nothing secret here: 42"),
    ],
)
def test_redact_examples(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Keys named by a short word, whole or after a separator.
        (
            "GET /maps/api/geocode/json?address=x&key=AIzaSyA-SECRET failed",
            "GET /maps/api/geocode/json?address=x&key=*** failed",
        ),
        ("x-goog-api-key: AIzaSECRET", "x-goog-api-key: ***"),
        ("/c/f?sv=2022&sig=SECRETSIG%3D&se=2025", "/c/f?sv=2022&sig=***&se=2025"),
        ("ftp login failed: user=bob pass=SECRETPASS", "ftp login failed: user=bob pass=***"),
        ("{'email': 'a@b.c', 'pw': 'SECRETPW'}", "{'email': 'a@b.c', 'pw': '***'}"),
        ("smtp_pass=SECRET", "smtp_pass=***"),
        # Keys containing a secret word.
        (
            "/o?X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature=deadbeef&X-Amz-Date=20250101",
            "/o?X-Amz-Credential=***&X-Amz-Signature=***&X-Amz-Date=20250101",
        ),
        (
            "client_secret=S1&refresh_token=S2&access_token=S3",
            "client_secret=***&refresh_token=***&access_token=***",
        ),
        ("sessionid=SECRET; PHPSESSID=SECRET2", "sessionid=***; PHPSESSID=***"),
        ("private_key: abcdef", "private_key: ***"),
        ("privateKey=abcdef", "privateKey=***"),
        # Words that only contain a short key word are left alone.
        (
            "monkey=banana passage=open keyboard=qwerty",
            "monkey=banana passage=open keyboard=qwerty",
        ),
        # Quoted values with escaped quotes, also JSON inside a JSON string.
        ('{"password": "hun\\"ter2", "user": "bob"}', '{"password": "***", "user": "bob"}'),
        ("{'pw': 'it\\'s secret'}", "{'pw': '***'}"),
        (
            '{\\"password\\": \\"two words\\", \\"n\\": 1}',
            '{\\"password\\": \\"***\\", \\"n\\": 1}',
        ),
        # Cookie headers are secret as a whole line.
        ("Cookie: sessionid=SECRET; csrftoken=abc; theme=dark", "Cookie: ***"),
        ("Set-Cookie: sid=SECRET; Path=/; HttpOnly\nHost: x", "Set-Cookie: ***\nHost: x"),
        # Credentials outside key=value shapes.
        (
            "private_key: -----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN\n-----END PRIVATE KEY----- ok",
            "private_key: *** ok",
        ),
        ("key material -----BEGIN RSA PRIVATE KEY-----MIIE", "key material ***"),
        ("dsn=scott/SECRETPW@//dbhost:1521/svc", "dsn=scott/***@//dbhost:1521/svc"),
        (
            "https://api.telegram.org/bot123456:AAH-SECRET/sendMessage",
            "https://api.telegram.org/bot***/sendMessage",
        ),
    ],
)
def test_redact_recognises_cloud_and_header_secrets(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_redact_url_and_truncate() -> None:
    assert redact_url("postgresql+psycopg://postgres:pw@127.0.0.1/test") == (
        "postgresql+psycopg://postgres:***@127.0.0.1/test"
    )
    assert redact_url("sqlite:///file.db") == "sqlite:///file.db"
    assert truncate("abcdef", 4) == "abc\u2026"
    assert truncate("abc", 4) == "abc"
    assert truncate("abcdef", 1) == "a"
    # Redaction comes first, so the cut can never expose part of the secret.
    assert redact("password=" + "x" * 50, max_length=11) == "password=*\u2026"


def test_only_the_logged_length_plus_a_margin_is_examined(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    mask_pairs = _redact._mask_pairs

    def recording(text: str) -> str:
        seen.append(len(text))
        return mask_pairs(text)

    monkeypatch.setattr(_redact, "_mask_pairs", recording)
    page = "503 Service Unavailable: " + "<div class='x'>" * 150_000  # a 2 MB error page
    assert len(redact(page, max_length=200)) == 200
    assert seen == [200 + CUT_MARGIN]
    # Without a limit everything is examined.
    redact(page)
    assert seen[-1] == len(page)


def test_a_secret_straddling_the_cut_is_still_recognised() -> None:
    # The value starts in the logged part and runs past max_length + CUT_MARGIN: the cut
    # leaves a quoted value without its closing quote, which must still be masked.
    secret = "s" * 3000
    for text in (
        f'request failed: password="{secret}" host=db',
        f"request failed: password={secret} host=db",
        f"request failed: Authorization: Bearer {secret} host=db",
        f"request failed: -----BEGIN PRIVATE KEY-----{secret}-----END PRIVATE KEY-----",
    ):
        logged = redact(text, max_length=200)
        assert "sss" not in logged, logged
