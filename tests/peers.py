"""Real peers for the transports: a private CA, an OAuth token endpoint, an SMTP
server that checks XOAUTH2 bearers, Postfix, and moto's SES in server mode."""

import base64
import datetime as dt
import ipaddress
import json
import os
import pwd
import shutil
import ssl
import subprocess
import tempfile
import threading
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.servers import _Handler, free_port, wait_until


class Certificates:
    """A throwaway CA and a certificate it signed for localhost / 127.0.0.1."""

    def __init__(self, directory: Path) -> None:
        now = dt.datetime.now(dt.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mailroom test CA")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, True, True, False, False), True
            )
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        directory.mkdir(parents=True, exist_ok=True)
        self.ca_file = directory / "ca.pem"
        self.cert_file = directory / "server.pem"
        self.key_file = directory / "server.key"
        self.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        self.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        for path in (directory, self.ca_file, self.cert_file, self.key_file):
            os.chmod(path, 0o755 if path.is_dir() else 0o644)  # Postfix reads them too

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


class TokenEndpoint:
    """Google's OAuth token endpoint, as far as a refresh goes."""

    def __init__(self) -> None:
        self.refresh_tokens = {"refresh-good"}
        self.issued: list[str] = []
        self.expires_in = 3600
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                length = int(self.headers["Content-Length"])
                form = parse_qs(self.rfile.read(length).decode())
                if form.get("grant_type") != ["refresh_token"] or form.get("client_id") != [
                    "client-1"
                ]:
                    return self._answer(401, {"error": "invalid_client"})
                if form.get("refresh_token", [""])[0] not in endpoint.refresh_tokens:
                    return self._answer(
                        400,
                        {"error": "invalid_grant", "error_description": "Token has been revoked."},
                    )
                token = f"ya29.access-{len(endpoint.issued) + 1}"
                endpoint.issued.append(token)
                return self._answer(
                    200,
                    {"access_token": token, "expires_in": endpoint.expires_in,
                     "token_type": "Bearer", "scope": "https://mail.google.com/"},
                )  # fmt: skip

            def _answer(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


def xoauth2_handler(endpoint: TokenEndpoint, user: str):
    """An SMTP handler that accepts only XOAUTH2 with a bearer the endpoint issued."""

    class Handler(_Handler):
        async def auth_XOAUTH2(self, server, args):  # noqa: N802 (aiosmtpd's naming)
            if len(args) < 2:
                return AuthResult(success=False, handled=False)
            fields = dict(
                part.split("=", 1)
                for part in base64.b64decode(args[1]).decode().split("\x01")
                if "=" in part
            )
            bearer = fields.get("auth", "").removeprefix("Bearer ")
            ok = fields.get("user") == user and bearer in endpoint.issued[-1:]
            return AuthResult(success=ok, handled=False, auth_data=fields.get("user"))

    return Handler


class Postfix:
    """A private Postfix instance on a loopback port, delivering every address at
    example.com and example.org to one Maildir the tests read."""

    def __init__(self, certificates: Certificates | None) -> None:
        self.certificates = certificates
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="mailroom-postfix-"))
        self.conf = self.dir / "conf"
        self.mail = self.dir / "mail"
        for sub in ("conf", "queue", "data", "mail"):
            (self.dir / sub).mkdir()
        user = pwd.getpwnam("postfix")
        for sub in ("data", "mail"):
            os.chown(self.dir / sub, user.pw_uid, user.pw_gid)
        os.chmod(self.dir, 0o755)
        (self.conf / "main.cf").write_text(
            f"""compatibility_level = 3.6
queue_directory = {self.dir}/queue
data_directory = {self.dir}/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.mailroom.invalid
mynetworks = 127.0.0.0/8
maillog_file = {self.dir}/maillog
maillog_file_prefixes = {self.dir}
smtputf8_enable = yes
"""
            + self.routing(user)
        )
        services = [
            f"127.0.0.1:{self.port} inet n - n - - smtpd",
            "pickup unix n - n 60 1 pickup",
            "cleanup unix n - n - 0 cleanup",
            "qmgr unix n - n 300 1 qmgr",
            "tlsmgr unix - - n 1000? 1 tlsmgr",
            "rewrite unix - - n - - trivial-rewrite",
            "bounce unix - - n - 0 bounce",
            "defer unix - - n - 0 bounce",
            "trace unix - - n - 0 bounce",
            "verify unix - - n - 1 verify",
            "flush unix n - n 1000? 0 flush",
            "proxymap unix - - n - - proxymap",
            "smtp unix - - n - - smtp",
            "relay unix - - n - - smtp",
            "lmtp unix - - n - - lmtp",
            "error unix - - n - - error",
            "retry unix - - n - - error",
            "discard unix - - n - - discard",
            "local unix - n n - - local",
            "virtual unix - n n - - virtual",
            "anvil unix - - n - 1 anvil",
            "scache unix - - n - 1 scache",
            "postlog unix-dgram n - n - 1 postlogd",
        ]
        (self.conf / "master.cf").write_text("\n".join(services) + "\n")
        self._postfix("start")
        wait_until(self._answers, timeout=20, what="Postfix to listen")

    def routing(self, user) -> str:
        """The main.cf lines that say where mail goes: every address of the two
        domains to one Maildir, over TLS when the client asks."""
        return f"""mydestination =
relay_domains =
virtual_mailbox_domains = example.com example.org
virtual_mailbox_base = {self.mail}
virtual_mailbox_maps = static:inbox/
virtual_uid_maps = static:{user.pw_uid}
virtual_gid_maps = static:{user.pw_gid}
smtpd_tls_security_level = may
smtpd_tls_cert_file = {self.certificates.cert_file}
smtpd_tls_key_file = {self.certificates.key_file}
"""

    def _postfix(self, action: str) -> None:
        # Postfix reports its problems to syslog only unless it has a terminal.
        result = subprocess.run(
            ["script", "-qec", f"postfix -c {self.conf} {action}", "/dev/null"],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"postfix {action} failed: {result.stdout}{self.log()}")

    def _answers(self) -> bool:
        import socket

        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def log(self) -> str:
        path = self.dir / "maillog"
        return path.read_text() if path.exists() else ""

    def delivered(self) -> list:
        inbox = self.mail / "inbox" / "new"
        files = sorted(inbox.iterdir(), key=lambda p: p.stat().st_mtime) if inbox.exists() else []
        return [message_from_bytes(p.read_bytes(), policy=policy.default) for p in files]

    def stop(self) -> None:
        try:
            self._postfix("stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class SESServer:
    """moto in server mode: a local SES v2 endpoint for boto3."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        self.url = f"http://127.0.0.1:{self.port}"

    def sent(self) -> list[dict]:
        """The raw messages moto recorded, newest last."""
        import urllib.request

        with urllib.request.urlopen(f"{self.url}/moto-api/data.json") as response:
            data = json.load(response)
        return data["ses"].get("RawMessage", [])

    def reset(self) -> None:
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(f"{self.url}/moto-api/reset", method="POST"))

    def stop(self) -> None:
        self.server.stop()
