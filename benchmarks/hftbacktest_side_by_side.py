"""The reference: the same fixed-depth job in hftbacktest 2.4.4, on the same market.

Usage (an interpreter with hftbacktest 2.4.4 installed: `make bench` makes one in `.venv-hft`,
separate because hftbacktest pins numpy < 2.3)::

    python benchmarks/hftbacktest_side_by_side.py EVENTS.npz [--depth 10] [--refresh 0.1 5]
                                                  [--qty 0.001] [--max-lots 10] [--json]

``EVENTS.npz`` is written by ``bench_backtest.py`` (``export_hft``: BBO and trades, no L2).
The strategy mirrors ``asmm backtest --fixed-depth D --queue prob --latency-ms 0`` under the
exchange fill rule: every refresh, quote one order of ``qty`` at D below and above the mid
(rounded away from it to the tick), post-only (GTX), cancel and re-place when the price
changes, at most ``max-lots`` lots each way; hftbacktest's ``power_prob_queue_model(3)`` and
its exchange without partial fills, which fills an order from trades through it or past its
queue and when the opposite best price reaches it; maker fee 1.5 bp. Prints, per refresh,
events/s, wall and CPU time and the fills per side (with ``--json`` one JSON object a line,
which ``bench_backtest.py`` reads).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from hftbacktest import (
    BUY,
    GTX,
    LIMIT,
    SELL,
    BacktestAsset,
    HashMapMarketDepthBacktest,
)
from numba import njit


@njit
def fixed_depth(hbt, depth, refresh_ns, qty, max_pos):
    tick = hbt.depth(0).tick_size
    steps = 0
    while hbt.elapse(refresh_ns) == 0:
        steps += 1
        hbt.clear_inactive_orders(0)
        d = hbt.depth(0)
        if not (d.best_bid > 0 and d.best_ask > d.best_bid):
            continue
        mid = 0.5 * (d.best_bid + d.best_ask)
        bid_tick = int(np.floor((mid - depth) / tick + 1e-9))
        ask_tick = int(np.ceil((mid + depth) / tick - 1e-9))
        bid_tick = min(bid_tick, d.best_ask_tick - 1)
        ask_tick = max(ask_tick, d.best_bid_tick + 1)
        pos = hbt.position(0)
        orders = hbt.orders(0)
        values = orders.values()
        while values.has_next():
            o = values.get()
            if not o.cancellable:
                continue
            if (o.side == BUY and (o.price_tick != bid_tick or pos + qty > max_pos)) or (
                    o.side == SELL and (o.price_tick != ask_tick or pos - qty < -max_pos)):
                hbt.cancel(0, o.order_id, False)
        # Order ids: +tick for bids, tick + 2^40 for asks (a price can be both over time).
        if pos + qty <= max_pos + 1e-12 and not orders.__contains__(bid_tick):
            hbt.submit_buy_order(0, bid_tick, bid_tick * tick, qty, GTX, LIMIT, False)
        ask_id = ask_tick + (1 << 40)
        if pos - qty >= -max_pos - 1e-12 and not orders.__contains__(ask_id):
            hbt.submit_sell_order(0, ask_id, ask_tick * tick, qty, GTX, LIMIT, False)
    return steps


def run(data: np.ndarray, depth: float, refresh: float, qty: float,
        max_lots: float) -> dict:
    """One run: wall and CPU seconds, and fills per side (the exchange model fills whole
    orders, so fills = num_trades and the net position splits them by side)."""
    asset = (BacktestAsset().data(data).linear_asset(1.0).constant_order_latency(0, 0)
             .power_prob_queue_model(3.0).no_partial_fill_exchange()
             .trading_value_fee_model(-0.0, 0.00015).tick_size(1.0).lot_size(0.00001)
             .last_trades_capacity(0))
    hbt = HashMapMarketDepthBacktest([asset])
    t0, c0 = time.perf_counter(), time.process_time()
    fixed_depth(hbt, depth, round(refresh * 1e9), qty, max_lots * qty)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    sv = hbt.state_values(0)
    fills, net = int(sv.num_trades), round(sv.position / qty)
    hbt.close()
    return {"refresh": refresh, "depth": depth, "events": int(data.size), "wall": wall,
            "cpu": cpu, "fills_bid": (fills + net) // 2, "fills_ask": (fills - net) // 2}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("npz", help="events written by bench_backtest.py")
    ap.add_argument("--depth", type=float, default=10.0, help="quote depth from the mid, price")
    ap.add_argument("--refresh", type=float, nargs="+", default=[0.1, 5.0],
                    help="re-quote intervals, s")
    ap.add_argument("--qty", type=float, default=0.001, help="order size, coin")
    ap.add_argument("--max-lots", type=float, default=10.0, help="inventory bound, lots")
    ap.add_argument("--repeat", type=int, default=2, help="runs per refresh (best kept)")
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    args = ap.parse_args()
    data = np.load(args.npz)["data"]
    run(data[: 20_000].copy(), args.depth, 1.0, args.qty, args.max_lots)  # compile
    for refresh in args.refresh:
        r = min((run(data, args.depth, refresh, args.qty, args.max_lots)
                 for _ in range(args.repeat)), key=lambda r: r["wall"])
        if args.json:
            print(json.dumps(r), flush=True)
            continue
        print(f"hftbacktest 2.4.4: fixed depth {args.depth:g}, {refresh * 1000:.0f} ms "
              f"re-quotes: {r['events']:,} events, {r['wall']:.2f} s wall = "
              f"{r['events'] / r['wall'] / 1e6:.2f} M events/s, {r['cpu']:.2f} s CPU; fills "
              f"bid {r['fills_bid']:,}, ask {r['fills_ask']:,} (best of {args.repeat})")


if __name__ == "__main__":
    main()
