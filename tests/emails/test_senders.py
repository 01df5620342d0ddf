"""The senders against a real SMTP server on loopback: TLS, AUTH, replies, drops and timeouts."""

from __future__ import annotations

import smtplib
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from hypothesis import given
from hypothesis import strategies as st

from emails.mime import Envelope
from emails.senders import (
    MemorySender,
    OutboxSender,
    Outcome,
    SmtpConfig,
    SmtpSender,
    _stuffed,
    classify,
    sender_from_url,
)

from ..support.smtp import smtp_server


def envelope(recipient: str = "alex@example.com", number: int = 1) -> Envelope:
    data = (
        f"From: course@mail.example.org\r\nTo: {recipient}\r\nSubject: Day {number}\r\n"
        f"Message-ID: <{number}@mail.example.org>\r\n\r\nHello\r\n"
    ).encode()
    return Envelope("course@mail.example.org", recipient, f"<{number}@mail.example.org>", data)


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_tls(authority: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    return context


@pytest.fixture(scope="module")
def client_tls(authority: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    authority.configure_trust(context)
    return context


@pytest.mark.parametrize(
    ("code", "reply", "outcome"),
    [
        (250, "2.0.0 OK", Outcome.ACCEPTED),
        (421, "4.7.0 Try again later, closing connection", Outcome.RETRY),
        (451, "4.3.0 Temporary server error", Outcome.RETRY),
        (452, "4.2.2 The email account that you tried to reach is over quota", Outcome.RETRY),
        (550, "5.1.1 The email account that you tried to reach does not exist", Outcome.BAD_ADDRESS),
        (550, "5.7.26 This mail has been blocked because the sender is unauthenticated", Outcome.SENDER_BLOCKED),
        (554, "5.7.1 Message rejected under suspicion of SPAM", Outcome.SENDER_BLOCKED),
        (552, "5.3.4 Message size exceeds fixed limit", Outcome.FAILED),
        (550, "Requested action not taken: mailbox unavailable", Outcome.BAD_ADDRESS),
        (535, "Authentication credentials invalid", Outcome.SENDER_BLOCKED),
        (554, "Transaction failed", Outcome.FAILED),
    ],
)
def test_smtp_replies_are_classified(code: int, reply: str, outcome: Outcome) -> None:
    assert classify(code, reply).outcome is outcome


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "one command at a time"])
def test_one_connection_carries_a_whole_batch(pipelining: bool) -> None:
    with smtp_server(pipelining=pipelining) as (server, port):
        sender = sender_from_url(f"smtp://127.0.0.1:{port}", timeout=5)
        with sender.connect() as connection:
            results = [connection.send(envelope(f"reader{n}@example.com", n)) for n in range(5)]
        assert [result.outcome for result in results] == [Outcome.ACCEPTED] * 5
        assert len(server.received) == 5
        assert len({message.peer for message in server.received}) == 1


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "one command at a time"])
def test_a_dropped_connection_is_a_retry_and_the_next_message_reconnects(pipelining: bool) -> None:
    with smtp_server(pipelining=pipelining) as (server, port):
        server.plan("alex@example.com", "drop")
        sender = sender_from_url(f"smtp://127.0.0.1:{port}", timeout=5)
        with sender.connect() as connection:
            first = connection.send(envelope("alex@example.com", 1))
            second = connection.send(envelope("sam@example.com", 2))
        assert first.outcome is Outcome.RETRY and "connection" in first.reply
        assert second.outcome is Outcome.ACCEPTED


def test_starttls_with_auth(server_tls: ssl.SSLContext, client_tls: ssl.SSLContext) -> None:
    with smtp_server(tls=server_tls, credentials=("course", "s3cret/pass")) as (server, port):
        config = SmtpConfig.from_url(f"smtp+starttls://course:s3cret%2Fpass@127.0.0.1:{port}", timeout=5)
        assert (config.security, config.username, config.password) == ("starttls", "course", "s3cret/pass")
        with SmtpSender(config, client_tls).connect() as connection:
            assert connection.send(envelope()).outcome is Outcome.ACCEPTED
        assert len(server.received) == 1


