"""Throughput of the RTSP relay against a direct loopback connection, in the same run.

A local fake camera answers one request and then sends ``--mb`` MB of interleaved RTP-sized
packets (1400 bytes each); the client reads them directly and through :class:`RtspRelay`.
A camera sends 0.5-4 MB/s; the relay's figure only has to stay far above that.

    PYTHONPATH=src python bench/rtsp_relay.py --mb 200
"""

from __future__ import annotations

import argparse
import socket
import threading
import time

from vlm_anomaly.video.rtsp_relay import RtspRelay


def camera(total: int) -> socket.socket:
    srv = socket.create_server(("127.0.0.1", 0))
    pkt = b"$\x00" + (1400).to_bytes(2, "big") + bytes(1400)
    chunk = pkt * 46  # ~64 KiB

    def run():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            conn.recv(4096)
            conn.sendall(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n")
            sent = 0
            while sent < total:
                conn.sendall(chunk)
                sent += len(chunk)
            conn.close()

    threading.Thread(target=run, daemon=True).start()
    return srv


def read_all(address) -> tuple[int, float]:
    t = time.perf_counter()
    c = socket.create_connection(address)
    c.sendall(b"OPTIONS rtsp://cam/live RTSP/1.0\r\nCSeq: 1\r\n\r\n")
    n = 0
    while chunk := c.recv(1 << 16):
        n += len(chunk)
    c.close()
    return n, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=200)
    args = ap.parse_args()
    srv = camera(int(args.mb * 1e6))
    port = srv.getsockname()[1]
    n0, direct = read_all(("127.0.0.1", port))
    relay = RtspRelay(f"rtsp://127.0.0.1:{port}/live")
    n1, relayed = read_all(relay.address)
    assert n0 == n1, (n0, n1)
    print(f"bytes {n0}  direct {n0 / direct / 1e6:.0f} MB/s  relay {n1 / relayed / 1e6:.0f} MB/s  "
          f"relay/direct time {relayed / direct:.2f}")
    srv.close()


if __name__ == "__main__":
    main()
