"""Static check of docker-compose.yml, Dockerfile.technical, .env.example and the configs.

There is no Docker engine here, so this test does what `docker compose config` plus a first
start would catch: every path, file, command, environment variable and port the compose file
references exists and agrees with the Freqtrade configs.
"""

from __future__ import annotations

import ast
import copy
import json
import re
import subprocess
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
FREQTRADE_SERVICES = ["freqtrade", "freqtrade-long", "freqtrade-short", "freqtrade-paper"]
VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?-[^}]*)?\}")
SECRET_KEYS = {"username", "password", "jwt_secret_key", "ws_token", "private_key", "secret",
               "wallet_address", "apiKey", "key"}


def env_example() -> dict[str, str]:
    out = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            k, _, v = line.partition("=")
            out[k.strip()] = v.strip()
    return out


def interpolate(text: str, env: dict[str, str]) -> str:
    def sub(m):
        name, default = m.group(1), m.group(2)
        if name in env and env[name] != "":
            return env[name]
        return default.split("-", 1)[1] if default else ""
    return VAR.sub(sub, text)


def container_to_host(service: dict) -> dict[str, Path]:
    """Container path -> host path of each bind mount (``./x:/y[:ro]``)."""
    out = {}
    for vol in service.get("volumes", []):
        host, container = vol.split(":")[:2]
        out[container.rstrip("/")] = (ROOT / host).resolve()
    return out


def host_path(service: dict, container_path: str) -> Path:
    for container, host in sorted(container_to_host(service).items(), key=lambda x: -len(x[0])):
        if container_path == container or container_path.startswith(container + "/"):
            return host / container_path[len(container):].lstrip("/")
    raise AssertionError(f"{container_path} is not inside any volume of the service")


def load_config(path: Path) -> dict:
    """A config as Freqtrade loads it (add_config_files resolved), via Freqtrade itself."""
    from freqtrade.configuration.load_config import load_from_files

    return load_from_files([str(path)])


def git_ignored(path: Path) -> bool:
    """Ignored as a file, or as a folder (a ``dir/`` pattern matches only the latter)."""
    return any(subprocess.run(["git", "check-ignore", "-q", p], cwd=ROOT, check=False)
               .returncode == 0 for p in (str(path), str(path) + "/"))


def test_every_service_builds_from_existing_files():
    assert set(FREQTRADE_SERVICES) <= set(SERVICES)
    for name, svc in SERVICES.items():
        build = svc.get("build")
        if build:
            context = ROOT / build.get("context", ".")
            assert context.is_dir(), name
            assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name


def test_dockerfile_technical_is_freqtrade_2026_9_with_this_package():
    text = (ROOT / "Dockerfile.technical").read_text()
    assert re.search(r"^FROM freqtradeorg/freqtrade:2026\.9\s*$", text, re.M)
    for line in text.splitlines():
        if line.startswith("COPY"):
            sources = [a for a in line.split()[1:-1] if not a.startswith("--")]
            for src in sources:
                assert (ROOT / src).exists(), f"Dockerfile.technical copies missing {src}"
    assert re.search(r"pip install .*asmm", text)
    # The installed package must not pull a second Freqtrade over the image's own.
    assert "[freqtrade]" not in text and "[dev]" not in text


def test_every_host_volume_exists_or_is_created_at_runtime():
    for name, svc in SERVICES.items():
        for vol in svc.get("volumes", []):
            host = (ROOT / vol.split(":")[0]).resolve()
            assert ROOT in host.parents or host == ROOT, f"{name}: {vol} leaves the repository"
            # Data folders appear on first run; they must be git-ignored, not committed.
            assert host.exists() or (host.parent.exists() and git_ignored(host)), \
                f"{name}: volume source {host} neither exists nor is a git-ignored data folder"


