"""A websocket client on its own thread and event loop (aiohttp), for every venue's session.

aiohttp's frame reader is compiled and reads the socket in large chunks: about 1.5x the
messages per CPU-second of websocket-client (benchmarks/README.md). A venue's session
subclasses :class:`AiohttpTransport` and gives the URL (:attr:`ws_url`), what to send once
the socket is open (:meth:`_on_open`: its subscriptions), how a text frame is handled
(:meth:`_on_frame`, on the socket's thread, one frame at a time) and its keep-alive
(:attr:`ping_text` every :attr:`ping_seconds` seconds). A closed or failed socket ends the
thread; the supervisor (:mod:`asmm.venues.collector_common.supervisor`) sees
:meth:`alive` go False and builds a new session.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading

log = logging.getLogger(__name__)


class AiohttpTransport:
    """The thread, loop and socket of one connection; call :meth:`_init_transport` first."""

    ws_url: str
    ping_text: str = ""
    ping_seconds: float = 50.0  # seconds between keep-alive messages

    def _init_transport(self, ws_url: str, thread_name: str = "collector-ws") -> None:
        self.ws_url = ws_url
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ws = None
        self._task: asyncio.Task | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name=thread_name)

    # ----------------------------------------------------------------- venue hooks

    async def _on_open(self, ws) -> None:
        """Send what a new connection starts with (the subscriptions)."""

    # ``_on_frame(text)`` handles one text frame; the session defines it (not declared
    # here, so that a mixin order never hides the session's own).

    # ----------------------------------------------------------------- session interface

    def start(self) -> None:
        self._thread.start()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def _ready(self) -> bool:
        return self._ws is not None and not self._ws.closed

    def close(self) -> None:
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop finished meanwhile
                pass
        self._thread.join(timeout=3.0)

    def _send(self, payload: dict) -> None:
        """Send ``payload`` as JSON from any thread (waits up to 5 s for it to go out)."""
        if self._loop is None or self._ws is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self._ws.send_str(json.dumps(payload)),
                                               self._loop)
        try:
            fut.result(timeout=5.0)
        except Exception as e:  # the socket died meanwhile; the supervisor will notice
            log.info("send failed: %s", e)

    # ----------------------------------------------------------------- the socket's thread

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception as e:  # any socket error ends the session; the supervisor reconnects
            log.warning("websocket %s: %s", self.ws_url, e)

    async def _main(self) -> None:
        import aiohttp

        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        try:
            async with aiohttp.ClientSession() as http, http.ws_connect(
                    self.ws_url, max_msg_size=0, autoping=True) as ws:
                self._ws = ws
                await self._on_open(ws)
                pinger = asyncio.create_task(self._ping(ws))
                try:
                    async for frame in ws:
                        if frame.type == aiohttp.WSMsgType.TEXT:
                            self._on_frame(frame.data)
                        elif frame.type == aiohttp.WSMsgType.ERROR:
                            raise frame.data
                finally:
                    pinger.cancel()
                log.warning("websocket closed by the server (code %s)", ws.close_code)
        except asyncio.CancelledError:
            pass  # close() asked for it

    async def _ping(self, ws) -> None:
        while self.ping_text:
            await asyncio.sleep(self.ping_seconds)  # the protocol's keep-alive period
            await ws.send_str(self._ping_payload())

    def _ping_payload(self) -> str:
        return self.ping_text