def test_wrong_credentials_are_a_problem_on_our_side(server_tls: ssl.SSLContext, client_tls: ssl.SSLContext) -> None:
    with smtp_server(tls=server_tls, credentials=("course", "right")) as (server, port):
        config = SmtpConfig.from_url(f"smtp+starttls://course:wrong@127.0.0.1:{port}", timeout=5)
        with SmtpSender(config, client_tls).connect() as connection:
            result = connection.send(envelope())
        assert result.outcome is Outcome.SENDER_BLOCKED and result.code == 535
        assert server.received == []


def test_smtps_speaks_tls_from_the_first_byte(server_tls: ssl.SSLContext, client_tls: ssl.SSLContext) -> None:
    with smtp_server(tls=server_tls, implicit_tls=True) as (server, port):
        config = SmtpConfig.from_url(f"smtps://127.0.0.1:{port}", timeout=5)
        with SmtpSender(config, client_tls).connect() as connection:
            assert connection.send(envelope()).outcome is Outcome.ACCEPTED
        assert len(server.received) == 1


def test_a_certificate_we_do_not_trust_stops_sending_rather_than_retrying(server_tls: ssl.SSLContext) -> None:
    with smtp_server(tls=server_tls) as (server, port):
        config = SmtpConfig.from_url(f"smtp+starttls://127.0.0.1:{port}", timeout=5)
        with SmtpSender(config).connect() as connection:  # the system's CAs: ours is unknown to them
            result = connection.send(envelope())
        assert result.outcome is Outcome.SENDER_BLOCKED and "certificate" in result.reply
        assert server.received == []


def test_starttls_asked_of_a_server_without_it_is_a_configuration_problem() -> None:
    with smtp_server() as (server, port):
        config = SmtpConfig.from_url(f"smtp+starttls://127.0.0.1:{port}", timeout=5)
        with SmtpSender(config).connect() as connection:
            result = connection.send(envelope())
        assert result.outcome is Outcome.SENDER_BLOCKED and "STARTTLS" in result.reply
        assert server.received == []


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts TCP connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


def test_a_server_that_never_answers_times_out_as_a_retry(silent_server: int) -> None:
    sender = sender_from_url(f"smtp://127.0.0.1:{silent_server}", timeout=0.5)
    with sender.connect() as connection:
        result = connection.send(envelope())
    assert result.outcome is Outcome.RETRY


def test_nobody_listening_is_a_retry() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with sender_from_url(f"smtp://127.0.0.1:{port}", timeout=2).connect() as connection:
        assert connection.send(envelope()).outcome is Outcome.RETRY


def test_the_outbox_writes_one_complete_file_per_message(tmp_path: Path) -> None:
    sender = sender_from_url(f"outbox://{tmp_path}/mail")
    assert isinstance(sender, OutboxSender)
    with sender.connect() as connection:
        connection.send(envelope("alex@example.com", 1))
        connection.send(envelope("alex@example.com", 2))
    files = sorted((tmp_path / "mail").iterdir())
    assert [path.suffix for path in files] == [".eml", ".eml"]
    assert files[0].read_bytes() == envelope("alex@example.com", 1).data


def test_an_outbox_file_name_cannot_leave_the_folder(tmp_path: Path) -> None:
    sender = OutboxSender(tmp_path / "mail")
    with sender.connect() as connection:
        connection.send(envelope("a/../../b@example.com"))
    (written,) = (tmp_path / "mail").iterdir()
    assert written.parent == tmp_path / "mail" and "/" not in written.name


def test_memory_keeps_what_it_was_given() -> None:
    sender = sender_from_url("memory://")
    assert isinstance(sender, MemorySender)
    with sender.connect() as connection:
        connection.send(envelope())
    assert sender.sent == [envelope()]


