#!/usr/bin/env python3
"""A stand-in for kube-apiserver in dualstack-cni's tests: Nodes and TokenRequests over real TLS.

Written from the Kubernetes API's documented semantics (API concepts: resource versions, list
chunking, watches and bookmarks; the TokenRequest API), not from kube-apiserver's code, and never
compared with a real one byte for byte. What it serves:

  GET  /api/v1/nodes/NAME                  one Node (404 Status with details when absent)
  GET  /api/v1/nodes?limit=N&continue=T    a NodeList: metadata.resourceVersion, and
                                           metadata.continue + remainingItemCount while more
                                           items remain. Every page of one list is read at the
                                           resourceVersion of its first page; a continue token
                                           older than the compacted history answers 410 (reason
                                           Expired, with a fresh continue token, as the API does)
  GET  /api/v1/nodes?watch=1&resourceVersion=RV&allowWatchBookmarks=true&timeoutSeconds=N
                                           a chunked stream, one JSON event per line:
                                           {"type":"ADDED|MODIFIED|DELETED","object":{...}} for
                                           every change after RV; without RV (or RV "0") first a
                                           synthetic ADDED per existing Node; BOOKMARKs
                                           ({"type":"BOOKMARK","object":{"kind":"Node",
                                           "apiVersion":"v1","metadata":{"resourceVersion":
                                           RV}}}) every --bookmark-interval seconds when asked
                                           for; the stream ends cleanly after timeoutSeconds
                                           (default 1800). RV older than the compacted history:
                                           an ERROR event holding a 410 Status (reason Expired),
                                           or with `set gone-mode http` an HTTP 410 answer
  POST /api/v1/namespaces/NS/serviceaccounts/NAME/token
                                           a TokenRequest (spec.expirationSeconds, default 3600,
                                           at least --min-token-expiration (600 like the API,
                                           else 422), at most --max-token-expiration): 201 with
                                           status.token (a JWT-shaped token for
                                           system:serviceaccount:NS:NAME) and
                                           status.expirationTimestamp. The token is accepted
                                           until it expires, then answered with 401. Every
                                           service account exists.

Every change gets the next resourceVersion (a decimal counter, one for the whole server, as
etcd's revision is); `ctl bump` advances it without a Node change, as changes of other resources
do on a real cluster. The history of changes since the last `ctl compact` is kept, so a watch can
resume from any resourceVersion not older than that.

Serve:
  apiserver.py [serve] --cert server.crt --key server.key [--client-ca ca.crt] --state DIR
               [--listen 127.0.0.1|ADDRESS] [--port 0|N] [--bookmark-interval 1]
               [--min-token-expiration 600] [--max-token-expiration 86400] [--ignore-stdin]

  Listens on ADDRESS (IPv4 or IPv6) and the port (0: an ephemeral one), prints the port on stdout
  and writes it to DIR/port. Exits when its stdin closes (so it cannot outlive the test that
  started it), unless --ignore-stdin: then end it by PID (SIGTERM or SIGKILL; both are safe).

The state directory DIR:
  tokens          lines "<token> allow|forbid <user>": bearer tokens accepted (re-read at every
                  request). "allow" may get, list and watch nodes and create tokens; "forbid" is
                  answered 403. Tokens issued through TokenRequest are allowed too.
  clients         lines "<common name> allow|forbid": client certificates (signed by
                  --client-ca) accepted (re-read at every request)
  status          optional: an HTTP status to answer every request with (e.g. 503), until removed
  nodes/NAME.json optional: Node objects imported as changes (ADDED, MODIFIED; DELETED when the
                  file goes), checked at every request and twice a second. Meant for a handful of
                  nodes; use `ctl apply` for many.
  nodes/NAME.raw  optional: the answer to GET of node NAME, byte for byte (not necessarily JSON);
                  only for that GET, never in lists or watches
  journal, snapshot.json
                  the store (Nodes, the resourceVersion counter, the history, issued tokens):
                  every change is appended to the journal before it is visible, so the server can
                  be killed and started again on the same DIR (and port) and resumes where it was
  requests.log    one line per request: "<path with query> <status> <token|cert|none>" (never a
                  token); a watch is logged when its stream starts
  control.sock    the control socket of `ctl`; port, lock (held while serving)

Control (tests and scripts), through DIR/control.sock; the commands marked * also work while the
server is stopped (they edit the store on disk, and the server serves them when started again):
  apiserver.py ctl --state DIR COMMAND
  * apply FILE|-            add or replace Nodes: a Node object, a list of them, a NodeList, or
                            one object per line; prints the new resourceVersion. A Node equal to
                            the stored one but for its resourceVersion is no change (as in the API)
  * delete NAME...          delete Nodes (absent ones are ignored)
  * generate N [--prefix node-] [--start 0]
                            add N Nodes of realistic size (labels, annotations, conditions, 30
                            images: about 6 KB of JSON each) named PREFIX00000...: podCIDRs
                            10.(64+i/256).(i%256).0/24 and fd00:10:244:i::/64 (i in hex), InternalIPs
                            172.16.(i/256).(i%256) and fd00:172:16::i (i in hex)
  * bump                    advance the resourceVersion without a Node change
  * compact                 drop the history up to now: a watch from an older resourceVersion
                            gets 410, and so does a continue token from before now
  * rv                      print the current resourceVersion
    close-watches [--abort] end every open watch stream cleanly (the end of a chunked answer), or
                            with --abort by cutting the connection
    fail STATUS SECONDS     answer every request with STATUS for SECONDS (STATUS 0: stop now)
    inject LINE             write LINE (and a newline) into every open watch stream
    set KEY VALUE           bookmark-interval SECONDS (0: none); gone-mode event|http;
                            watch-mode normal|close|garbage|hang (close: every watch ends right
                            after its headers; garbage: a line that is not JSON, then the end;
                            hang: headers, then silence); list-mode normal|garbage;
                            chunk-size BYTES (0: each batch of events in one chunk, else chunks
                            of at most BYTES, splitting lines); min-token-expiration SECONDS
    stats                   counters: requests, lists, watches, open watches, tokens issued

Certificates for a server on other addresses than 127.0.0.1 (e.g. in a network namespace):
  apiserver.py pki DIR [--san IP:10.0.0.1 ...]
                            DIR/ca.crt, ca.key, server.crt (for 127.0.0.1, localhost and every
                            --san), server.key, with the openssl CLI
"""
import argparse
import base64
import bisect
import errno
import fcntl
import hashlib
import json
import os
import secrets
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

