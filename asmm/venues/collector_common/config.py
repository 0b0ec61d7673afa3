"""Collector settings: one dataclass, read from the environment and overridden by flags.

The settings of ``asmm collect`` for every venue (``VENUE``: hyperliquid, the default, or
bybit); the venue-specific ones are the endpoints (``HL_API_URL``; ``BYBIT_WS_URL`` /
``BYBIT_API_URL``) and the deepest book a venue serves. Times are seconds.

Every setting has an environment variable (the container is configured that way) and a
flag of ``asmm collect`` with the same meaning; :data:`SETTINGS` lists both, with the help
text, so the two cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from asmm.core.errors import ConfigError
from asmm.venues.bybit.symbols import coin_of

MAINNET_API_URL = "https://api.hyperliquid.xyz"
MAX_DEPTH = 20  # Hyperliquid serves at most 20 levels a side
# Bybit v5 public WebSocket of USDT perpetuals (linear), and its REST API (docs: "Connect").
BYBIT_WS_URL = "wss://stream.bybit.com/v5/public/linear"
BYBIT_API_URL = "https://api.bybit.com"
BYBIT_WS_PATH = "/v5/public/linear"
VENUES = ("hyperliquid", "bybit")
# Deepest book written per venue: Hyperliquid's l2Book has 20 levels a side; Bybit's
# orderbook.50 topic, which the Bybit collector maintains, 50.
VENUE_MAX_DEPTH = {"hyperliquid": MAX_DEPTH, "bybit": 50}
_COIN_RE = re.compile(r"^[A-Za-z0-9@:\-]+$")


@dataclass(frozen=True)
class CollectorConfig:
    """What to collect, where, and how patiently. Times in seconds."""

    symbols: tuple[str, ...] = ("BTC",)
    output_dir: Path = Path("HL_data")
    orderbook_depth: int = MAX_DEPTH
    api_url: str = MAINNET_API_URL
    flush_seconds: float = 5.0
    stale_seconds: float = 30.0
    parquet: bool = False
    parquet_layout: str = "hive"
    queue_size: int = 10_000  # ~50 s of Hyperliquid's BTC feed; tens of MB at most
    on_full: str = "block"
    status_seconds: float = 60.0
    heartbeat_file: Path | None = None  # default: OUTPUT_DIR/.heartbeat.json
    subscribe_timeout: float = 10.0
    backoff_min: float = 1.0
    backoff_max: float = 60.0
    ws_client: str = "aiohttp"
    venue: str = "hyperliquid"
    bybit_ws_url: str | None = None  # default: from bybit_api_url, else BYBIT_WS_URL
    bybit_api_url: str | None = None

    def __post_init__(self):
        if self.venue == "bybit":
            # Files are named by coin on every venue: BTCUSDT is written as BTC.
            coins = tuple(dict.fromkeys(coin_of(s) or s for s in self.symbols))
            object.__setattr__(self, "symbols", coins)

    @property
    def heartbeat_path(self) -> Path:
        return self.heartbeat_file or self.output_dir / ".heartbeat.json"

    @property
    def bybit_stream_url(self) -> str:
        """The Bybit WebSocket the collector connects to: ``bybit_ws_url`` when set; else,
        when ``bybit_api_url`` is set and is not Bybit's own REST host, the same host's
        ``/v5/public/linear`` (how the replay exchange is pointed at, as ``HL_API_URL`` is
        for Hyperliquid); else Bybit's public stream (:data:`BYBIT_WS_URL`)."""
        if self.bybit_ws_url:
            return self.bybit_ws_url
        api = (self.bybit_api_url or "").rstrip("/")
        if not api or api == BYBIT_API_URL:
            return BYBIT_WS_URL
        return "ws" + api[len("http"):] + BYBIT_WS_PATH

    @property
    def endpoint(self) -> str:
        """Where the venue's feed comes from (for the log): the API or WebSocket URL."""
        return self.bybit_stream_url if self.venue == "bybit" else self.api_url

    def validate(self) -> CollectorConfig:
        if not self.symbols:
            raise ConfigError("SYMBOLS is empty; give at least one coin, e.g. SYMBOLS=BTC,ETH")
        bad = [s for s in self.symbols if not _COIN_RE.match(s)]
        if bad:
            raise ConfigError(f"SYMBOLS has invalid coin names {bad} (letters, digits, @:- only)")
        if self.venue not in VENUES:
            raise ConfigError(f"VENUE must be one of {', '.join(VENUES)}, got {self.venue!r}")
        top = VENUE_MAX_DEPTH[self.venue]
        if not 1 <= self.orderbook_depth <= top:
            raise ConfigError(f"ORDERBOOK_DEPTH must be 1..{top} for {self.venue}, got "
                              f"{self.orderbook_depth}")
        if not self.api_url.startswith(("http://", "https://")):
            raise ConfigError(f"HL_API_URL must start with http:// or https://, got "
                              f"{self.api_url!r}")
        if self.bybit_api_url and not self.bybit_api_url.startswith(("http://", "https://")):
            raise ConfigError(f"BYBIT_API_URL must start with http:// or https://, got "
                              f"{self.bybit_api_url!r}")
        if self.bybit_ws_url and not self.bybit_ws_url.startswith(("ws://", "wss://")):
            raise ConfigError(f"BYBIT_WS_URL must start with ws:// or wss://, got "
                              f"{self.bybit_ws_url!r}")
        for name in ("flush_seconds", "stale_seconds", "status_seconds", "subscribe_timeout",
                     "backoff_min", "backoff_max"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name.upper()} must be > 0, got {getattr(self, name)}")
        if self.backoff_max < self.backoff_min:
            raise ConfigError("BACKOFF_MAX must be >= BACKOFF_MIN")
        if self.queue_size < 1:
            raise ConfigError(f"QUEUE_SIZE must be >= 1, got {self.queue_size}")
        if self.ws_client not in ("sdk", "aiohttp"):
            raise ConfigError(f"WS_CLIENT must be 'sdk' or 'aiohttp', got {self.ws_client!r}")
        if self.parquet_layout not in ("hive", "flat"):
            raise ConfigError(f"PARQUET_LAYOUT must be 'hive' or 'flat', got "
                              f"{self.parquet_layout!r}")
        if self.on_full not in ("block", "drop"):
            raise ConfigError(f"ON_FULL must be 'block' or 'drop', got {self.on_full!r}")
        return self


