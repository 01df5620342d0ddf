"""`course dkim-record` and DKIM through the real command: what an operator publishes verifies what is sent."""

from __future__ import annotations

from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .test_render import run


def write_key(path: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))  # fmt: skip
    return path


def test_the_printed_record_verifies_the_messages_course_render_writes(tmp_path: Path) -> None:
    key = write_key(tmp_path / "dkim.pem")
    dkim_env = {"DKIM_SELECTOR": "mail2026", "DKIM_PRIVATE_KEY_FILE": str(key)}
    printed = run("dkim-record", **dkim_env)
    assert printed.returncode == 0, printed.stderr
    record = printed.stdout.strip()
    # The sending domain is MAIL_FROM's (send.example.net in these tests): aligned with From for DMARC.
    assert record.startswith('mail2026._domainkey.send.example.net. IN TXT ( "v=DKIM1; k=rsa; p=MIIB')
    strings = record.split('"')[1::2]
    assert all(len(part) <= 255 for part in strings)  # a TXT record's strings are at most 255 octets
    published = "".join(strings).encode()

    out = tmp_path / "out"
    rendered = run("render", "--out", str(out), "--day", "5", **dkim_env)
    assert rendered.returncode == 0, rendered.stderr
    message = (out / "day-05.eml").read_bytes()
    assert message.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=send.example.net;\r\n")
    assert b" s=mail2026;" in message.split(b"\r\n\r\n", 1)[0]

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        return published if name == b"mail2026._domainkey.send.example.net." else None

    assert dkim.verify(message, dnsfunc=dns)
    assert not dkim.verify(message.replace(b"Day 5", b"Day 6"), dnsfunc=dns)


def test_without_a_key_it_says_what_to_set_and_a_bad_key_is_named(tmp_path: Path) -> None:
    unset = run("dkim-record")
    assert unset.returncode == 2 and "set DKIM_SELECTOR and DKIM_PRIVATE_KEY_FILE" in unset.stderr
    half = run("dkim-record", DKIM_SELECTOR="mail2026")
    assert half.returncode != 0 and "go together" in half.stderr and "Traceback" not in half.stderr
    (tmp_path / "bad.pem").write_text("not a key")
    bad = run("render", "--out", str(tmp_path / "out"), "--day", "1",
              DKIM_SELECTOR="mail2026", DKIM_PRIVATE_KEY_FILE=str(tmp_path / "bad.pem"))  # fmt: skip
    assert bad.returncode == 1 and "DKIM_PRIVATE_KEY_FILE is not an unencrypted PEM private key" in bad.stderr
    assert "Traceback" not in bad.stderr
