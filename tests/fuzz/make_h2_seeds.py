#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_h2 (tests/fuzz/corpus/h2/): HTTP/2 frame sequences that follow the client
preface. Byte 0 of each input is also the fuzz target's split point. Run from anywhere; overwrites the seeds."""
import os
import struct

DATA, HEADERS, PRIORITY, RST, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 2, 3, 4, 6, 7, 8, 9
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def lit(index, value):  # literal header field without indexing, indexed name (RFC 7541 6.2.2), short value
    return bytes([index]) + bytes([len(value)]) + value


GET = b"\x82\x84\x86" + lit(0x01, b"t")  # :method GET, :path /, :scheme http, :authority t
POST = b"\x83\x86" + lit(0x04, b"/echo") + lit(0x01, b"t")
SETTINGS0 = frame(SETTINGS, 0, 0)

seeds = {
    "get": SETTINGS0 + frame(HEADERS, END_HEADERS | END_STREAM, 1, GET),
    "post_body": SETTINGS0 + frame(HEADERS, END_HEADERS, 1, POST) + frame(DATA, 0, 1, b"hello ")
    + frame(DATA, END_STREAM, 1, b"world"),
    "concurrent": SETTINGS0 + b"".join(frame(HEADERS, END_HEADERS | END_STREAM, i, GET) for i in range(1, 12, 2)),
    "continuation": SETTINGS0 + frame(HEADERS, END_STREAM, 1, GET[:2]) + frame(CONTINUATION, END_HEADERS, 1, GET[2:]),
    "rapid_reset": SETTINGS0 + b"".join(frame(HEADERS, END_HEADERS | END_STREAM, i, GET)
                                        + frame(RST, 0, i, struct.pack(">I", 8)) for i in range(1, 40, 2)),
    "ping_settings": SETTINGS0 + frame(PING, 0, 0, b"12345678") + frame(SETTINGS, ACK, 0)
    + frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 0)),
    "window_priority_goaway": SETTINGS0 + frame(PRIORITY, 0, 3, struct.pack(">IB", 1, 16))
    + frame(HEADERS, END_HEADERS | END_STREAM, 1, GET) + frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1000))
    + frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 1000)) + frame(GOAWAY, 0, 0, struct.pack(">II", 1, 0)),
    "zero_window": frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 0)) + frame(HEADERS, END_HEADERS | END_STREAM, 1, GET),
    "big_body": SETTINGS0 + frame(HEADERS, END_HEADERS, 1, POST + lit(0x1c, b"9999"))  # content-length 9999
    + frame(DATA, END_STREAM, 1, b"x" * 100),
}

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "h2")
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print(f"wrote {len(seeds)} seeds to {out}")
