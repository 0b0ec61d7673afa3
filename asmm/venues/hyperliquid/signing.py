"""Who signed a ``POST /exchange`` request, found as Hyperliquid finds it.

Hyperliquid never receives an address with an action: it recovers the signer from the
signature, and answers ``User or API Wallet 0x… does not exist.`` when the recovered address
is neither an account nor an agent approved for one. So a hash that differs by one byte from
what the client hashed gives an unknown, random-looking address rather than a "bad
signature" error, and the paper exchange must hash exactly what the clients hash.

Two kinds of signature, both EIP-712 (byte for byte as ``hyperliquid.utils.signing`` of
hyperliquid-python-sdk 0.24.0 and ``ccxt.hyperliquid`` 4.5.90 compute them):

- **L1 actions** (orders, cancels, ``setReferrer`` …): keccak of msgpack(action), the nonce
  as 8 bytes big-endian, a vault flag byte (+ the vault's 20 bytes) and, when present, a zero
  byte and ``expiresAfter`` as 8 bytes: the ``connectionId`` of a phantom agent
  ``{source, connectionId}`` signed under the domain ``Exchange``/``1``/chain 1337.
  ``source`` is ``"a"`` for mainnet and ``"b"`` for testnet, and the server cannot tell which
  the client meant: the SDK signs ``"b"`` for every ``base_url`` other than the mainnet URL
  (so ``"b"`` against a local server), while ccxt signs ``"a"`` unless
  ``set_sandbox_mode(True)``, whatever its URL. Hence :func:`l1_signer_candidates`.
- **User-signed actions** (``approveAgent``, transfers, ``approveBuilderFee``): the action's
  own fields under the domain ``HyperliquidSignTransaction``/``1``/``signatureChainId``,
  primary type ``HyperliquidTransaction:<Name>``. ``hyperliquidChain`` ("Mainnet" or
  "Testnet") is a signed field, sent in the action; the SDK writes "Testnet" off the mainnet
  URL, ccxt "Mainnet" unless in sandbox mode.

What the two clients put on the wire, and why the server hashes the action as parsed:

- Both send, as JSON, the very dict they hashed, and Python's ``json`` keeps key order, ints
  and strings, so msgpack of the parsed action reproduces the client's bytes. Reports of the
  live exchange say that field order matters there (hyperliquid-dex/ts-examples#1); hashing
  the parsed dict accepts whatever order a client both hashed and sent.
- Prices and sizes are strings, and the two clients format them differently: the SDK's
  ``float_to_wire`` writes the float to 8 decimals, normalised (50000.5 → "50000.5"); ccxt
  rounds to 5 significant figures first (50000.5 → "50001"). Either way the string sent is
  the string hashed.
- ccxt sends ``vaultAddress`` without its ``0x`` (and hashes it so); the SDK with it. Both
  spellings are accepted here.
- ccxt writes the nonce as ``"00000" + hex`` rather than padding to 16 digits: right for
  11-hex-digit nonces (millisecond clocks from 2004 to 2527); a smaller nonce makes ccxt
  itself fail (odd-length hex), so no such request reaches a server.
- The SDK's ``r``/``s`` are hex without leading zeros (``to_hex`` of an int), ccxt's are
  64 digits; both parse to the same integers.
- The SDK's ``approve_agent`` signs ``agentName: ""`` and then deletes the key when the
  agent is unnamed, so a missing ``agentName`` is verified as ``""``.
- ccxt's first private call sends ``approveBuilderFee`` (user-signed) and ``setReferrer``
  (L1) before the order; once ``approveBuilderFee`` is answered "ok", every order action
  carries ``builder: {"b": <ccxt's builder address>, "f": 10}``, which is hashed like any
  other field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import msgpack
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_keys.exceptions import BadSignature, ValidationError
from eth_utils import keccak

from asmm.core.errors import ProtocolError

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"

# secp256k1's group order: r and s of a valid signature lie in [1, N).
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HEX_WORD = re.compile(r"0x[0-9a-fA-F]{1,64}")
_ADDRESS = re.compile(r"(0x)?[0-9a-fA-F]{40}")

_EIP712_DOMAIN = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
_AGENT_TYPE = [
    {"name": "source", "type": "string"},
    {"name": "connectionId", "type": "bytes32"},
]


def _fields(*pairs: tuple[str, str]) -> tuple[dict[str, str], ...]:
    return tuple({"name": name, "type": kind} for name, kind in pairs)


# Action type -> (EIP-712 primary type, its fields in signing order), as the SDK's
# ``sign_*`` functions and ccxt's ``build_*_sig`` declare them.
USER_SIGNED_TYPES: Mapping[str, tuple[str, tuple[dict[str, str], ...]]] = {
    "approveAgent": ("HyperliquidTransaction:ApproveAgent", _fields(
        ("hyperliquidChain", "string"), ("agentAddress", "address"),
        ("agentName", "string"), ("nonce", "uint64"))),
    "approveBuilderFee": ("HyperliquidTransaction:ApproveBuilderFee", _fields(
        ("hyperliquidChain", "string"), ("maxFeeRate", "string"),
        ("builder", "address"), ("nonce", "uint64"))),
    "usdClassTransfer": ("HyperliquidTransaction:UsdClassTransfer", _fields(
        ("hyperliquidChain", "string"), ("amount", "string"),
        ("toPerp", "bool"), ("nonce", "uint64"))),
    "usdSend": ("HyperliquidTransaction:UsdSend", _fields(
        ("hyperliquidChain", "string"), ("destination", "string"),
        ("amount", "string"), ("time", "uint64"))),
    "spotSend": ("HyperliquidTransaction:SpotSend", _fields(
        ("hyperliquidChain", "string"), ("destination", "string"), ("token", "string"),
        ("amount", "string"), ("time", "uint64"))),
    "withdraw3": ("HyperliquidTransaction:Withdraw", _fields(
        ("hyperliquidChain", "string"), ("destination", "string"),
        ("amount", "string"), ("time", "uint64"))),
}

# Fields a client may leave out of the action it sends although it signed them: the SDK's
# approve_agent signs agentName "" and drops the key for an unnamed agent.
_SIGNED_DEFAULTS: Mapping[str, Mapping[str, Any]] = {"approveAgent": {"agentName": ""}}


class SignatureError(ProtocolError):
    """A request whose signature cannot be checked: a malformed ``signature`` object, or a
    signed field (nonce, vault address, a user-signed action's field) of the wrong shape."""


def unknown_signer_response(address: str) -> dict[str, str]:
    """The live exchange's answer when the recovered signer is neither an account nor an
    agent approved for one (older servers prefixed the message with ``L1 error: ``)."""
    return {"status": "err", "response": f"User or API Wallet {address.lower()} does not exist."}


def _u64(value: Any, name: str) -> int:
    # bool is an int in Python, but JSON true is no nonce.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 64:
        raise SignatureError(f"{name} must be an integer in [0, 2**64), got {value!r}")
    return value


def _address_bytes(address: Any, name: str) -> bytes:
    if not isinstance(address, str) or not _ADDRESS.fullmatch(address):
        raise SignatureError(f"{name} must be 20 bytes of hex, got {address!r}")
    return bytes.fromhex(address.removeprefix("0x"))


def action_hash(action: Any, vault_address: str | None, nonce: int,
                expires_after: int | None = None) -> bytes:
    """The 32-byte ``connectionId`` of an L1 action, as the SDK's ``action_hash`` computes it.

    ``vault_address`` may come with or without ``0x`` (ccxt sends it bare); ``None`` means
    the action trades for the signer's own account.
    """
    try:
        data = msgpack.packb(action)
    except (TypeError, ValueError, OverflowError) as exc:
        raise SignatureError(f"the action cannot be msgpack-encoded: {exc}") from exc
    data += _u64(nonce, "nonce").to_bytes(8, "big")
    if vault_address is None:
        data += b"\x00"
    else:
        data += b"\x01" + _address_bytes(vault_address, "vaultAddress")
    if expires_after is not None:
        data += b"\x00" + _u64(expires_after, "expiresAfter").to_bytes(8, "big")
    return keccak(data)


def _vrs(signature: Any) -> tuple[int, int, int]:
    if not isinstance(signature, Mapping):
        raise SignatureError(f"signature must be an object with r, s and v, got {signature!r}")
    words = []
    for key in ("r", "s"):
        word = signature.get(key)
        if not isinstance(word, str) or not _HEX_WORD.fullmatch(word):
            raise SignatureError(f"signature.{key} must be 0x and 1 to 64 hex digits, "
                                 f"got {word!r}")
        value = int(word, 16)
        if not 0 < value < _SECP256K1_N:
            raise SignatureError(f"signature.{key} is outside the secp256k1 group order")
        words.append(value)
    v = signature.get("v")
    if isinstance(v, bool) or v not in (27, 28):
        raise SignatureError(f"signature.v must be 27 or 28, got {v!r}")
    return v, words[0], words[1]


def _recover(typed_data: dict[str, Any], signature: Any) -> str:
    vrs = _vrs(signature)
    message = encode_typed_data(full_message=typed_data)
    try:
        return Account.recover_message(message, vrs=vrs).lower()
    except (BadSignature, ValidationError) as exc:
        raise SignatureError(f"no public key recovers from this signature: {exc}") from exc


def recover_l1_signer(action: Any, nonce: int, vault_address: str | None, signature: Any, *,
                      is_mainnet: bool, expires_after: int | None = None) -> str:
    """The address (lower-case ``0x`` hex) whose key signed this L1 action with phantom-agent
    source ``"a"`` (``is_mainnet``) or ``"b"``. A different action, nonce, vault or source
    recovers some other address, never an error."""
    phantom_agent = {"source": "a" if is_mainnet else "b",
                     "connectionId": action_hash(action, vault_address, nonce, expires_after)}
    return _recover({
        "domain": {"chainId": 1337, "name": "Exchange", "verifyingContract": ZERO_ADDRESS,
                   "version": "1"},
        "types": {"Agent": _AGENT_TYPE, "EIP712Domain": _EIP712_DOMAIN},
        "primaryType": "Agent",
        "message": phantom_agent,
    }, signature)


def l1_signer_candidates(action: Any, nonce: int, vault_address: str | None, signature: Any,
                         expires_after: int | None = None) -> tuple[str, str]:
    """``(signer if signed as mainnet "a", signer if signed as testnet "b")``: the server
    accepts the request when either is an account or an agent approved for one."""
    mainnet = recover_l1_signer(action, nonce, vault_address, signature, is_mainnet=True,
                                expires_after=expires_after)
    testnet = recover_l1_signer(action, nonce, vault_address, signature, is_mainnet=False,
                                expires_after=expires_after)
    return mainnet, testnet


def _check_field(value: Any, kind: str, name: str) -> Any:
    # eth_account would raise a zoo of exception types for a value of the wrong shape; a
    # request's fields are client input, so check them here and name the field.
    if kind == "string" and isinstance(value, str):
        return value
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "uint64":
        return _u64(value, name)
    if kind == "address" and isinstance(value, str) and _ADDRESS.fullmatch(value) \
            and value.startswith("0x"):
        return value
    raise SignatureError(f"field {name} must be of EIP-712 type {kind}, got {value!r}")


def recover_user_signed(action: Mapping[str, Any], signature: Any,
                        payload_types: Sequence[Mapping[str, str]], primary_type: str) -> str:
    """The address (lower-case ``0x`` hex) that signed a user-signed action whose fields are
    ``payload_types`` (as the SDK's ``*_SIGN_TYPES``), with the chain id the action names in
    ``signatureChainId``."""
    chain = action.get("signatureChainId")
    if not isinstance(chain, str) or not re.fullmatch(r"0x[0-9a-fA-F]+", chain):
        raise SignatureError(f"signatureChainId must be a 0x hex string, got {chain!r}")
    message = {}
    for field in payload_types:
        name = field["name"]
        if name not in action:
            raise SignatureError(f"the {primary_type} action lacks its signed field {name}")
        message[name] = _check_field(action[name], field["type"], name)
    return _recover({
        "domain": {"name": "HyperliquidSignTransaction", "version": "1",
                   "chainId": int(chain, 16), "verifyingContract": ZERO_ADDRESS},
        "types": {primary_type: [dict(field) for field in payload_types],
                  "EIP712Domain": _EIP712_DOMAIN},
        "primaryType": primary_type,
        "message": message,
    }, signature)


def recover_user_action_signer(action: Mapping[str, Any], signature: Any) -> str:
    """The signer of a user-signed action, its EIP-712 type chosen by ``action["type"]``
    among :data:`USER_SIGNED_TYPES`."""
    kind = action.get("type")
    if kind not in USER_SIGNED_TYPES:
        raise SignatureError(f"{kind!r} is not a user-signed action this exchange verifies "
                             f"(known: {', '.join(sorted(USER_SIGNED_TYPES))})")
    primary_type, payload_types = USER_SIGNED_TYPES[kind]
    return recover_user_signed({**_SIGNED_DEFAULTS.get(kind, {}), **action}, signature,
                               payload_types, primary_type)
