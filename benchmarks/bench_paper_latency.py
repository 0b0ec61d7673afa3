"""Order -> acknowledgement latency of the paper exchange on loopback, while the market
streams at 1x.

Starts `asmm replay` (paced, speed 1) on a busy synthetic day with one WebSocket client
(the SDK's, subscribed to bbo, trades and l2Book), then sends N signed orders
(post-only, far from the touch, so each rests) and N cancels over one keep-alive HTTP
connection, one at a time, and times each request from send to answer. Signing happens
before the clock starts: the figure is the exchange's (parse, verify the signature twice —
mainnet and testnet candidates — match, write the ledger, answer).

    python benchmarks/bench_paper_latency.py [--n 1000] [--ledger]
"""

from __future__ import annotations

import argparse
import http.client
import json
import tempfile
import time
from datetime import date
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
from eth_account import Account
from hyperliquid.info import Info
from hyperliquid.utils.signing import sign_l1_action

from asmm.data.synth import SynthConfig, generate
from asmm.venues.hyperliquid.replay.process import start_replay


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1000, help="orders (and as many cancels)")
    ap.add_argument("--ledger", action="store_true", help="a SQLite file ledger (WAL)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_paper_"))
    generate(SynthConfig(days=1, seed=21, bbo_rate=5.0, A_bid=2.0, A_ask=2.0,
                         l2_interval=5.0, start=date(2025, 9, 1)), work / "data")
    extra = ("--ledger", str(work / "paper.sqlite")) if args.ledger else ()
    rp = start_replay(work / "data", *extra, speed=1.0, log_dir=work)
    try:
        listener = Info(base_url=rp.url, skip_ws=False)
        for ch in ("bbo", "trades", "l2Book"):
            listener.subscribe({"type": ch, "coin": "BTC"}, lambda msg: None)
        url = urlparse(rp.url)
        conn = http.client.HTTPConnection(url.hostname, url.port)
        key = Account.create()
        bid = float(rp.info({"type": "l2Book", "coin": "BTC"})["levels"][0][0]["px"])
        nonce = int(time.time() * 1000)

        def post(action: dict) -> tuple[float, dict]:
            nonlocal nonce
            nonce += 1
            sig = sign_l1_action(key, action, None, nonce, None, True)  # as ccxt signs
            body = json.dumps({"action": action, "nonce": nonce, "signature": sig})
            t0 = time.perf_counter()
            conn.request("POST", "/exchange", body, {"Content-Type": "application/json"})
            answer = json.loads(conn.getresponse().read())
            return time.perf_counter() - t0, answer

        place, cancel = [], []
        for _ in range(args.n):
            order = {"type": "order", "grouping": "na", "orders": [
                {"a": 0, "b": True, "p": str(int(bid - 1000)), "s": "0.001", "r": False,
                 "t": {"limit": {"tif": "Alo"}}}]}
            dt, ans = post(order)
            place.append(dt)
            oid = ans["response"]["data"]["statuses"][0]["resting"]["oid"]
            dt, ans = post({"type": "cancel", "cancels": [{"a": 0, "o": oid}]})
            assert ans["response"]["data"]["statuses"] == ["success"], ans
            cancel.append(dt)
        streamed = rp.sent()["messages"]
        listener.disconnect_websocket()
    finally:
        rp.stop()
    for name, xs in (("order", place), ("cancel", cancel)):
        ms = np.array(xs) * 1000
        print(f"{name}: n={ms.size} p50={np.percentile(ms, 50):.2f} ms "
              f"p99={np.percentile(ms, 99):.2f} ms max={ms.max():.2f} ms")
    print(f"market messages streamed to the WebSocket meanwhile: "
          f"{sum(streamed.get(ch, 0) for ch in ('bbo', 'trades', 'l2Book'))} "
          f"({'file' if args.ledger else 'in-memory'} ledger)")


if __name__ == "__main__":
    main()
