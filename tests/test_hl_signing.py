"""asmm.venues.hyperliquid.signing against the real clients: requests signed by
hyperliquid-python-sdk and by ccxt, captured as the JSON they would send (only the socket is
replaced, since no exchange exists here), recover to the wallet that signed them; any
change to what was signed recovers someone else."""

from __future__ import annotations

import json

import ccxt
import pytest
from eth_account import Account
from hyperliquid.exchange import Exchange
from hyperliquid.utils import signing as sdk

from asmm.core.errors import AsmmError
from asmm.venues.hyperliquid.signing import (
    USER_SIGNED_TYPES,
    SignatureError,
    action_hash,
    l1_signer_candidates,
    recover_l1_signer,
    recover_user_action_signer,
    recover_user_signed,
    unknown_signer_response,
)

LOCAL_URL = "http://127.0.0.1:9"  # never contacted: requests are captured before the socket
VAULT = "0x" + "ab" * 20
NONCE = 1_760_000_000_000  # a millisecond clock, as both clients send
BTC_META = {"universe": [{"name": "BTC", "szDecimals": 5, "maxLeverage": 40}]}


def on_the_wire(payload: dict) -> dict:
    """What the server parses: the client's JSON body."""
    return json.loads(json.dumps(payload))


@pytest.fixture
def wallet():
    return Account.create()


def sdk_order_action(price: float = 50000.5) -> dict:
    wire = sdk.order_request_to_order_wire(
        {"coin": "BTC", "is_buy": True, "sz": 0.001, "limit_px": price,
         "order_type": {"limit": {"tif": "Alo"}}, "reduce_only": False}, 0)
    return sdk.order_wires_to_order_action([wire])


# ----------------------------------------------------------------- L1 actions, SDK


@pytest.mark.parametrize("is_mainnet", [True, False])
@pytest.mark.parametrize("vault", [None, VAULT])
@pytest.mark.parametrize("expires_after", [None, NONCE + 60_000])
def test_sdk_l1_signature_recovers_the_wallet(wallet, is_mainnet, vault, expires_after):
    action = sdk_order_action()
    signature = sdk.sign_l1_action(wallet, action, vault, NONCE, expires_after, is_mainnet)

    assert action_hash(action, vault, NONCE, expires_after) == \
        sdk.action_hash(action, vault, NONCE, expires_after)
    signer = recover_l1_signer(action, NONCE, vault, signature, is_mainnet=is_mainnet,
                               expires_after=expires_after)
    assert signer == wallet.address.lower()
    # The server parses JSON: the parsed action hashes and verifies the same.
    parsed = on_the_wire(action)
    assert action_hash(parsed, vault, NONCE, expires_after) == \
        action_hash(action, vault, NONCE, expires_after)
    assert recover_l1_signer(parsed, NONCE, vault, on_the_wire(signature),
                             is_mainnet=is_mainnet, expires_after=expires_after) == signer


def test_anything_changed_in_an_l1_request_recovers_someone_else(wallet):
    action = sdk_order_action()
    signature = sdk.sign_l1_action(wallet, action, None, NONCE, None, False)
    me = wallet.address.lower()
    assert recover_l1_signer(action, NONCE, None, signature, is_mainnet=False) == me

    tampered = sdk_order_action(price=50001.5)
    others = {
        "price": recover_l1_signer(tampered, NONCE, None, signature, is_mainnet=False),
        "nonce": recover_l1_signer(action, NONCE + 1, None, signature, is_mainnet=False),
        "source": recover_l1_signer(action, NONCE, None, signature, is_mainnet=True),
        "vault": recover_l1_signer(action, NONCE, VAULT, signature, is_mainnet=False),
        "expiresAfter": recover_l1_signer(action, NONCE, None, signature, is_mainnet=False,
                                          expires_after=NONCE),
    }
    assert me not in others.values(), others
    assert len(set(others.values())) == len(others)
    assert l1_signer_candidates(action, NONCE, None, signature) == (others["source"], me)


def sdk_exchange(wallet, sent: list, **kwargs) -> Exchange:
    """The SDK's Exchange pointed at a local URL, its HTTP post captured."""
    exchange = Exchange(wallet, LOCAL_URL, meta=BTC_META,
                        spot_meta={"universe": [], "tokens": []}, **kwargs)

    def post(path, payload=None):
        assert path == "/exchange"
        sent.append(on_the_wire(payload))
        return {"status": "ok", "response": {"type": "default"}}

    exchange.post = post
    return exchange


def test_sdk_exchange_off_mainnet_signs_as_testnet(wallet):
    sent: list[dict] = []
    exchange = sdk_exchange(wallet, sent, vault_address=VAULT)
    exchange.set_expires_after(NONCE + 60_000)
    exchange.order("BTC", True, 0.001, 50000.5, {"limit": {"tif": "Gtc"}})

    (request,) = sent
    assert request["action"]["orders"][0]["p"] == "50000.5"
    assert request["vaultAddress"] == VAULT
    mainnet, testnet = l1_signer_candidates(request["action"], request["nonce"],
                                            request["vaultAddress"], request["signature"],
                                            request["expiresAfter"])
    assert testnet == wallet.address.lower()
    assert mainnet != testnet


