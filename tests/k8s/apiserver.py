#!/usr/bin/env python3
"""A stand-in for kube-apiserver in the k8s tests: GET /api/v1/nodes/{name} over real TLS.

  apiserver.py --cert server.crt --key server.key [--client-ca ca.crt] --state DIR

Listens on 127.0.0.1 on an ephemeral port and prints the port on stdout. Everything it answers
comes from DIR, re-read at every request so that a test can change it between requests:
  nodes/<name>.json   the Node objects served
  tokens              lines "<token> allow|forbid <user>": bearer tokens it accepts
  clients             lines "<common name> allow|forbid": client certificates (signed by
                      --client-ca) it accepts
  status              optional: an HTTP status to answer every request with (e.g. 503)
It appends "<path> <status> <token|cert|none>" to DIR/requests.log (never a token). It exits
when its stdin closes, so it cannot outlive the test that started it.
"""
import argparse
import json
import os
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/api/v1/nodes/"


def read_lines(path):
    try:
        with open(path) as f:
            return [line.split() for line in f if line.strip()]
    except FileNotFoundError:
        return []


def status_object(code, reason, message, details=None):
    obj = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code}
    if details:
        obj["details"] = details
    return obj


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = "."

    def log_message(self, fmt, *args):
        pass

    def send_json(self, code, obj, how):
        body = json.dumps(obj, indent=2).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        with open(os.path.join(self.state, "requests.log"), "a") as log:
            log.write(f"{self.path} {code} {how}\n")

    def authenticate(self):
        """(how, user, verdict); verdict None when nothing authenticated the request."""
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            token = auth[len("Bearer "):]
            for fields in read_lines(os.path.join(self.state, "tokens")):
                if len(fields) >= 3 and fields[0] == token:
                    return "token", fields[2], fields[1]
            return "token", None, None
        cert = self.connection.getpeercert()
        if cert:
            cn = next((v for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"),
                      "")
            for fields in read_lines(os.path.join(self.state, "clients")):
                if len(fields) >= 2 and fields[0] == cn:
                    return "cert", cn, fields[1]
            return "cert", None, None
        return "none", "system:anonymous", "forbid"

    def do_GET(self):
        how, user, verdict = self.authenticate()
        forced = read_lines(os.path.join(self.state, "status"))
        if forced:
            code = int(forced[0][0])
            return self.send_json(code, status_object(code, "InternalError", "forced by the test"),
                                  how)
        if verdict is None:
            return self.send_json(401, status_object(401, "Unauthorized", "Unauthorized"), how)
        name = self.path[len(PREFIX):] if self.path.startswith(PREFIX) else ""
        if not name or "/" in name or "?" in name:
            return self.send_json(404, status_object(404, "NotFound", "the server could not "
                                                     "find the requested resource"), how)
        if verdict != "allow":
            return self.send_json(403, status_object(
                403, "Forbidden",
                f'nodes "{name}" is forbidden: User "{user}" cannot get resource "nodes" in API '
                f'group "" at the cluster scope', {"name": name, "kind": "nodes"}), how)
        raw = os.path.join(self.state, "nodes", name + ".raw")
        if os.path.exists(raw):  # served byte for byte, whatever it holds
            with open(raw, "rb") as f:
                body = f.read()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            with open(os.path.join(self.state, "requests.log"), "a") as log:
                log.write(f"{self.path} 200 {how}\n")
            return None
        try:
            with open(os.path.join(self.state, "nodes", name + ".json")) as f:
                node = json.load(f)
        except FileNotFoundError:
            return self.send_json(404, status_object(404, "NotFound", f'nodes "{name}" not found',
                                                     {"name": name, "kind": "nodes"}), how)
        return self.send_json(200, node, how)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients that reject our certificate abort the handshake; that is expected


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--client-ca")
    p.add_argument("--state", required=True)
    args = p.parse_args()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    if args.client_ca:
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.load_verify_locations(args.client_ca)
    Handler.state = args.state
    server = Server(("127.0.0.1", 0), Handler)
    # The handshake runs in the request's thread, so a stuck client blocks nobody else.
    server.socket = ctx.wrap_socket(server.socket, server_side=True,
                                    do_handshake_on_connect=False)
    print(server.server_address[1], flush=True)

    def watch_stdin():
        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
