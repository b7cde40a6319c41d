"""Log lines never carry a full address, whoever writes them."""

import io
import json
import logging

from workers.logs import configure_logging, get_logger


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_addresses_are_masked_in_library_lines_and_their_tracebacks():
    out = io.StringIO()
    configure_logging("json", "INFO", stream=out)
    try:
        raise ValueError("bob.smith@example.org is not deliverable")
    except ValueError:
        logging.getLogger("dramatiq.worker.WorkerThread").exception(
            'Failed to process message handle_event(\'{"email": "ada@example.com"}\')'
        )
    [line] = lines(out)
    text = json.dumps(line)
    assert "ada@example.com" not in text and "bob.smith@example.org" not in text
    assert "a***@example.com" in line["event"] and "b***@example.org" in line["exception"]


def test_addresses_are_masked_in_our_own_fields():
    out = io.StringIO()
    configure_logging("json", "INFO", stream=out)
    get_logger("mailroom.pipeline").warning(
        "email.retrying", to="c***@example.net", error="SMTP 450 <carol@example.net> try later"
    )
    [line] = lines(out)
    assert line["error"] == "SMTP 450 <c***@example.net> try later"
    assert line["to"] == "c***@example.net"  # already masked: unchanged