# ----------------------------------------------------------------- L1 actions, ccxt


def ccxt_exchange(wallet, sent: list, **config) -> ccxt.hyperliquid:
    """ccxt's hyperliquid with one BTC perp, pointed at a local URL, its HTTP fetch captured
    and answered as the exchange would, so its own order flow runs unchanged."""
    exchange = ccxt.hyperliquid({"walletAddress": wallet.address,
                                 "privateKey": wallet.key.hex(), **config})
    exchange.urls["api"] = {"public": LOCAL_URL, "private": LOCAL_URL}
    exchange.set_markets([exchange.parse_market(
        {"name": "BTC", "szDecimals": 5, "maxLeverage": 40, "markPx": "50000", "baseId": 0})])

    def fetch(url, method="GET", headers=None, body=None):
        request = json.loads(body)
        if url.endswith("/info"):
            return None  # the account-abstraction query: ccxt ignores its failure here
        sent.append(request)
        if request["action"]["type"] == "order":
            return {"status": "ok", "response": {"type": "order",
                                                 "data": {"statuses": [{"resting": {"oid": 1}}]}}}
        return {"status": "ok", "response": {"type": "default"}}

    exchange.fetch = fetch
    return exchange


def test_ccxt_create_order_signs_as_mainnet_whatever_its_url(wallet):
    sent: list[dict] = []
    exchange = ccxt_exchange(wallet, sent)
    exchange.create_order("BTC/USDC:USDC", "limit", "buy", 0.001, 50000.5)

    me = wallet.address.lower()
    kinds = [request["action"]["type"] for request in sent]
    assert kinds == ["approveBuilderFee", "setReferrer", "order"]
    fee, referrer, order = sent
    # The user-signed builder-fee approval, as "Mainnet".
    assert fee["action"]["hyperliquidChain"] == "Mainnet"
    assert recover_user_action_signer(fee["action"], fee["signature"]) == me
    # L1 actions as source "a"; the order carries ccxt's builder once the fee was approved,
    # and its price rounded to 5 significant figures (the SDK sends "50000.5").
    for request in (referrer, order):
        mainnet, testnet = l1_signer_candidates(request["action"], request["nonce"],
                                                request.get("vaultAddress"),
                                                request["signature"])
        assert mainnet == me and testnet != me
    assert order["action"]["builder"]["f"] == 10
    assert order["action"]["orders"][0]["p"] == "50001"


def test_ccxt_in_sandbox_mode_signs_as_testnet(wallet):
    sent: list[dict] = []
    exchange = ccxt_exchange(wallet, sent)
    exchange.set_sandbox_mode(True)
    exchange.urls["api"] = {"public": LOCAL_URL, "private": LOCAL_URL}
    exchange.create_order("BTC/USDC:USDC", "limit", "sell", 0.002, 49000)

    fee, _, order = sent
    assert fee["action"]["hyperliquidChain"] == "Testnet"
    assert recover_user_action_signer(fee["action"], fee["signature"]) == wallet.address.lower()
    _, testnet = l1_signer_candidates(order["action"], order["nonce"], None, order["signature"])
    assert testnet == wallet.address.lower()


def test_ccxt_sends_the_vault_address_without_0x_and_it_verifies(wallet):
    sent: list[dict] = []
    exchange = ccxt_exchange(wallet, sent)
    request = exchange.create_orders_request(
        [{"symbol": "BTC/USDC:USDC", "type": "limit", "side": "buy", "amount": 0.001,
          "price": 50000, "params": {"postOnly": True}}], {"vaultAddress": VAULT})
    request = on_the_wire(request)

    assert request["vaultAddress"] == VAULT[2:]
    assert action_hash(request["action"], request["vaultAddress"], request["nonce"]) == \
        exchange.action_hash(request["action"], VAULT[2:], request["nonce"]) == \
        sdk.action_hash(request["action"], VAULT, request["nonce"], None)
    mainnet, _ = l1_signer_candidates(request["action"], request["nonce"],
                                      request["vaultAddress"], request["signature"])
    assert mainnet == wallet.address.lower()
    assert l1_signer_candidates(request["action"], request["nonce"], None,
                                request["signature"])[0] != mainnet


# ----------------------------------------------------------------- user-signed actions


@pytest.mark.parametrize("name", [None, "paper-bot"])
def test_sdk_approve_agent_recovers_the_main_wallet(wallet, name):
    sent: list[dict] = []
    _, agent_key = sdk_exchange(wallet, sent).approve_agent(name)

    (request,) = sent
    action = request["action"]
    # Unnamed: the SDK signed agentName "" but sends no agentName.
    assert ("agentName" in action) == (name is not None)
    assert action["hyperliquidChain"] == "Testnet"
    assert recover_user_action_signer(action, request["signature"]) == wallet.address.lower()
    assert action["agentAddress"] == Account.from_key(agent_key).address


