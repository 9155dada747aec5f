"""When a visitor's session ends, what it holds goes: its uploads are deleted, its running computations stopped.

Streamlit has no session-end hook. A session ends when its browser tab is gone and has not reconnected within
``server.disconnectedSessionTTL`` (after that Streamlit will not resume it). A janitor thread, one per server
process, looks every ``CHECK_SECONDS`` at the sessions that registered something to undo; one that has not been
connected for longer than the TTL is ended: its callbacks run once, and it is forgotten. Upload folders also
delete themselves when their session's state is garbage-collected, and a sweep removes any left after 24 h
(``dashboard.uploads.prune_stale_uploads``), for a server that was killed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("llm_fingerprint.dashboard")

CHECK_SECONDS = 2.0


def streamlit_session_is_connected(session_id: str) -> bool:
    from streamlit.runtime import Runtime

    return not Runtime.exists() or Runtime.instance().is_active_session(session_id)


@dataclass
class _Session:
    ttl: float
    undo: dict[str, Callable[[], object]] = field(default_factory=dict)
    gone_since: float | None = None


class SessionEnds:
    def __init__(
        self,
        is_connected: Callable[[str], bool] = streamlit_session_is_connected,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._is_connected = is_connected
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, _Session] = {}
        self._janitor: threading.Thread | None = None

    def on_end(self, session_id: str, name: str, undo: Callable[[], object], ttl: float) -> None:
        """Run ``undo()`` when the session ends; a later call with the same name replaces it."""
        if not session_id:
            return
        with self._lock:
            self._sessions.setdefault(session_id, _Session(ttl)).undo[name] = undo
            if self._janitor is None:
                self._janitor = threading.Thread(target=self._run, name="session-janitor", daemon=True)
                self._janitor.start()

    def sweep(self) -> list[str]:
        """End the sessions gone for longer than their TTL; returns their ids."""
        now = self._clock()
        ended: list[tuple[str, _Session]] = []
        with self._lock:
            for sid, s in list(self._sessions.items()):
                if self._is_connected(sid):
                    s.gone_since = None
                elif s.gone_since is None:
                    s.gone_since = now
                elif now - s.gone_since > s.ttl:
                    ended.append((sid, self._sessions.pop(sid)))
        for sid, s in ended:
            for name, undo in s.undo.items():
                try:
                    undo()
                except Exception:
                    log.exception("session end: %s of session %s failed", name, sid[:8])
        return [sid for sid, _ in ended]

    def _run(self) -> None:
        while True:
            time.sleep(CHECK_SECONDS)
            self.sweep()


SESSION_ENDS = SessionEnds()
