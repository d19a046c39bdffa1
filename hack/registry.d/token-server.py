#!/usr/bin/env python3
"""A minimal token server for docker-registry's `auth.token` (the Docker
registry token protocol): GET /token?service=S&scope=repository:NAME:ACTIONS.

Anonymous callers get `pull` only; callers with the right Basic credentials
get every action they ask for. Tokens are RS256 JWTs carrying the signing
certificate in `x5c`, signed with `openssl dgst` (no Python crypto package).

Usage: token-server.py ADDR PORT KEY CERT USER PASSWORD ISSUER
"""

import base64
import json
import subprocess
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

ADDR, PORT, KEY, CERT, USER, PASSWORD, ISSUER = sys.argv[1:8]


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def cert_der():
    pem = open(CERT).read()
    body = pem.split("-----BEGIN CERTIFICATE-----")[1].split("-----END CERTIFICATE-----")[0]
    return "".join(body.split())


X5C = cert_der()


def sign(claims):
    header = {"typ": "JWT", "alg": "RS256", "x5c": [X5C]}
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", KEY], input=signing_input.encode(),
                         capture_output=True, check=True).stdout
    return signing_input + "." + b64url(sig)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urlparse(self.path)
        if url.path != "/token":
            self.send_error(404)
            return
        query = parse_qs(url.query)
        authorized = False
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            if (user, password) != (USER, PASSWORD):
                self.send_error(401, "bad credentials")
                return
            authorized = True
        access = []
        for scope in query.get("scope", []):
            for one in scope.split(" "):
                parts = one.split(":")
                if len(parts) < 3:
                    continue
                kind, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1].split(",")
                granted = actions if authorized else [a for a in actions if a == "pull"]
                access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": USER if authorized else "", "aud": query.get("service", [""])[0],
                  "exp": now + 600, "nbf": now - 10, "iat": now, "jti": str(uuid.uuid4()),
                  "access": access}
        token = sign(claims)
        body = json.dumps({"token": token, "access_token": token, "expires_in": 600}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write("token-server: " + (fmt % args) + "\n")


ThreadingHTTPServer((ADDR, int(PORT)), Handler).serve_forever()
