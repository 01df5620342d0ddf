"""A stand-in for Amazon SNS: a signing key and its certificate, and messages signed as SNS signs them
(the string to sign written out here from AWS's documentation, not taken from the code under test)."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-feedback"


@dataclass
class FakeSns:
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @classmethod
    def create(cls, *, valid_from: datetime | None = None, days: int = 365) -> FakeSns:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.us-east-1.amazonaws.com")])
        start = valid_from or datetime.now(UTC) - timedelta(days=1)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + timedelta(days=days))
            .sign(key, hashes.SHA256())
        )
        return cls(key, certificate)

    def write(self, path: Path) -> Path:
        path.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        return path

    def notification(self, message: Any, *, topic: str = TOPIC, version: str = "1",
                     message_id: str | None = None, subject: str | None = None) -> dict[str, Any]:  # fmt: skip
        body = {
            "Type": "Notification",
            "MessageId": message_id or str(uuid.uuid4()),
            "TopicArn": topic,
            "Message": message if isinstance(message, str) else json.dumps(message),
            "Timestamp": "2026-11-29T07:00:00.000Z",
            "SignatureVersion": version,
            "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000.pem",
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
        }
        if subject is not None:
            body["Subject"] = subject
        signed = f"Message\n{body['Message']}\nMessageId\n{body['MessageId']}\n"
        if subject is not None:
            signed += f"Subject\n{subject}\n"
        signed += f"Timestamp\n{body['Timestamp']}\nTopicArn\n{topic}\nType\nNotification\n"
        return {**body, "Signature": self.sign(signed, version)}

    def subscription(self, *, topic: str = TOPIC) -> dict[str, Any]:
        body = {
            "Type": "SubscriptionConfirmation",
            "MessageId": str(uuid.uuid4()),
            "Token": "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a747ba6f3beb71854e285d6"
            "ad02428b09ceece29417f1f02d609c582afbacc99c583a916b9981dd2728f4ae6fdb82efd087cc3b7849e05798d2d2785c03b0"
            "879594eeac82c01f235d0e717736",
            "TopicArn": topic,
            "Message": f"You have chosen to subscribe to the topic {topic}.",
            "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=x&Token=y",
            "Timestamp": "2026-11-29T07:00:00.000Z",
            "SignatureVersion": "1",
            "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000.pem",
        }
        names = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
        signed = "".join(f"{name}\n{body[name]}\n" for name in names)
        return {**body, "Signature": self.sign(signed, "1")}

    def sign(self, text: str, version: str) -> str:
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303 - SNS's own version 1
        return base64.b64encode(self.key.sign(text.encode(), padding.PKCS1v15(), algorithm)).decode()