def test_every_published_port_is_loopback_only():
    env = env_example()
    for name, svc in SERVICES.items():
        for port in svc.get("ports", []):
            published = interpolate(str(port), env)
            assert published.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_every_variable_has_a_default_or_an_example():
    env = env_example()
    text = (ROOT / "docker-compose.yml").read_text()
    for m in VAR.finditer(text):
        assert m.group(2) is not None or m.group(1) in env, \
            f"${{{m.group(1)}}} has no default and is missing from .env.example"
    for name in FREQTRADE_SERVICES:
        env_file = SERVICES[name]["env_file"]
        assert any(e["path"] == ".env" for e in env_file)
    assert git_ignored(ROOT / ".env"), ".env holds secrets and must be git-ignored"


@pytest.mark.parametrize("name", FREQTRADE_SERVICES)
def test_freqtrade_command_config_ports_and_healthcheck_agree(name):
    from freqtrade.commands import Arguments

    svc = SERVICES[name]
    args = Arguments([str(a) for a in svc["command"]]).get_parsed_arg()  # Freqtrade's parser
    assert args["command"] == "trade"
    [config_in_container] = args["config"]
    config_path = host_path(svc, config_in_container)
    assert config_path.is_file(), config_path
    config = load_config(config_path)
    # The strategy named on the command line is a class in the mounted strategies folder.
    strategies = host_path(svc, "/freqtrade/user_data/strategies")
    classes = {n.name for f in strategies.glob("*.py")
               for n in ast.walk(ast.parse(f.read_text())) if isinstance(n, ast.ClassDef)}
    assert args["strategy"] in classes
    assert config["strategy"] == args["strategy"]
    host_path(svc, args["logfile"])  # the log lands in a volume
    # The published container port is the API port of that bot's config.
    env = env_example()
    api_port = config["api_server"]["listen_port"]
    [port] = svc["ports"]
    assert int(interpolate(port, env).split(":")[-1]) == api_port
    assert f"127.0.0.1:{api_port}/api/v1/ping" in " ".join(svc["healthcheck"]["test"])
    # Inside the container the API listens on all interfaces (published to loopback only).
    assert svc["environment"]["FREQTRADE__API_SERVER__LISTEN_IP_ADDRESS"] == "0.0.0.0"
    # The parameter file the strategy reads is inside a mounted volume that exists.
    params = "/freqtrade/" + config["asmm"]["params_file"]
    assert host_path(svc, params).parent.is_dir()


def test_pair_bots_are_a_profile_with_their_own_accounts_and_shared_state():
    ports = set()
    for name, mode in (("freqtrade-long", "long"), ("freqtrade-short", "short")):
        svc = SERVICES[name]
        assert svc["profiles"] == ["pair"]
        assert "profiles" not in SERVICES["freqtrade"]
        env = svc["environment"]
        assert f"PAIR_{mode.upper()}_WALLET_ADDRESS" in env["FREQTRADE__EXCHANGE__WALLET_ADDRESS"]
        config = load_config(ROOT / "user_data" / f"config.pair-{mode}.json")
        assert config["asmm"]["mode"] == mode and config["asmm"]["bot_id"] == mode
        assert config["asmm"]["shared_state_dir"] == "user_data/shared_state"
        ports.add(config["api_server"]["listen_port"])
        assert config["db_url"] != load_config(ROOT / "user_data/config.json")["db_url"]
    assert len(ports) == 2


def _secrets(doc, path=""):
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k in SECRET_KEYS and v not in ("", None, {}):
                yield f"{path}.{k}"
            yield from _secrets(v, f"{path}.{k}")


@pytest.mark.parametrize("config", ["config.json", "config.pair-long.json",
                                    "config.pair-short.json"])
