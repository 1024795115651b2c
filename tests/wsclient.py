#!/usr/bin/env python3
"""A websocket client from python3's standard library alone (RFC 6455):
wsclient.py PORT PATH N MESSAGE... opens N connections to 127.0.0.1:PORT,
all held open at once, sends every MESSAGE on each as a masked text frame
and prints, per connection, one line: the HTTP status line of the
handshake, then each echoed message, tab-separated; then closes each
with a close frame."""
import base64, hashlib, os, socket, struct, sys

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

def read_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise EOFError("connection closed")
        data += chunk
    return data

def handshake(port, path):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n" % (path, port, key)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += read_exact(s, 1)
    lines = head.decode().split("\r\n")
    want = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    accept = [l.split(":", 1)[1].strip() for l in lines
              if l.lower().startswith("sec-websocket-accept:")]
    if lines[0].split()[1] == "101" and accept != [want]:
        lines[0] += " (bad Sec-WebSocket-Accept)"
    return s, lines[0]

def send_text(s, text):
    payload = text.encode()
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x81, 0x80 | n)
    else:
        header = struct.pack("!BBH", 0x81, 0x80 | 126, n)
    s.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

def read_message(s):
    b1, b2 = read_exact(s, 2)
    n = b2 & 0x7F
    if n == 126:
        n = struct.unpack("!H", read_exact(s, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", read_exact(s, 8))[0]
    payload = read_exact(s, n)
    return payload.decode()

def main():
    port, path, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    messages = sys.argv[4:]
    conns = [handshake(port, path) for _ in range(count)]
    for s, status in conns:
        fields = [status]
        if " 101 " in status + " ":
            for m in messages:
                send_text(s, m)
                fields.append(read_message(s))
        print("\t".join(fields), flush=True)
    for s, _ in conns:
        s.sendall(bytes([0x88, 0x80]) + os.urandom(4))	# close, masked, empty
        s.close()

main()