NODES = "/api/v1/nodes"
MAX_BODY = 1 << 20


def read_lines(path):
    try:
        with open(path) as f:
            return [line.split() for line in f if line.strip()]
    except FileNotFoundError:
        return []


def status_object(code, reason, message, details=None, meta=None):
    obj = {"kind": "Status", "apiVersion": "v1", "metadata": meta or {}, "status": "Failure",
           "message": message, "reason": reason, "code": code}
    if details:
        obj["details"] = details
    return obj


def dumps(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class Gone(Exception):
    def __init__(self, status):
        super().__init__(status["message"])
        self.status = status


class Store:
    """Nodes with their versions since the last compaction, the event history, issued tokens.

    Every change is appended to DIR/journal (and flushed) before it becomes visible; a compaction
    writes DIR/snapshot.json and starts a new journal."""

    def __init__(self, state, writable=True):
        self.state = state
        self.cond = threading.Condition()
        self.rv = 0
        self.compacted = 0
        self.current = {}      # name -> (rv, bytes, content hash)
        self.versions = {}     # name -> [(rv, bytes or None)], rv > compacted plus one at or below
        self.events = []       # [(rv, line bytes)], rv > compacted
        self.event_base = 0    # events dropped by compactions (absolute index of events[0])
        self.tokens = {}       # token -> (user, expires unix)
        self.file_backed = {}  # name -> (mtime_ns, size, ino) of nodes/NAME.json
        self.close_gen = 0
        self.close_abort = False
        self.journal = None
        self.load()
        if writable:
            self.journal = open(os.path.join(state, "journal"), "a")

    # -- persistence ------------------------------------------------------------------------
    def load(self):
        try:
            with open(os.path.join(self.state, "snapshot.json")) as f:
                snap = json.load(f)
        except FileNotFoundError:
            snap = None
        if snap:
            self.rv = self.compacted = snap["rv"]
            for obj in snap["nodes"]:
                data = dumps(obj)
                name = obj["metadata"]["name"]
                rv = int(obj["metadata"]["resourceVersion"])
                self.current[name] = (rv, data, content_hash(obj))
                self.versions[name] = [(rv, data)]
            self.tokens = {t: (u, e) for t, u, e in snap.get("tokens", [])}
            self.file_backed = {n: tuple(s) for n, s in snap.get("fileBacked", {}).items()}
        try:
            with open(os.path.join(self.state, "journal")) as f:
                lines = f.readlines()
        except FileNotFoundError:
            lines = []
        for line in lines:
            try:
                op = json.loads(line)
            except ValueError:
                continue  # the last line of a journal cut by SIGKILL
            self.replay(op)

    def replay(self, op):
        kind = op["op"]
        if kind == "put":
            self._put(op["object"], op["rv"], op.get("file"))
        elif kind == "delete":
            self._delete(op["name"], op["rv"])
        elif kind == "bump":
            self.rv = op["rv"]
        elif kind == "token":
            self.tokens[op["token"]] = (op["user"], op["exp"])

    def log(self, op):
        if self.journal:
            self.journal.write(json.dumps(op, separators=(",", ":")) + "\n")
            self.journal.flush()

    # -- changes (callers hold self.cond) ----------------------------------------------------
    def _put(self, obj, rv, file_stat=None):
        name = obj["metadata"]["name"]
        etype = "MODIFIED" if name in self.current else "ADDED"
        data = dumps(obj)
        self.rv = rv
        self.current[name] = (rv, data, content_hash(obj))
        self.versions.setdefault(name, []).append((rv, data))
        self.events.append((rv, b'{"type":"%s","object":%s}\n' % (etype.encode(), data)))
        if file_stat is not None:
            self.file_backed[name] = tuple(file_stat)
        else:
            self.file_backed.pop(name, None)

    def _delete(self, name, rv):
        old = self.current.pop(name, None)
        self.rv = rv
        self.file_backed.pop(name, None)
        if old is None:
            return
        obj = json.loads(old[1])
        obj["metadata"]["resourceVersion"] = str(rv)
        self.versions.setdefault(name, []).append((rv, None))
        self.events.append((rv, b'{"type":"DELETED","object":%s}\n' % dumps(obj)))

    def put(self, obj, file_stat=None):
        """Stores a Node; returns its resourceVersion (the stored one when nothing changed)."""
        obj = validate_node(obj)
        name = obj["metadata"]["name"]
        with self.cond:
            old = self.current.get(name)
            if old is not None and old[2] == content_hash(obj):
                if file_stat is not None:
                    self.file_backed[name] = tuple(file_stat)
                return old[0]
            rv = self.rv + 1
            meta = obj["metadata"]
            meta["resourceVersion"] = str(rv)
            if old is not None:
                old_meta = json.loads(old[1])["metadata"]
                for key in ("uid", "creationTimestamp"):
                    if key in old_meta:
                        meta.setdefault(key, old_meta[key])
            meta.setdefault("uid", str(uuid_for(name, rv)))
            meta.setdefault("creationTimestamp", rfc3339(time.time()))
            self.log({"op": "put", "rv": rv, "object": obj,
                      "file": list(file_stat) if file_stat is not None else None})
            self._put(obj, rv, file_stat)
            self.cond.notify_all()
            return rv

    def delete(self, name):
        with self.cond:
            if name not in self.current:
                return self.rv
            rv = self.rv + 1
            self.log({"op": "delete", "rv": rv, "name": name})
            self._delete(name, rv)
            self.cond.notify_all()
            return rv

    def bump(self):
        with self.cond:
            self.rv += 1
            self.log({"op": "bump", "rv": self.rv})
            self.cond.notify_all()
            return self.rv

    def add_token(self, token, user, exp):
        with self.cond:
            self.log({"op": "token", "token": token, "user": user, "exp": exp})
            self.tokens[token] = (user, exp)

    def compact(self):
        with self.cond:
            self.compacted = self.rv
            self.event_base += len(self.events)
            self.events = []
            self.versions = {n: [(c[0], c[1])] for n, c in self.current.items()}
            now = time.time()
            snap = {"rv": self.rv,
                    "nodes": [json.loads(c[1]) for _, c in sorted(self.current.items())],
                    "tokens": [[t, u, e] for t, (u, e) in self.tokens.items() if e > now],
                    "fileBacked": {n: list(s) for n, s in self.file_backed.items()}}
            tmp = os.path.join(self.state, "snapshot.json.tmp")
            with open(tmp, "w") as f:
                json.dump(snap, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, os.path.join(self.state, "snapshot.json"))
            if self.journal:
                self.journal.close()
            with open(os.path.join(self.state, "journal"), "w"):
                pass
            if self.journal:
                self.journal = open(os.path.join(self.state, "journal"), "a")
            self.cond.notify_all()
            return self.rv

    # -- reads (callers hold self.cond) ------------------------------------------------------
    def version_at(self, name, rv):
        found = None
        for vrv, data in self.versions.get(name, ()):
            if vrv > rv:
                break
            found = data
        return found

    def list_page(self, limit, cont):
        if cont:
            try:
                tok = json.loads(base64.b64decode(cont, validate=True))
                at, start = int(tok["rv"]), str(tok["start"])
            except (ValueError, KeyError, TypeError):
                raise BadRequest("continue key is not valid: not a continue token of this server")
            if at < self.compacted:
                # The API offers a token that continues at the current state, inconsistently.
                fresh = encode_continue(self.rv, start)
                raise Gone(status_object(
                    410, "Expired",
                    "The provided continue parameter is too old to display a consistent list "
                    "result. You can start a new list without the continue parameter, or use the "
                    "continue token in this response to retrieve the remainder of the results. "
                    "Continuing with the provided token results in an inconsistent list - objects "
                    "that were created, modified, or deleted between the time the first chunk was "
                    "returned and now may show up in the list.", meta={"continue": fresh}))
        else:
            at, start = self.rv, ""
        names = sorted(self.versions if at < self.rv else self.current)
        items = []
        i = bisect.bisect_right(names, start)
        more = False
        last = None
        while i < len(names):
            name = names[i]
            i += 1
            data = self.current[name][1] if at == self.rv else self.version_at(name, at)
            if data is None:
                continue
            if limit and len(items) == limit:
                more = True
                break
            items.append(data)
            last = name
        meta = {"resourceVersion": str(at)}
        if more:
            meta["continue"] = encode_continue(at, last)
            remaining = 0
            for name in names[i - 1:]:
                if (self.current.get(name) if at == self.rv else self.version_at(name, at)):
                    remaining += 1
            meta["remainingItemCount"] = remaining
        return (b'{"kind":"NodeList","apiVersion":"v1","metadata":%s,"items":[%s]}'
                % (dumps(meta), b",".join(items)))


class BadRequest(Exception):
    pass


def encode_continue(rv, start):
    return base64.b64encode(dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start})).decode()


