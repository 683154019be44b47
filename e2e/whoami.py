#!/usr/bin/env python3
"""Tells each TCP client the address it came from: the receiving side of the no-NAT checks.

  whoami.py PORT [--lifetime SECONDS]

Listens on [::]:PORT for both families (IPv4 clients as IPv4 text, not ::ffff:a.b.c.d), answers
every connection with the peer's address and a newline, and closes it. Prints "listening" once
bound (the caller waits for that line), and exits after --lifetime seconds (default 900) so it
never outlives the test that started it, whatever happens to that test.
"""
import argparse
import socket
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("--lifetime", type=float, default=900)
    args = p.parse_args()
    end = time.monotonic() + args.lifetime
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", args.port))
    s.listen(64)
    print("listening", flush=True)
    while time.monotonic() < end:
        s.settimeout(max(0.1, min(1.0, end - time.monotonic())))
        try:
            conn, peer = s.accept()
        except socket.timeout:
            continue
        with conn:
            addr = peer[0]
            if addr.startswith("::ffff:") and "." in addr:
                addr = addr[len("::ffff:"):]
            conn.settimeout(1.0)
            try:
                conn.sendall((addr + "\n").encode())
            except OSError:
                pass


if __name__ == "__main__":
    main()
