"""A real SMTP server for the notification tests and scripts/bench-mail (aiosmtpd).

Usage: mail_sink.py PORT OUT_DIR [REJECT_REGEX]
Every accepted message is written to OUT_DIR as one JSON file (envelope, subject, headers, the
decoded text and HTML parts); a recipient matching REJECT_REGEX is refused with a permanent 550.
Prints "ready" once it listens; stops on SIGTERM or when stdin closes.
"""
import email
import email.policy
import json
import os
import re
import signal
import sys
import threading
import time

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, out, reject):
        self.out = out
        self.reject = re.compile(reject) if reject else None
        self.count = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reject and self.reject.search(address):
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.out == "-":
            return "250 Message accepted"
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "subject": str(message["Subject"]),
            "headers": {k: str(v) for k, v in message.items()},
            "text": text.get_content() if text else "",
            "html": html.get_content() if html else "",
        }
        with self.lock:
            self.count += 1
            name = "%d-%d" % (time.time_ns(), self.count)
        path = os.path.join(self.out, name + ".json")
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(path + ".tmp", path)
        return "250 Message accepted"


def main():
    port = int(sys.argv[1])
    out = sys.argv[2]
    reject = sys.argv[3] if len(sys.argv) > 3 else ""
    controller = Controller(Sink(out, reject), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
