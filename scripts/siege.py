"""Holds a gateway under siege while a benchmark runs: SILENT sockets from 127.0.0.2 that
never send a byte (each one the server closes is opened again) and STREAMS live streams
(`/team/events`) opened with one user's key from 127.0.0.3, all for SECONDS. Prints what it
held at the end: silent sockets open, how many the server closed, streams open and refused.

Usage: python3 scripts/siege.py HOST PORT SILENT STREAMS KEY TEAM SECONDS
"""

import resource
import selectors
import socket
import sys
import time

host, port, silent, streams, key, team, seconds = sys.argv[1:8]
port, silent, streams, seconds = int(port), int(silent), int(streams), float(seconds)
_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def connect(source):
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(2)
    s.connect((host, port))
    return s


opened, refused, held = 0, 0, []
request = (
    f"GET /team/events?team_ids={team} HTTP/1.1\r\nHost: {host}\r\n"
    f"Authorization: Bearer {key}\r\n\r\n"
).encode()
for _ in range(streams):
    try:
        s = connect("127.0.0.3")
        s.sendall(request)
        status = s.recv(64).split(b" ")[1]
    except (OSError, IndexError):
        refused += 1
        continue
    if status == b"200":
        opened += 1
        s.setblocking(False)
        held.append(s)
    else:
        refused += 1
        s.close()

watching = selectors.DefaultSelector()
for s in held:
    watching.register(s, selectors.EVENT_READ, "stream")
quiet, closed = set(), 0
deadline = time.time() + seconds
while time.time() < deadline:
    while len(quiet) < silent:
        try:
            s = connect("127.0.0.2")
        except OSError:
            break
        s.setblocking(False)
        quiet.add(s)
        watching.register(s, selectors.EVENT_READ, "silent")
    for key, _ in watching.select(0.2):
        s = key.fileobj
        try:
            data = s.recv(65536)
        except BlockingIOError:
            continue
        except OSError:
            data = b""
        if data:
            continue  # a stream's heartbeat or event
        watching.unregister(s)
        s.close()
        if key.data == "silent":
            quiet.discard(s)
            closed += 1
        else:
            held.remove(s)
print(
    f"silent sockets open at the end: {len(quiet)} (the server closed {closed}); "
    f"live streams open: {len(held)} of {opened} opened, {refused} refused"
)