def test_configs_are_valid_freqtrade_configs_without_secrets(config, monkeypatch):
    from freqtrade.configuration.config_validation import validate_config_schema
    from freqtrade.configuration.environment_vars import environment_vars_to_dict
    from freqtrade.misc import deep_merge_dicts

    from asmm.freqtrade.config import MMConfig

    raw = json.loads((ROOT / "user_data" / config).read_text())
    assert not list(_secrets(raw)), f"{config} holds secrets; they belong in .env"
    conf = load_config(ROOT / "user_data" / config)
    assert conf["dry_run"] is True
    assert conf["trading_mode"] == "futures" and conf["margin_mode"] == "isolated"
    assert conf["exchange"]["name"] == "hyperliquid"
    assert conf["exchange"]["pair_whitelist"] == ["BTC/USDC:USDC"]
    assert conf["api_server"]["listen_ip_address"] == "127.0.0.1"
    # With .env.example's variables (what a user starts from) Freqtrade's own schema accepts
    # it: the API credentials the schema requires come from the environment.
    for k, v in env_example().items():
        if k.startswith("FREQTRADE__"):
            monkeypatch.setenv(k, v)
    merged = deep_merge_dicts(environment_vars_to_dict(), copy.deepcopy(conf))
    validate_config_schema(merged)
    assert merged["api_server"]["jwt_secret_key"]
    MMConfig.from_dict(conf["asmm"])


def test_env_example_has_no_real_secrets():
    env = env_example()
    for k in ("FREQTRADE__EXCHANGE__PRIVATE_KEY", "PAIR_LONG_PRIVATE_KEY",
              "PAIR_SHORT_PRIVATE_KEY"):
        assert env[k] == "", f"{k} must be empty in .env.example"
    assert "change-me" in env["FREQTRADE__API_SERVER__JWT_SECRET_KEY"]


def test_replay_config_is_the_dry_run_config_pointed_at_loopback():
    live = load_config(ROOT / "user_data" / "config.json")
    replay = load_config(ROOT / "user_data" / "config.replay.json")
    # Same bot, same rules: only where the exchange lives differs.
    assert replay["asmm"] == live["asmm"]
    for key in ("strategy", "timeframe", "trading_mode", "margin_mode", "stake_currency",
                "unfilledtimeout", "entry_pricing", "exit_pricing"):
        assert replay[key] == live[key], key
    assert replay["exchange"]["_ft_has_params"]["ohlcv_partial_candle"] is False
    assert live["exchange"]["_ft_has_params"]["ohlcv_partial_candle"] is False
    urls = replay["exchange"]["ccxt_config"]["urls"]["api"]
    assert {urls["public"], urls["private"]} == {"http://127.0.0.1:8765"}
    assert replay["exchange"]["enable_ws"] is False
    assert replay["db_url"] != live["db_url"]


def test_paper_config_is_the_replay_config_trading_live(monkeypatch):
    """config.paper.json: the replay config with dry_run off, so Freqtrade signs and sends
    its orders to the paper exchange on 127.0.0.1; credentials from the environment."""
    from freqtrade.configuration.config_validation import validate_config_schema
    from freqtrade.configuration.environment_vars import environment_vars_to_dict
    from freqtrade.misc import deep_merge_dicts

    from asmm.freqtrade.config import MMConfig

    raw = json.loads((ROOT / "user_data" / "config.paper.json").read_text())
    assert not list(_secrets(raw)), "config.paper.json holds secrets; they belong in .env"
    paper = load_config(ROOT / "user_data" / "config.paper.json")
    replay = load_config(ROOT / "user_data" / "config.replay.json")
    assert paper["dry_run"] is False and "dry_run_wallet" not in paper
    # Same bot as the replay's; a paper account loses no money, so entries are not held
    # back for want of a profitable verdict (as in dry-run).
    assert paper["asmm"] == {**replay["asmm"], "require_profitable": False}
    for key in ("strategy", "timeframe", "trading_mode", "margin_mode", "stake_currency",
                "unfilledtimeout", "entry_pricing", "exit_pricing", "pairlists"):
        assert paper[key] == replay[key], key
    ccxt = paper["exchange"]["ccxt_config"]
    assert ccxt["urls"] == replay["exchange"]["ccxt_config"]["urls"]
    assert paper["exchange"]["enable_ws"] is False
    # No builder fee: ccxt would otherwise attach 1 bp to every order, and the paper
    # exchange charges it as Hyperliquid does.
    assert ccxt["options"]["builderFee"] is False
    assert paper["db_url"] not in (replay["db_url"],
                                   load_config(ROOT / "user_data" / "config.json")["db_url"])
    for k, v in env_example().items():
        if k.startswith("FREQTRADE__"):
            monkeypatch.setenv(k, v)
    monkeypatch.setenv("FREQTRADE__EXCHANGE__WALLET_ADDRESS", "0x" + "1" * 40)
    monkeypatch.setenv("FREQTRADE__EXCHANGE__PRIVATE_KEY", "0x" + "2" * 64)
    merged = deep_merge_dicts(environment_vars_to_dict(), copy.deepcopy(paper))
    validate_config_schema(merged)
    assert merged["exchange"]["wallet_address"] == "0x" + "1" * 40
    MMConfig.from_dict(paper["asmm"])