@pytest.mark.parametrize("scheme", ["smtp", "smtp+starttls", "smtps"])
def test_the_connection_sends_without_waiting_for_acks(
    scheme: str, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    # Nagle's algorithm off: over TLS it held each long message's last record for the server's delayed
    # ACK (40 ms a message); the figures are a benchmark's (docs/performance.md), this is the setting behind them.
    tls = {"smtp": None, "smtp+starttls": server_tls, "smtps": server_tls}[scheme]
    with smtp_server(tls=tls, implicit_tls=scheme == "smtps") as (server, port):
        sender = SmtpSender(SmtpConfig.from_url(f"{scheme}://127.0.0.1:{port}", timeout=5), client_tls)
        with sender.connect() as connection:
            long = envelope()
            long = Envelope(long.mail_from, long.recipient, long.message_id, long.data + (b"x" * 76 + b"\r\n") * 500)
            assert connection.send(long).outcome is Outcome.ACCEPTED
            client = connection._client
            assert client is not None and client.sock is not None
            assert client.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        assert len(server.received) == 1


@given(st.binary(max_size=300), st.sampled_from([b"", b".", b"\r\n", b"\n", b".\r\n", b"x\r\n.."]))
def test_dot_stuffing_is_smtplibs_to_the_byte(body: bytes, ending: bytes) -> None:
    """Our DATA (a replace in C) carries exactly what smtplib's regular expression would have."""
    data = body + ending
    expected = smtplib._quote_periods(data)  # type: ignore[attr-defined]  # the standard library's own rule
    if expected[-2:] != b"\r\n":
        expected += b"\r\n"
    assert _stuffed(data) == expected + b".\r\n"


def test_lines_that_start_with_a_dot_arrive_whole() -> None:
    with smtp_server() as (handler, port):
        sender = sender_from_url(f"smtp://127.0.0.1:{port}", timeout=5)
        data = envelope().data.replace(b"Hello\r\n", b".hidden\r\n..two\r\nend.\r\n.")
        with sender.connect() as connection:
            assert connection.send(Envelope("course@mail.example.org", "alex@example.com", "<1@x>", data)).outcome is (
                Outcome.ACCEPTED
            )
        received = handler.to("alex@example.com")[0].message.get_payload()
        assert received == ".hidden\r\n..two\r\nend.\r\n.\r\n"


class Conversation:
    """An SMTP server of a few lines, for what aiosmtpd will not do: it records what each read from the
    socket held, and answers from a script (the commands it does not know: 250)."""

    def __init__(self, answers: dict[bytes, list[bytes]], patience: float | None = None, held: int = 0) -> None:
        """``patience``: answer the end of each of the first ``held`` messages only once more has come from
        the client (the next message's commands, pipelined behind it) or after this many seconds;
        ``waited_out`` counts the latter."""
        self.answers = answers
        self.patience = patience
        self.held = held
        self.waited_out = 0
        self.reads: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _answer(self, command: bytes) -> bytes:
        for start, replies in self.answers.items():
            if command.upper().startswith(start) and replies:
                return replies.pop(0)
        if command.upper().startswith(b"EHLO"):
            return b"250-conversation\r\n250-PIPELINING\r\n250 HELP\r\n"
        if command.upper().startswith(b"DATA"):
            return b"354 go on\r\n"
        return b"221 bye\r\n" if command.upper().startswith(b"QUIT") else b"250 ok\r\n"

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        with connection:
            connection.sendall(b"220 conversation\r\n")
            pending, in_data = b"", False
            while chunk := connection.recv(65536):
                self.reads.append(chunk)
                pending += chunk
                while True:
                    if in_data:
                        end = pending.find(b"\r\n.\r\n")
                        if end < 0 and not pending.startswith(b".\r\n"):
                            break
                        cut = 3 if pending.startswith(b".\r\n") else end + 5
                        pending, in_data = pending[cut:], False
                        if self.patience is not None and self.held > 0:
                            self.held -= 1
                            if not pending:
                                pending += self._more(connection, self.patience)
                        connection.sendall(self._answer(b"END-OF-DATA"))
                        continue
                    line, found, rest = pending.partition(b"\r\n")
                    if not found:
                        break
                    pending = rest
                    reply = self._answer(line)
                    connection.sendall(reply)
                    in_data = reply.startswith(b"354")
                    if line.upper().startswith(b"QUIT"):
                        return

    def _more(self, connection: socket.socket, seconds: float) -> bytes:
        connection.settimeout(seconds)
        try:
            more = connection.recv(65536)
        except TimeoutError:
            self.waited_out += 1
            return b""
        finally:
            connection.settimeout(None)
        self.reads.append(more)
        return more


def test_a_pipelining_server_gets_mail_rcpt_and_data_in_one_write() -> None:
    conversation = Conversation({})
    with sender_from_url(f"smtp://127.0.0.1:{conversation.port}", timeout=5).connect() as connection:
        assert connection.send(envelope("alex@example.com", 1)).outcome is Outcome.ACCEPTED
        assert connection.send(envelope("sam@example.com", 2)).outcome is Outcome.ACCEPTED
    conversation.thread.join(5)
    together = [read for read in conversation.reads if read.startswith(b"MAIL FROM")]
    assert together == [
        b"MAIL FROM:<course@mail.example.org>\r\nRCPT TO:<alex@example.com>\r\nDATA\r\n",
        b"MAIL FROM:<course@mail.example.org>\r\nRCPT TO:<sam@example.com>\r\nDATA\r\n",
    ]


def test_a_data_accepted_after_a_refused_recipient_gets_an_empty_message_and_nothing_is_sent() -> None:
    """RFC 2920: a server may answer 354 to a pipelined DATA whose recipient it refused; the client ends
    it with no message (which the server refuses), and the refusal of the address is the outcome."""
    conversation = Conversation({b"RCPT": [b"550 5.1.1 no such user\r\n"],
                                 b"END-OF-DATA": [b"554 5.5.1 no valid recipients\r\n"]})  # fmt: skip
    with sender_from_url(f"smtp://127.0.0.1:{conversation.port}", timeout=5).connect() as connection:
        refused = connection.send(envelope("gone@example.com", 1))
        after = connection.send(envelope("alex@example.com", 2))
    conversation.thread.join(5)
    assert refused.outcome is Outcome.BAD_ADDRESS and "no such user" in refused.reply
    assert after.outcome is Outcome.ACCEPTED
    sent = b"".join(conversation.reads)
    assert b"DATA\r\n.\r\nrset\r\n" in sent  # the empty message, then the transaction reset
    assert sent.count(b"Subject: Day") == 1  # only the second message's words were sent


@pytest.mark.parametrize(
    "address",
    ["jöran@example.com", "alex@exämple.com", "alex@example.com\r\nRCPT TO:<b@example.com>", "a>b@example.com"],
)
def test_an_address_a_command_cannot_carry_is_refused_and_nothing_of_it_is_sent(address: str) -> None:
    conversation = Conversation({})
    with sender_from_url(f"smtp://127.0.0.1:{conversation.port}", timeout=5).connect() as connection:
        refused = connection.send(envelope(address, 1))
        after = connection.send(envelope("alex@example.com", 2))
    conversation.thread.join(5)
    assert refused.outcome is Outcome.FAILED and "ASCII" in refused.reply
    assert after.outcome is Outcome.ACCEPTED
    assert b"".join(conversation.reads).count(b"RCPT TO") == 1


# --- A chunk in turn: the next message's commands behind the previous message ----------------------------


def test_a_chunk_costs_one_round_trip_a_message() -> None:
    """The server answers a message's end only once the next message's commands have come (or after a
    while): sent one at a time, each message waits it out; sent as a chunk, none does, since each
    message's commands went out with the message before it."""
    chunk = [envelope(f"reader{n}@example.com", n) for n in range(4)]
    one_by_one = Conversation({}, patience=0.5, held=2)
    with sender_from_url(f"smtp://127.0.0.1:{one_by_one.port}", timeout=5).connect() as connection:
        assert [connection.send(each).outcome for each in chunk[:2]] == [Outcome.ACCEPTED] * 2
    one_by_one.thread.join(10)
    assert one_by_one.waited_out == 2

    together = Conversation({}, patience=10, held=3)  # the last message has nothing behind it
    with sender_from_url(f"smtp://127.0.0.1:{together.port}", timeout=30).connect() as connection:
        assert [result.outcome for result in connection.send_each(chunk)] == [Outcome.ACCEPTED] * 4
    together.thread.join(10)
    assert together.waited_out == 0
    sent = b"".join(together.reads)
    assert sent.count(b"\r\n.\r\nMAIL FROM:<course@mail.example.org>\r\nRCPT TO:<reader") == 3
    assert sent.count(b"Subject: Day") == 4


@pytest.mark.parametrize("chunked", [False, True], ids=["one by one", "as a chunk"])
@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "one command at a time"])
def test_after_a_refusal_the_same_connection_goes_on_and_the_results_come_in_order(
    pipelining: bool, chunked: bool
) -> None:
    """Refusals of one message (an address, a full mailbox, a size, an address the server cannot take) leave
    the connection to the next, sent one by one or as a chunk (a sender-side 5.7 ends a chunk: below)."""
    with smtp_server(pipelining=pipelining) as (server, port):
        server.plan("gone@example.com", "rcpt", "550 5.1.1 No such user")
        server.plan("full@example.com", "data", "452 4.2.2 Mailbox full")
        server.plan("big@example.com", "data", "552 5.3.4 Message too big")
        chunk = [envelope(address, n) for n, address in enumerate(
            ["alex@example.com", "gone@example.com", "full@example.com", "sam@example.com", "big@example.com",
             "jöran@example.com", "kim@example.com"]
        )]  # fmt: skip
        with sender_from_url(f"smtp://127.0.0.1:{port}", timeout=5).connect() as connection:
            results = list(connection.send_each(chunk)) if chunked else [connection.send(each) for each in chunk]
        assert [result.outcome for result in results] == [
            Outcome.ACCEPTED, Outcome.BAD_ADDRESS, Outcome.RETRY, Outcome.ACCEPTED, Outcome.FAILED, Outcome.FAILED,
            Outcome.ACCEPTED,
        ]  # fmt: skip
        assert [message.recipient for message in server.received] == [
            "alex@example.com", "sam@example.com", "kim@example.com"
        ]  # fmt: skip
        assert len({message.peer for message in server.received}) == 1


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "one command at a time"])
def test_a_5_7_refusal_ends_the_chunk_and_nothing_after_it_reaches_the_server(pipelining: bool) -> None:
    """The next message's commands went out behind the refused one, and its DATA was accepted: it is given up
    by closing the connection, never by sending it empty."""
    with smtp_server(pipelining=pipelining) as (server, port):
        server.plan("spam@example.com", "data", "554 5.7.1 Message rejected as spam")
        addresses = ["alex@example.com", "spam@example.com", "sam@example.com", "kim@example.com"]
        chunk = [envelope(address, n) for n, address in enumerate(addresses)]
        with sender_from_url(f"smtp://127.0.0.1:{port}", timeout=5).connect() as connection:
            outcomes = [result.outcome for result in connection.send_each(chunk)]
            assert outcomes == [Outcome.ACCEPTED, Outcome.SENDER_BLOCKED]
            assert connection.send(envelope("lee@example.com", 9)).outcome is Outcome.ACCEPTED  # a new connection
        assert [message.recipient for message in server.received] == ["alex@example.com", "lee@example.com"]
        assert all(message.subject.startswith("Day") for message in server.received)


