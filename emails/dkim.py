"""DKIM signatures (RFC 6376), for operators who relay the course's mail through their own SMTP server.

A mailbox provider trusts mail whose ``From`` domain signed it. When the operator's relay does not sign
(a provider's API or relay usually does), the workers sign each message here: ``DKIM_SELECTOR`` and
``DKIM_PRIVATE_KEY_FILE`` (an RSA key in PEM, 2048 bits advised) sign for the sending domain, the
domain of ``MAIL_FROM``, so the signature aligns with From for DMARC. ``course dkim-record`` prints
the DNS TXT record to publish for it.

The header fields' canonical form and the folding come from dkimpy, the reference Python DKIM; the
relaxed body is made here in whole-buffer passes (dkimpy's line-by-line version cost 1.5 ms of the 2 ms
a signature took), and tests hold it equal to dkimpy's. The RSA signature is made by ``cryptography``
(OpenSSL): dkimpy's pure-Python RSA takes about 7 ms a message on this hardware, which would cap a worker
near 140 emails a second, where OpenSSL takes about 0.4 ms (``python -m bench micro`` prints what signing
costs). Tests verify every signature with dkimpy's own verifier against the public key.

Signed, with relaxed/relaxed canonicalization: From, Reply-To, To, Subject, Date, Message-ID, List-Id,
List-Unsubscribe, List-Unsubscribe-Post (RFC 8058 asks for both to be signed), MIME-Version and
Content-Type. From, Subject and the two List-Unsubscribe fields are signed once more than they occur,
so that nobody can add a second one after signing without breaking the signature.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
from dkim import fold, rfc822_parse
from dkim.canonicalization import CanonicalizationPolicy

from course.settings import Settings

SIGNED_FIELDS = (b"from", b"reply-to", b"to", b"subject", b"date", b"message-id", b"list-id",
                 b"list-unsubscribe", b"list-unsubscribe-post", b"mime-version", b"content-type")  # fmt: skip
OVERSIGNED = frozenset({b"from", b"subject", b"list-unsubscribe", b"list-unsubscribe-post"})
MIN_KEY_BITS = 1024  # what receivers accept (RFC 8301); 2048 is what to generate
_POLICY = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")
_SELECTOR = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$")


_BLANKS = re.compile(rb"\t[ \t]*| [ \t]+")  # a run of two or more blanks, or a tab: single spaces stay


def relaxed_body(body: bytes) -> bytes:
    """RFC 6376 3.4.4's relaxed body of a CRLF message, in three passes over the whole buffer: runs of
    blanks become one space, blanks before a line end go, empty lines at the end go (the body then ends in
    one CRLF, or is empty). dkimpy does the same line by line in Python, at about three times the cost;
    the tests hold the two equal."""
    body = _BLANKS.sub(b" ", body).replace(b" \r\n", b"\r\n")
    while body.endswith(b"\r\n\r\n"):
        body = body[:-2]
    if body and not body.endswith(b"\r\n"):  # never so in ours; as dkimpy does, its blanks stay
        body += b"\r\n"
    return b"" if body == b"\r\n" else body


class DkimError(ValueError):
    """The DKIM settings cannot sign: the message names the variable and what is wrong."""


class DkimSigner:
    def __init__(self, selector: str, domain: str, private_key_pem: bytes) -> None:
        if not _SELECTOR.fullmatch(selector):
            raise DkimError(f"DKIM_SELECTOR is not a DNS label (letters, digits, hyphens, dots): {selector!r}")
        try:
            key = serialization.load_pem_private_key(private_key_pem, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as error:
            raise DkimError(f"DKIM_PRIVATE_KEY_FILE is not an unencrypted PEM private key: {error}") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise DkimError("DKIM_PRIVATE_KEY_FILE must hold an RSA key (what every receiver verifies)")
        if key.key_size < MIN_KEY_BITS:
            raise DkimError(f"DKIM_PRIVATE_KEY_FILE holds a {key.key_size}-bit key; receivers need "
                            f"{MIN_KEY_BITS} bits or more (generate 2048)")  # fmt: skip
        self.selector = selector
        self.domain = domain
        self._key = key

    @classmethod
    def from_settings(cls, settings: Settings) -> DkimSigner | None:
        """The signer the settings ask for; None when DKIM is not set up (the relay signs, or nobody)."""
        if settings.dkim_selector is None or settings.dkim_private_key_file is None:
            return None
        path = Path(settings.dkim_private_key_file)
        try:
            pem = path.read_bytes()
        except OSError as error:
            raise DkimError(f"DKIM_PRIVATE_KEY_FILE cannot be read: {path}: {error.strerror}") from None
        return cls(settings.dkim_selector, settings.sending_domain, pem)

    def header(self, message: bytes, timestamp: int) -> bytes:
        """The ``DKIM-Signature`` header field (folded, ending in CRLF) to put on top of ``message``."""
        head, separator, body = message.partition(b"\r\n\r\n")
        if not separator:
            raise ValueError("a message's header ends with an empty line (CRLF CRLF)")
        headers, _ = rfc822_parse(head + separator)
        body_hash = base64.b64encode(hashlib.sha256(relaxed_body(body)).digest())
        present = [name.lower() for name, _ in headers]
        names = [name for name in SIGNED_FIELDS for _ in range(present.count(name) + (name in OVERSIGNED))]
        value = b"; ".join([
            b"v=1", b"a=rsa-sha256", b"c=relaxed/relaxed", b"d=" + self.domain.encode("ascii"),
            b"s=" + self.selector.encode("ascii"), b"t=%d" % timestamp, b"h=" + b" : ".join(names),
            b"bh=" + body_hash, b"b=",
        ])  # fmt: skip
        digest = hashlib.sha256()
        canonical = _POLICY.canonicalize_headers(headers)
        remaining = {name: [v for n, v in canonical if n == name] for name in set(names)}
        for name in names:  # each instance from the bottom up; one past the last signs its absence
            if remaining[name]:
                digest.update(name + b":" + remaining[name].pop())
        ((name, own),) = _POLICY.canonicalize_headers([(b"DKIM-Signature", b" " + value)])
        digest.update(name + b":" + own.rstrip(b"\r\n"))  # the signature's own field: no CRLF, empty b=
        signature = self._key.sign(digest.digest(), padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
        signed = value + base64.b64encode(signature)
        folded: bytes = fold(signed, namelen=len(b"DKIM-Signature"))
        return b"DKIM-Signature: " + folded + b"\r\n"

    def public_key(self) -> str:
        """The public key as DKIM's ``p=`` tag writes it: base64 DER SubjectPublicKeyInfo."""
        der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode("ascii")

    def dns_record(self) -> str:
        """The TXT record to publish, in zone-file form (the key split in strings of at most 255)."""
        text = f"v=DKIM1; k=rsa; p={self.public_key()}"
        strings = " ".join(f'"{text[i : i + 255]}"' for i in range(0, len(text), 255))
        return f"{self.selector}._domainkey.{self.domain}. IN TXT ( {strings} )"


def throwaway_signer(domain: str) -> DkimSigner:
    """A signer with a fresh 2048-bit key, for measuring what signing costs where none is set up."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())  # fmt: skip
    return DkimSigner("bench", domain, pem)