def test_paper_profile_runs_the_paper_exchange_and_a_bot_pointed_at_it():
    from asmm.cli import build_parser

    ex, bot = SERVICES["paper-exchange"], SERVICES["freqtrade-paper"]
    assert ex["profiles"] == bot["profiles"] == ["paper"]
    env = env_example()
    args = build_parser().parse_args([interpolate(str(a), env) for a in ex["command"]])
    assert args.command == "paper" and args.upstream == "https://api.hyperliquid.xyz"
    # The ledger is in a volume, so accounts outlive the container.
    ledger_dir = args.ledger.rsplit("/", 1)[0]
    assert any(v.split(":")[1] == ledger_dir for v in ex["volumes"])
    [published] = ex["ports"]
    assert interpolate(published, env).split(":")[-1] == str(args.port)
    urls = {k: v for k, v in bot["environment"].items() if "CCXT_CONFIG__URLS" in k}
    assert set(urls.values()) == {f"http://paper-exchange:{args.port}"}
    assert "PAPER_PRIVATE_KEY" in bot["environment"]["FREQTRADE__EXCHANGE__PRIVATE_KEY"]
    assert bot["depends_on"] == ["paper-exchange"]


def test_collector_service_passes_its_venue_and_bybit_endpoints():
    """hl-collector hands the collector VENUE, BYBIT_WS_URL and BYBIT_API_URL from the
    environment (or .env), each with a default, and only variables the collector reads; as
    the container gets them, the collector's own settings parser makes of them what the docs
    say."""
    from asmm.venues.collector_common.config import SETTINGS, from_env

    env = SERVICES["hl-collector"]["environment"]
    assert set(env) <= {var for _, var, _, _ in SETTINGS}, "a variable the collector ignores"
    for var in ("VENUE", "BYBIT_WS_URL", "BYBIT_API_URL"):
        assert re.fullmatch(r"\$\{" + var + r":-[^}]*\}", str(env[var])), var

    def collector(user_env: dict[str, str]):
        return from_env({k: interpolate(str(v), user_env) for k, v in env.items()})

    for user_env in ({}, env_example()):  # nothing set, or .env as .env.example has it
        cfg = collector(user_env)
        assert (cfg.venue, cfg.api_url) == ("hyperliquid", "https://api.hyperliquid.xyz")
        assert cfg.bybit_stream_url == "wss://stream.bybit.com/v5/public/linear"
    cfg = collector({**env_example(), "VENUE": "bybit"})
    assert cfg.venue == "bybit" and cfg.endpoint == "wss://stream.bybit.com/v5/public/linear"
    # Offline: the replay exchange as the container sees it, by its base URL.
    cfg = collector({**env_example(), "VENUE": "bybit",
                     "BYBIT_API_URL": "http://host.docker.internal:8765"})
    assert cfg.endpoint == "ws://host.docker.internal:8765/v5/public/linear"
    testnet = "wss://stream-testnet.bybit.com/v5/public/linear"
    assert collector({"VENUE": "bybit", "BYBIT_WS_URL": testnet}).endpoint == testnet