def _symbols(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def _bool(text: str) -> bool:
    t = text.strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {text!r}")


# field, environment variable, parser, help text (shared by the CLI flags)
SETTINGS: list[tuple[str, str, object, str]] = [
    ("venue", "VENUE", str, "the exchange to record: 'hyperliquid' (bbo, trades, l2Book) or "
     "'bybit' (USDT perpetuals: orderbook.1, orderbook.50, publicTrade; coin BTC is BTCUSDT)"),
    ("symbols", "SYMBOLS", _symbols, "comma-separated coins to collect, e.g. BTC,ETH (on "
     "bybit also BTCUSDT, written as BTC)"),
    ("output_dir", "OUTPUT_DIR", Path, "folder for the CSV/Parquet files and gaps files"),
    ("orderbook_depth", "ORDERBOOK_DEPTH", int, f"L2 levels per side to write (1..{MAX_DEPTH} "
     f"on hyperliquid, 1..{VENUE_MAX_DEPTH['bybit']} on bybit)"),
    ("api_url", "HL_API_URL", str, "Hyperliquid API base URL (the websocket is <url>/ws); "
     "point it at the replay exchange, e.g. http://127.0.0.1:8765, to run offline"),
    ("bybit_ws_url", "BYBIT_WS_URL", str, "venue bybit: the v5 public WebSocket of linear "
     f"perpetuals (default {BYBIT_WS_URL}, or BYBIT_API_URL's host + {BYBIT_WS_PATH})"),
    ("bybit_api_url", "BYBIT_API_URL", str, "venue bybit: a base URL whose "
     f"{BYBIT_WS_PATH} is the WebSocket, e.g. the replay exchange's http://127.0.0.1:8765 "
     "(used only when BYBIT_WS_URL is unset)"),
    ("flush_seconds", "FLUSH_SECONDS", float, "hand buffered rows to the OS at least this "
     "often (seconds); at most this much is lost on kill -9"),
    ("stale_seconds", "STALE_SECONDS", float, "reconnect when no data message arrived for "
     "this long (seconds)"),
    ("parquet", "PARQUET", _bool, "also convert each finished UTC day to Parquet (same "
     "columns; the day's CSV is removed after a successful conversion)"),
    ("parquet_layout", "PARQUET_LAYOUT", str, "where PARQUET puts finished days: 'hive' "
     "(OUTPUT_DIR/kind=K/coin=C/date=YYYY-MM-DD/part-0.parquet, the dataset layout DuckDB, "
     "Polars, Dask and Spark read) or 'flat' (OUTPUT_DIR/K_C_YYYY-MM-DD.parquet, as before)"),
    ("queue_size", "QUEUE_SIZE", int, "messages buffered between the websocket and the writer"),
    ("on_full", "ON_FULL", str, "when the queue is full: 'block' the websocket reader "
     "(back-pressure) or 'drop' the message, counting and logging every drop and recording "
     "the period as a gap"),
    ("status_seconds", "STATUS_SECONDS", float, "seconds between status log lines"),
    ("heartbeat_file", "HEARTBEAT_FILE", Path, "heartbeat JSON read by the healthcheck "
     "(default OUTPUT_DIR/.heartbeat.json)"),
    ("subscribe_timeout", "SUBSCRIBE_TIMEOUT", float, "seconds to wait for every "
     "subscription to be confirmed before reconnecting"),
    ("backoff_min", "BACKOFF_MIN", float, "first delay before reconnecting, or before trying "
     "again to write files that could not be written (seconds; doubles per failed attempt, "
     "with jitter)"),
    ("backoff_max", "BACKOFF_MAX", float, "longest delay between reconnects or write attempts "
     "(seconds)"),
    ("ws_client", "WS_CLIENT", str, "venue hyperliquid: websocket transport: 'aiohttp' "
     "(compiled frame reader, about 1.5x the messages per CPU-second) or 'sdk' "
     "(hyperliquid-python-sdk's websocket-client manager); bybit always uses aiohttp"),
]


def from_env(env: Mapping[str, str], **overrides) -> CollectorConfig:
    """Config from environment variables, then ``overrides`` (non-None values win)."""
    values = {}
    for name, var, parse, _ in SETTINGS:
        if var in env and env[var] != "":
            try:
                values[name] = parse(env[var])
            except ValueError as e:
                raise ConfigError(f"{var}={env[var]!r}: {e}") from None
    values.update({k: v for k, v in overrides.items() if v is not None})
    fields = {f.name for f in dataclasses.fields(CollectorConfig)}
    unknown = set(values) - fields
    if unknown:
        raise ConfigError(f"unknown settings {sorted(unknown)}")
    return CollectorConfig(**values).validate()