def test_a_caller_that_stops_reading_gives_the_next_message_up_and_the_connection_goes_on() -> None:
    with smtp_server() as (server, port):
        chunk = [envelope(f"reader{n}@example.com", n) for n in range(3)]
        with sender_from_url(f"smtp://127.0.0.1:{port}", timeout=5).connect() as connection:
            results = connection.send_each(chunk)
            assert next(results).outcome is Outcome.ACCEPTED
            results.close()  # reader1's commands went out; its message never does
            assert connection.send(envelope("lee@example.com", 9)).outcome is Outcome.ACCEPTED
        assert [message.recipient for message in server.received] == ["reader0@example.com", "lee@example.com"]
        assert server.received[0].peer != server.received[1].peer


def test_a_connection_dropped_mid_chunk_retries_that_message_and_sends_the_rest_on_a_new_one() -> None:
    with smtp_server() as (server, port):
        server.plan("sam@example.com", "drop")
        addresses = ["alex@example.com", "sam@example.com", "kim@example.com", "lee@example.com"]
        chunk = [envelope(address, n) for n, address in enumerate(addresses)]
        with sender_from_url(f"smtp://127.0.0.1:{port}", timeout=5).connect() as connection:
            results = list(connection.send_each(chunk))
        assert [result.outcome for result in results] == [
            Outcome.ACCEPTED, Outcome.RETRY, Outcome.ACCEPTED, Outcome.ACCEPTED
        ]  # fmt: skip
        assert "connection" in results[1].reply
        received = server.received
        assert [message.recipient for message in received] == ["alex@example.com", "kim@example.com", "lee@example.com"]
        assert received[0].peer != received[1].peer == received[2].peer
