"""`course dkim-record`: the DNS TXT record that publishes the public half of the DKIM key."""

from __future__ import annotations

import argparse
import sys

from course.settings import get_settings
from emails.dkim import DkimSigner


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    record = commands.add_parser(
        "dkim-record",
        help="print the DNS TXT record of the DKIM key",
        description="Print the TXT record that publishes the public half of DKIM_PRIVATE_KEY_FILE for "
        "DKIM_SELECTOR at the sending domain (MAIL_FROM's). Generate a key with: openssl genrsa -out dkim.pem 2048",
    )
    record.set_defaults(handler=_dkim_record)


def _dkim_record(arguments: argparse.Namespace) -> int:
    signer = DkimSigner.from_settings(get_settings())
    if signer is None:
        print("course dkim-record: DKIM is not set up: set DKIM_SELECTOR and DKIM_PRIVATE_KEY_FILE "
              "(a key: openssl genrsa -out dkim.pem 2048)", file=sys.stderr)  # fmt: skip
        return 2
    print(signer.dns_record())
    return 0
