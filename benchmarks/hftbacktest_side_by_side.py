"""The reference: the same fixed-depth job in hftbacktest 2.4.4, on the same market.

Usage (an interpreter with hftbacktest 2.4.4 installed: `make bench` makes one in `.venv-hft`,
separate because hftbacktest pins numpy < 2.3)::

    python benchmarks/hftbacktest_side_by_side.py EVENTS.npz [--depth 2] [--refresh 0.1 1]

``EVENTS.npz`` is written by ``bench_backtest.py --export-hft``. The strategy mirrors
``asmm backtest --fixed-depth D --queue prob --latency-ms 0``: every refresh, quote one
order of 0.001 at D below and above the mid (rounded away from it to the tick), post-only,
cancel and re-place when the price changes, at most 10 lots each way; hftbacktest's
``power_prob_queue_model(3)``; maker fee 1.5 bp. Prints events/s and wall time per refresh.
"""

from __future__ import annotations

import argparse
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
        if pos + qty <= max_pos and not orders.__contains__(bid_tick):
            hbt.submit_buy_order(0, bid_tick, bid_tick * tick, qty, GTX, LIMIT, False)
        ask_id = ask_tick + (1 << 40)
        if pos - qty >= -max_pos and not orders.__contains__(ask_id):
            hbt.submit_sell_order(0, ask_id, ask_tick * tick, qty, GTX, LIMIT, False)
    return steps


def run(data: np.ndarray, depth: float, refresh: float) -> tuple[float, float, int]:
    asset = (BacktestAsset().data(data).linear_asset(1.0).constant_order_latency(0, 0)
             .power_prob_queue_model(3.0).no_partial_fill_exchange()
             .trading_value_fee_model(-0.0, 0.00015).tick_size(1.0).lot_size(0.00001)
             .last_trades_capacity(0))
    hbt = HashMapMarketDepthBacktest([asset])
    t0, c0 = time.perf_counter(), time.process_time()
    fixed_depth(hbt, depth, int(refresh * 1e9), 0.001, 0.01)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    sv = hbt.state_values(0)
    hbt.close()
    return dt, cpu, int(sv.num_trades)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("npz", help="events written by bench_backtest.py --export-hft")
    ap.add_argument("--depth", type=float, default=2.0, help="quote depth from the mid, price")
    ap.add_argument("--refresh", type=float, nargs="+", default=[0.1, 1.0],
                    help="re-quote intervals, s")
    args = ap.parse_args()
    data = np.load(args.npz)["data"]
    small = data[: 20_000].copy()
    run(small, args.depth, 1.0)  # compile
    for refresh in args.refresh:
        dt, cpu, fills = min(run(data, args.depth, refresh) for _ in range(2))
        print(f"hftbacktest 2.4.4: fixed depth {args.depth}, {refresh * 1000:.0f} ms re-quotes: "
              f"{data.size:,} events, {dt:.2f} s wall = {data.size / dt / 1e6:.2f} M events/s, "
              f"{cpu:.2f} s CPU = {data.size / cpu / 1e6:.2f} M events/s ({fills:,} fills, "
              f"best of 2)")


if __name__ == "__main__":
    main()