def content_hash(obj):
    meta = dict(obj.get("metadata", {}))
    meta.pop("resourceVersion", None)
    meta.pop("uid", None)
    meta.pop("creationTimestamp", None)
    rest = dict(obj)
    rest["metadata"] = meta
    return hashlib.sha256(json.dumps(rest, sort_keys=True).encode()).hexdigest()


def uuid_for(name, rv):
    h = hashlib.sha256(f"{name}/{rv}".encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def validate_node(obj):
    if not isinstance(obj, dict):
        raise BadRequest("a Node must be a JSON object")
    if obj.get("kind", "Node") != "Node":
        raise BadRequest(f"kind {obj.get('kind')!r} is not Node")
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        raise BadRequest("a Node needs metadata.name")
    name = meta["name"]
    if len(name) > 253 or "/" in name or name in (".", ".."):
        raise BadRequest(f"metadata.name {name!r} is not a valid node name")
    obj = json.loads(json.dumps(obj))
    obj["kind"] = "Node"
    obj["apiVersion"] = "v1"
    return obj


def realistic_node(i, prefix):
    """A Node shaped like a kubelet's on a real cluster, about 6 KB as JSON."""
    name = f"{prefix}{i:05d}"
    v4 = f"172.16.{i // 256}.{i % 256}"
    v6 = f"fd00:172:16::{i:x}"
    images = [{"names": [f"registry.k8s.io/example/image-{k}@sha256:{hashlib.sha256(f'{i}/{k}'.encode()).hexdigest()}",
                         f"registry.k8s.io/example/image-{k}:v1.{k}.0"],
               "sizeBytes": 10_000_000 + 7919 * k} for k in range(30)]
    conditions = [{"type": t, "status": s, "reason": r, "message": m,
                   "lastHeartbeatTime": "2024-05-01T10:20:01Z",
                   "lastTransitionTime": "2024-05-01T09:58:40Z"}
                  for t, s, r, m in (
                      ("MemoryPressure", "False", "KubeletHasSufficientMemory",
                       "kubelet has sufficient memory available"),
                      ("DiskPressure", "False", "KubeletHasNoDiskPressure",
                       "kubelet has no disk pressure"),
                      ("PIDPressure", "False", "KubeletHasSufficientPID",
                       "kubelet has sufficient PID available"),
                      ("Ready", "True", "KubeletReady", "kubelet is posting ready status"))]
    return {
        "kind": "Node", "apiVersion": "v1",
        "metadata": {
            "name": name,
            "labels": {"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                       "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": name,
                       "kubernetes.io/os": "linux", "node.kubernetes.io/instance-type": "m5.large",
                       "topology.kubernetes.io/region": "eu-west-1",
                       "topology.kubernetes.io/zone": f"eu-west-1{'abc'[i % 3]}"},
            "annotations": {
                "kubeadm.alpha.kubernetes.io/cri-socket": "unix:///run/containerd/containerd.sock",
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
        "spec": {"podCIDR": f"10.{64 + i // 256}.{i % 256}.0/24",
                 "podCIDRs": [f"10.{64 + i // 256}.{i % 256}.0/24", f"fd00:10:244:{i:x}::/64"],
                 "providerID": f"aws:///eu-west-1a/i-{i:017x}"},
        "status": {
            "addresses": [{"type": "InternalIP", "address": v4},
                          {"type": "InternalIP", "address": v6},
                          {"type": "Hostname", "address": name}],
            "allocatable": {"cpu": "1930m", "ephemeral-storage": "18242267924",
                            "hugepages-2Mi": "0", "memory": "7551476Ki", "pods": "110"},
            "capacity": {"cpu": "2", "ephemeral-storage": "20959212Ki", "hugepages-2Mi": "0",
                         "memory": "8011252Ki", "pods": "110"},
            "conditions": conditions,
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "images": images,
            "nodeInfo": {"architecture": "amd64", "bootID": uuid_for(name, 0),
                         "containerRuntimeVersion": "containerd://1.7.13",
                         "kernelVersion": "6.1.0-18-amd64", "kubeProxyVersion": "v1.29.2",
                         "kubeletVersion": "v1.29.2", "machineID": hashlib.md5(name.encode()).hexdigest(),
                         "operatingSystem": "linux", "osImage": "Debian GNU/Linux 12 (bookworm)",
                         "systemUUID": uuid_for(name, 1)}}}


class Settings:
    def __init__(self, args):
        self.bookmark_interval = args.bookmark_interval
        self.gone_mode = "event"
        self.watch_mode = "normal"
        self.list_mode = "normal"
        self.chunk_size = 0
        self.min_token_expiration = args.min_token_expiration
        self.max_token_expiration = args.max_token_expiration
        self.fail_status = 0
        self.fail_until = 0.0

    def set(self, key, value):
        if key == "bookmark-interval":
            self.bookmark_interval = float(value)
        elif key == "gone-mode" and value in ("event", "http"):
            self.gone_mode = value
        elif key == "watch-mode" and value in ("normal", "close", "garbage", "hang"):
            self.watch_mode = value
        elif key == "list-mode" and value in ("normal", "garbage"):
            self.list_mode = value
        elif key == "chunk-size":
            self.chunk_size = int(value)
        elif key == "min-token-expiration":
            self.min_token_expiration = int(value)
        else:
            raise BadRequest(f"unknown setting {key} {value}")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    store = None
    settings = None
    state = "."
    counters = None
    watchers = None  # open watch handlers

    def handle_error(self, request, client_address):
        pass  # clients that reject our certificate or go away mid-stream: expected

    def count(self, what):
        with self.log_lock:
            self.counters[what] += 1


class Server6(Server):
    address_family = socket.AF_INET6


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def record(self, code, how):
        srv = self.server
        with srv.log_lock:
            with open(os.path.join(srv.state, "requests.log"), "a") as log:
                log.write(f"{self.path} {code} {how}\n")

    def send_body(self, code, body, how, ctype="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.record(code, how)

    def send_json(self, code, obj, how):
        self.send_body(code, json.dumps(obj, indent=2).encode(), how)

    def authenticate(self):
        """(how, user, verdict); verdict None when nothing authenticated the request."""
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            token = auth[len("Bearer "):]
            for fields in read_lines(os.path.join(self.server.state, "tokens")):
                if len(fields) >= 3 and fields[0] == token:
                    return "token", fields[2], fields[1]
            store = self.server.store
            with store.cond:
                issued = store.tokens.get(token)
            if issued and issued[1] > time.time():
                return "token", issued[0], "allow"
            return "token", None, None
        cert = self.connection.getpeercert()
        if cert:
            cn = next((v for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"),
                      "")
            for fields in read_lines(os.path.join(self.server.state, "clients")):
                if len(fields) >= 2 and fields[0] == cn:
                    return "cert", cn, fields[1]
            return "cert", None, None
        return "none", "system:anonymous", "forbid"

    def preamble(self, verb, resource, name=""):
        """Common checks; returns (how, ok)."""
        srv = self.server
        srv.count("requests")
        import_node_files(srv.store, srv.state)
        how, user, verdict = self.authenticate()
        forced = read_lines(os.path.join(srv.state, "status"))
        st = srv.settings
        code = int(forced[0][0]) if forced else (st.fail_status if time.time() < st.fail_until
                                                 else 0)
        if code:
            self.send_json(code, status_object(code, "InternalError", "forced by the test"), how)
            return how, False
        if verdict is None:
            self.send_json(401, status_object(401, "Unauthorized", "Unauthorized"), how)
            return how, False
        if verdict != "allow":
            what = f'{resource} "{name}"' if name else resource
            self.send_json(403, status_object(
                403, "Forbidden",
                f'{what} is forbidden: User "{user}" cannot {verb} resource "{resource}" in API '
                f'group "" at the cluster scope', {"name": name, "kind": resource}), how)
            return how, False
        return how, True

    def not_found(self, how):
        self.send_json(404, status_object(404, "NotFound",
                                          "the server could not find the requested resource"), how)

    def do_GET(self):
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path.startswith(NODES + "/"):
            name = url.path[len(NODES) + 1:]
            how, ok = self.preamble("get", "nodes", name)
            if not ok:
                return
            if not name or "/" in name:
                return self.not_found(how)
            raw = os.path.join(self.server.state, "nodes", name + ".raw")
            if os.path.isfile(raw):  # served byte for byte, whatever it holds
                with open(raw, "rb") as f:
                    return self.send_body(200, f.read(), how)
            store = self.server.store
            with store.cond:
                cur = store.current.get(name)
            if cur is None:
                return self.send_json(404, status_object(404, "NotFound", f'nodes "{name}" not found',
                                                         {"name": name, "kind": "nodes"}), how)
            return self.send_body(200, cur[1], how)
        if url.path != NODES:
            how, _ = self.preamble("get", "", "")
            return self.not_found(how) if _ else None
        watch = query.get("watch", "") in ("1", "true")
        how, ok = self.preamble("watch" if watch else "list", "nodes")
        if not ok:
            return
        if watch:
            return self.watch(query, how)
        return self.list(query, how)

    def list(self, query, how):
        srv = self.server
        srv.count("lists")
        if srv.settings.list_mode == "garbage":
            return self.send_body(200, b"<html>this is not the API</html>\n", how, "text/html")
        try:
            limit = int(query.get("limit", "0") or 0)
            if limit < 0:
                raise ValueError
        except ValueError:
            return self.send_json(400, status_object(400, "BadRequest", "limit must be a number"),
                                  how)
        store = srv.store
        try:
            with store.cond:
                body = store.list_page(limit, query.get("continue", ""))
        except Gone as e:
            return self.send_json(410, e.status, how)
        except BadRequest as e:
            return self.send_json(400, status_object(400, "BadRequest", str(e)), how)
        return self.send_body(200, body, how)

    def chunk(self, data):
        size = self.server.settings.chunk_size
        pieces = [data] if size <= 0 else [data[i:i + size] for i in range(0, len(data), size)]
        for piece in pieces:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.flush()

    def end_stream(self, abort=False):
        if abort:
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.close_connection = True
            return
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def watch(self, query, how):
        srv = self.server
        store, st = srv.store, srv.settings
        srv.count("watches")
        rv_text = query.get("resourceVersion", "")
        bookmarks = query.get("allowWatchBookmarks", "") in ("1", "true")
        try:
            timeout = float(query.get("timeoutSeconds", "1800") or 1800)
            from_rv = int(rv_text) if rv_text not in ("", "0") else None
        except ValueError:
            return self.send_json(400, status_object(400, "BadRequest",
                                                     f"invalid resourceVersion {rv_text!r}"), how)
        initial = []
        pos = 0
        with store.cond:
            gone = from_rv is not None and from_rv < store.compacted
            if gone and st.gone_mode == "http":
                status = status_object(410, "Expired", f"too old resource version: {from_rv} "
                                       f"({store.compacted})")
            elif from_rv is None:
                initial = [b'{"type":"ADDED","object":%s}\n' % c[1]
                           for _, c in sorted(store.current.items())]
                pos = store.event_base + len(store.events)
            elif not gone:
                rvs = [e[0] for e in store.events]
                pos = store.event_base + bisect.bisect_right(rvs, from_rv)
            compacted = store.compacted
            gen = store.close_gen
        if gone and st.gone_mode == "http":
            return self.send_json(410, status, how)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.record(200, how)
        mine = {"lines": [], "handler": self}
        with srv.watchers_lock:
            srv.watchers.append(mine)
        try:
            self.stream(from_rv, gone, compacted, initial, pos, gen, timeout, bookmarks, mine)
        except (OSError, ssl.SSLError):
            self.close_connection = True
        finally:
            with srv.watchers_lock:
                srv.watchers.remove(mine)

    def stream(self, from_rv, gone, compacted, initial, pos, gen, timeout, bookmarks, mine):
        srv = self.server
        store, st = srv.store, srv.settings
        mode = st.watch_mode
        if mode == "close":
            return self.end_stream()
        if mode == "garbage":
            self.chunk(b"{\"type\": \"ADDED\", this is not JSON\n")
            return self.end_stream()
        if gone:
            self.chunk(dumps({"type": "ERROR", "object": status_object(
                410, "Expired", f"too old resource version: {from_rv} ({compacted})")}) + b"\n")
            return self.end_stream()
        if initial:
            self.chunk(b"".join(initial))
        start = time.monotonic()
        # A hanging server sends nothing at all: no events, no bookmarks, no clean end.
        deadline = float("inf") if mode == "hang" else start + timeout
        next_bookmark = start + st.bookmark_interval if st.bookmark_interval > 0 else None
        sent_rv = from_rv or 0
        while True:
            with store.cond:
                while True:
                    now = time.monotonic()
                    closed = store.close_gen != gen
                    if (closed or now >= deadline or pos < store.event_base
                            or (pos < store.event_base + len(store.events) and mode != "hang")
                            or mine["lines"]
                            or (next_bookmark and now >= next_bookmark and mode != "hang")):
                        break
                    wake = deadline
                    if next_bookmark and mode != "hang":
                        wake = min(wake, next_bookmark)
                    store.cond.wait(min(max(wake - now, 0.001), 0.5))
                if closed:
                    abort = store.close_abort
                    break
                if pos < store.event_base:
                    compacted_now = store.compacted
                    batch = None
                else:
                    batch = [] if mode == "hang" else store.events[pos - store.event_base:]
                    if mode != "hang":
                        pos = store.event_base + len(store.events)
                injected, mine["lines"] = mine["lines"], []
                current_rv = store.rv
            if batch is None:
                # Compacted before this watcher caught up, as etcd does to a slow watch.
                self.chunk(dumps({"type": "ERROR", "object": status_object(
                    410, "Expired",
                    f"too old resource version: {sent_rv} ({compacted_now})")}) + b"\n")
                return self.end_stream()
            if batch:
                sent_rv = batch[-1][0]
            out = b"".join(line for _, line in batch) + b"".join(injected)
            now = time.monotonic()
            if next_bookmark and now >= next_bookmark and mode != "hang":
                if bookmarks:
                    out += dumps({"type": "BOOKMARK", "object": {
                        "kind": "Node", "apiVersion": "v1",
                        "metadata": {"resourceVersion": str(current_rv)}}}) + b"\n"
                next_bookmark = now + st.bookmark_interval if st.bookmark_interval > 0 else None
            if out:
                self.chunk(out)
            if now >= deadline:
                return self.end_stream()
        self.end_stream(abort)

    def do_POST(self):
        url = urlsplit(self.path)
        parts = url.path.split("/")
        # /api/v1/namespaces/NS/serviceaccounts/NAME/token
        if not (len(parts) == 8 and parts[1:4] == ["api", "v1", "namespaces"]
                and parts[5] == "serviceaccounts" and parts[7] == "token" and parts[4]
                and parts[6]):
            how, ok = self.preamble("create", "")
            return self.not_found(how) if ok else None
        ns, sa = parts[4], parts[6]
        how, ok = self.preamble("create", "serviceaccounts/token", sa)
        if not ok:
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
            if length < 0 or length > MAX_BODY:
                raise ValueError
            req = json.loads(self.rfile.read(length))
            if not isinstance(req, dict):
                raise ValueError
            if req.get("kind", "TokenRequest") != "TokenRequest":
                raise ValueError
            spec = req.get("spec", {})
            if not isinstance(spec, dict):
                raise ValueError
            exp = spec.get("expirationSeconds", 3600)
            if not isinstance(exp, int) or isinstance(exp, bool):
                raise ValueError
            audiences = spec.get("audiences") or ["https://kubernetes.default.svc.cluster.local"]
        except ValueError:
            return self.send_json(400, status_object(
                400, "BadRequest", "the body is not a TokenRequest"), how)
        st = self.server.settings
        if exp < st.min_token_expiration:
            return self.send_json(422, status_object(
                422, "Invalid",
                f'TokenRequest.authentication.k8s.io "{sa}" is invalid: spec.expirationSeconds: '
                f"Invalid value: {exp}: may not specify a duration less than "
                f"{st.min_token_expiration} seconds",
                {"name": sa, "group": "authentication.k8s.io", "kind": "TokenRequest"}), how)
        exp = min(exp, st.max_token_expiration)
        now = int(time.time())
        user = f"system:serviceaccount:{ns}:{sa}"
        claims = {"aud": audiences, "exp": now + exp, "iat": now, "nbf": now,
                  "iss": "https://kubernetes.default.svc.cluster.local", "sub": user,
                  "kubernetes.io": {"namespace": ns, "serviceaccount": {"name": sa}}}

        def b64(b):
            return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

        token = ".".join([b64(dumps({"alg": "RS256", "kid": "test"})), b64(dumps(claims)),
                          b64(secrets.token_bytes(32))])
        self.server.store.add_token(token, user, now + exp)
        self.server.count("tokens")
        return self.send_json(201, {
            "kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": sa, "namespace": ns, "creationTimestamp": rfc3339(now)},
            "spec": {"audiences": audiences, "expirationSeconds": exp, "boundObjectRef": None},
            "status": {"token": token, "expirationTimestamp": rfc3339(now + exp)}}, how)


_import_lock = threading.Lock()


def import_node_files(store, state):
    """nodes/NAME.json files as changes of the store (see the top of this file)."""
    d = os.path.join(state, "nodes")
    with _import_lock:
        seen = {}
        try:
            with os.scandir(d) as it:
                for e in it:
                    if e.name.endswith(".json") and e.is_file():
                        s = e.stat()
                        seen[e.name[:-5]] = (s.st_mtime_ns, s.st_size, s.st_ino)
        except FileNotFoundError:
            pass
        with store.cond:
            backed = dict(store.file_backed)
        for name, stat in seen.items():
            if backed.get(name) == stat:
                continue
            try:
                with open(os.path.join(d, name + ".json")) as f:
                    obj = json.load(f)
                store.put(obj, stat)
            except (ValueError, BadRequest, OSError):
                continue  # half-written or not a Node: looked at again next time
        for name in backed:
            if name not in seen:
                store.delete(name)


class Control(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    http = None


class ControlHandler(socketserver.StreamRequestHandler):
    def handle(self):
        line = self.rfile.readline(64 << 20)
        try:
            req = json.loads(line)
            out = {"ok": True, **control(self.server.http, req)}
        except Exception as e:  # noqa: BLE001 - every failure goes back to ctl as a message
            out = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        self.wfile.write(json.dumps(out).encode() + b"\n")


def data_command(store, req):
    """The ctl commands that only change the store (also without a running server)."""
    cmd = req["cmd"]
    if cmd == "apply":
        objs = req["objects"]
        rv = store.rv
        for obj in objs:
            rv = store.put(obj)
        return {"rv": str(store.rv), "applied": len(objs)}
    if cmd == "delete":
        for name in req["names"]:
            store.delete(name)
        return {"rv": str(store.rv)}
    if cmd == "generate":
        for i in range(req["start"], req["start"] + req["count"]):
            store.put(realistic_node(i, req["prefix"]))
        return {"rv": str(store.rv)}
    if cmd == "bump":
        return {"rv": str(store.bump())}
    if cmd == "compact":
        return {"rv": str(store.compact())}
    if cmd == "rv":
        return {"rv": str(store.rv)}
    return None


def control(srv, req):
    store, st = srv.store, srv.settings
    out = data_command(store, req)
    if out is not None:
        return out
    cmd = req["cmd"]
    if cmd == "close-watches":
        with store.cond:
            store.close_abort = bool(req.get("abort"))
            store.close_gen += 1
            store.cond.notify_all()
        return {}
    if cmd == "fail":
        st.fail_status = int(req["status"])
        st.fail_until = time.time() + float(req["seconds"]) if st.fail_status else 0.0
        return {}
    if cmd == "inject":
        with store.cond:
            with srv.watchers_lock:
                for w in srv.watchers:
                    w["lines"].append(req["line"].encode() + b"\n")
            store.cond.notify_all()
        return {"watchers": len(srv.watchers)}
    if cmd == "set":
        st.set(req["key"], req["value"])
        return {}
    if cmd == "stats":
        with srv.watchers_lock:
            open_watches = len(srv.watchers)
        with srv.log_lock:
            counters = dict(srv.counters)
        return {**counters, "openWatches": open_watches, "rv": str(store.rv)}
    raise BadRequest(f"unknown command {cmd}")


def serve(args):
    state = os.path.abspath(args.state)
    os.makedirs(state, exist_ok=True)
    lock = open(os.path.join(state, "lock"), "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        sys.exit(f"apiserver.py: another server uses {state}")
    store = Store(state)
    settings = Settings(args)

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    if args.client_ca:
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.load_verify_locations(args.client_ca)
    cls = Server6 if ":" in args.listen else Server
    server = cls((args.listen, args.port), Handler)
    server.store, server.settings, server.state = store, settings, state
    server.counters = {"requests": 0, "lists": 0, "watches": 0, "tokens": 0}
    server.watchers = []
    server.watchers_lock = threading.Lock()
    server.log_lock = threading.Lock()
    # The handshake runs in the request's thread, so a stuck client blocks nobody else.
    server.socket = ctx.wrap_socket(server.socket, server_side=True,
                                    do_handshake_on_connect=False)

    sock_path = os.path.join(state, "control.sock")
    try:
        os.unlink(sock_path)
    except FileNotFoundError:
        pass
    ctl = Control(sock_path, ControlHandler)
    ctl.http = server
    threading.Thread(target=ctl.serve_forever, daemon=True).start()

    import_node_files(store, state)

    def ticker():
        while True:
            time.sleep(0.5)
            import_node_files(store, state)

    threading.Thread(target=ticker, daemon=True).start()

    port = server.server_address[1]
    with open(os.path.join(state, "port.tmp"), "w") as f:
        f.write(f"{port}\n")
    os.replace(os.path.join(state, "port.tmp"), os.path.join(state, "port"))
    print(port, flush=True)

    if not args.ignore_stdin:
        def watch_stdin():
            sys.stdin.read()
            os._exit(0)

        threading.Thread(target=watch_stdin, daemon=True).start()
    import signal
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    server.serve_forever()


def ctl_main(args):
    state = os.path.abspath(args.state)
    req = {"cmd": args.command}
    if args.command == "apply":
        text = sys.stdin.read() if args.file == "-" else open(args.file).read()
        req["objects"] = parse_objects(text)
    elif args.command == "delete":
        req["names"] = args.names
    elif args.command == "generate":
        req.update(count=args.count, prefix=args.prefix, start=args.start)
    elif args.command == "close-watches":
        req["abort"] = args.abort
    elif args.command == "fail":
        req.update(status=args.status, seconds=args.seconds)
    elif args.command == "inject":
        req["line"] = args.line
    elif args.command == "set":
        req.update(key=args.key, value=args.value)
    out = None
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(60)
    try:
        s.connect(os.path.join(state, "control.sock"))
    except OSError as e:
        if e.errno not in (errno.ENOENT, errno.ECONNREFUSED):
            raise
        out = offline(state, req)
    if out is None:
        s.sendall(json.dumps(req).encode() + b"\n")
        out = json.loads(s.makefile().readline())
    s.close()
    if not out.get("ok"):
        sys.exit(f"apiserver.py ctl {args.command}: {out.get('error')}")
    out.pop("ok")
    if args.command in ("apply", "delete", "generate", "bump", "compact", "rv"):
        print(out["rv"])
    elif out:
        print(json.dumps(out))


def offline(state, req):
    lock = open(os.path.join(state, "lock"), "a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return {"ok": False, "error": "the server holds the state but its control socket does "
                "not answer"}
    store = Store(state)
    try:
        out = data_command(store, req)
    except BadRequest as e:
        return {"ok": False, "error": str(e)}
    if out is None:
        return {"ok": False, "error": "the server is not running"}
    return {"ok": True, **out}


def parse_objects(text):
    text = text.strip()
    try:
        doc = json.loads(text)
    except ValueError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict) and doc.get("kind") == "NodeList":
        return doc.get("items", [])
    return [doc]


def pki_main(args):
    d = args.dir
    os.makedirs(d, exist_ok=True)
    sans = ["IP:127.0.0.1", "DNS:localhost"] + args.san
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=" + ",".join(sans) + "\nextendedKeyUsage=serverAuth\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for cmd in (["req", "-x509", *ec, "-days", "2", "-subj", "/CN=test-kubernetes-ca",
                 "-keyout", "ca.key", "-out", "ca.crt"],
                ["req", *ec, "-subj", "/CN=kube-apiserver", "-keyout", "server.key",
                 "-out", "server.csr"],
                ["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-extfile", "server.ext", "-out",
                 "server.crt"]):
        subprocess.run(["openssl", *cmd], cwd=d, check=True, capture_output=True)


def main():
    argv = sys.argv[1:]
    if argv and argv[0] in ("ctl", "pki"):
        p = argparse.ArgumentParser(prog="apiserver.py " + argv[0])
        if argv[0] == "pki":
            p.add_argument("dir")
            p.add_argument("--san", action="append", default=[])
            return pki_main(p.parse_args(argv[1:]))
        p.add_argument("--state", required=True)
        sub = p.add_subparsers(dest="command", required=True)
        sub.add_parser("apply").add_argument("file")
        sub.add_parser("delete").add_argument("names", nargs="+")
        g = sub.add_parser("generate")
        g.add_argument("count", type=int)
        g.add_argument("--prefix", default="node-")
        g.add_argument("--start", type=int, default=0)
        for c in ("bump", "compact", "rv", "stats"):
            sub.add_parser(c)
        sub.add_parser("close-watches").add_argument("--abort", action="store_true")
        f = sub.add_parser("fail")
        f.add_argument("status", type=int)
        f.add_argument("seconds", type=float)
        sub.add_parser("inject").add_argument("line")
        s = sub.add_parser("set")
        s.add_argument("key")
        s.add_argument("value")
        return ctl_main(p.parse_args(argv[1:]))
    if argv and argv[0] == "serve":
        argv = argv[1:]
    p = argparse.ArgumentParser(prog="apiserver.py")
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--client-ca")
    p.add_argument("--state", required=True)
    p.add_argument("--listen", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--bookmark-interval", type=float, default=1.0)
    p.add_argument("--min-token-expiration", type=int, default=600)
    p.add_argument("--max-token-expiration", type=int, default=86400)
    p.add_argument("--ignore-stdin", action="store_true")
    serve(p.parse_args(argv))


if __name__ == "__main__":
    main()
