#!/usr/bin/python3
"""Reads datagrams from a unix socket and counts them, so that the module's
records flow during a benchmark.  Prints "datagrams bytes" on SIGTERM."""

import os
import signal
import socket
import sys

path = sys.argv[1]
if os.path.exists(path):
    os.unlink(path)
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
sock.bind(path)
count = [0, 0]


def report(*_):
    print(count[0], count[1], flush=True)
    sys.exit(0)


signal.signal(signal.SIGTERM, report)
print("ready", flush=True)
while True:
    data = sock.recv(1 << 20)
    count[0] += 1
    count[1] += len(data)