def test_sdk_transfers_recover_the_wallet(wallet):
    sent: list[dict] = []
    exchange = sdk_exchange(wallet, sent)
    exchange.usd_class_transfer(12.5, True)
    exchange.usd_transfer(3.0, "0x" + "cd" * 20)
    exchange.withdraw_from_bridge(7.0, "0x" + "ef" * 20)
    exchange.spot_transfer(1.0, "0x" + "cd" * 20, "PURR:0xc4bf3f870c0e9465323c0b6ed28096c2")

    assert [request["action"]["type"] for request in sent] == \
        ["usdClassTransfer", "usdSend", "withdraw3", "spotSend"]
    for request in sent:
        assert recover_user_action_signer(request["action"], request["signature"]) == \
            wallet.address.lower()


def test_a_changed_user_signed_field_recovers_someone_else(wallet):
    sent: list[dict] = []
    sdk_exchange(wallet, sent).usd_class_transfer(12.5, True)
    action, signature = sent[0]["action"], sent[0]["signature"]

    for field, value in [("amount", "125"), ("toPerp", False), ("nonce", action["nonce"] + 1),
                         ("hyperliquidChain", "Mainnet"), ("signatureChainId", "0xa4b1")]:
        assert recover_user_action_signer({**action, field: value}, signature) != \
            wallet.address.lower(), field


def test_recover_user_signed_takes_the_sdks_type_lists(wallet):
    action = {"type": "usdClassTransfer", "amount": "1", "toPerp": False, "nonce": NONCE}
    signature = sdk.sign_usd_class_transfer_action(wallet, action, False)
    signer = recover_user_signed(action, signature, sdk.USD_CLASS_TRANSFER_SIGN_TYPES,
                                 "HyperliquidTransaction:UsdClassTransfer")
    assert signer == wallet.address.lower()
    assert USER_SIGNED_TYPES["usdClassTransfer"][1] == tuple(sdk.USD_CLASS_TRANSFER_SIGN_TYPES)


def test_unknown_or_incomplete_user_actions_are_refused(wallet):
    action = {"type": "usdClassTransfer", "amount": "1", "toPerp": False, "nonce": NONCE}
    signature = sdk.sign_usd_class_transfer_action(wallet, action, False)
    with pytest.raises(SignatureError, match="not a user-signed action"):
        recover_user_action_signer({**action, "type": "tokenDelegate"}, signature)
    with pytest.raises(SignatureError, match="lacks its signed field amount"):
        recover_user_action_signer({k: v for k, v in action.items() if k != "amount"}, signature)
    with pytest.raises(SignatureError, match="toPerp"):
        recover_user_action_signer({**action, "toPerp": "yes"}, signature)
    with pytest.raises(SignatureError, match="signatureChainId"):
        recover_user_action_signer({**action, "signatureChainId": 421614}, signature)


# ----------------------------------------------------------------- malformed requests


@pytest.fixture
def signed(wallet):
    action = sdk_order_action()
    return action, sdk.sign_l1_action(wallet, action, None, NONCE, None, True)


@pytest.mark.parametrize("change", [
    {"r": None}, {"s": None}, {"v": None},
    {"r": "0xnothex"}, {"r": "abcd"}, {"s": "0x" + "1" * 65}, {"r": "0x0"},
    {"s": hex(0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141)},
    {"v": 29}, {"v": 0}, {"v": "27"}, {"v": True},
    {"r": "0x5"},  # in range, but no curve point has x = 5: nothing recovers
])
def test_malformed_signatures_are_refused(signed, change):
    action, signature = signed
    broken = {k: v for k, v in {**signature, **change}.items() if v is not None}
    with pytest.raises(SignatureError) as refused:
        recover_l1_signer(action, NONCE, None, broken, is_mainnet=True)
    assert isinstance(refused.value, ValueError) and isinstance(refused.value, AsmmError)


@pytest.mark.parametrize("signature", [None, "0xdeadbeef", [1, 2, 27]])
def test_a_signature_that_is_not_an_object_is_refused(signed, signature):
    with pytest.raises(SignatureError):
        recover_l1_signer(signed[0], NONCE, None, signature, is_mainnet=True)


@pytest.mark.parametrize("nonce, vault", [
    (str(NONCE), None), (True, None), (-1, None), (1 << 64, None), (float(NONCE), None),
    (NONCE, "0xabcd"), (NONCE, "0x" + "zz" * 20), (NONCE, 42),
])
def test_malformed_nonce_or_vault_is_refused(signed, nonce, vault):
    action, signature = signed
    with pytest.raises(SignatureError):
        recover_l1_signer(action, nonce, vault, signature, is_mainnet=True)


def test_the_unknown_signer_answer_is_the_live_exchanges():
    assert unknown_signer_response("0xAbC0000000000000000000000000000000000001") == {
        "status": "err",
        "response": "User or API Wallet 0xabc0000000000000000000000000000000000001 does not exist.",
    }
