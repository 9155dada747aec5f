"""tests/hub_server.FakeHub in its own process, driven by JSON lines on stdin (one answer line per command).

The benchmarks run the server out of process so that its threads do not compete with the
client for the GIL: in one process, wall times of many small Range requests are dominated by
that contention, which a real Hub does not cause.

Commands: {"cmd": "add", "repo": ..., "files": {path_in_repo: file path}, "lfs": {...}} -> {"sha": ...}
          {"cmd": "configure", "redirect_lfs": bool, "rate_limits": {"api": n, "resolvers": n, "window": s}} -> {}
          {"cmd": "reset"} -> {}
          {"cmd": "stats", "repo": ...} -> {"bytes_served", "requests": [[method, path, range], ...], "connections",
                                            "resolver_calls", "api_calls", "cdn_requests", "rate_limited"}
          {"cmd": "stop"} -> {} and exit
The first line printed is {"url": ...}.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib as bl

bl.hub_env()

from hub_server import FakeHub  # noqa: E402


def main() -> None:
    hub = FakeHub()
    hub.reject_invalid_tokens = False
    hub.start()
    out = sys.stdout

    def say(obj) -> None:
        out.write(json.dumps(obj) + "\n")
        out.flush()

    say({"url": hub.url})
    try:
        for line in sys.stdin:
            msg = json.loads(line)
            cmd = msg["cmd"]
            if cmd == "add":
                files = {k: Path(v) for k, v in msg["files"].items()}
                say({"sha": hub.add_repo(msg["repo"], files, lfs_sha256=msg.get("lfs") or None)})
            elif cmd == "configure":
                hub.redirect_lfs = bool(msg.get("redirect_lfs", hub.redirect_lfs))
                if msg.get("rate_limits"):
                    hub.enable_rate_limits(**msg["rate_limits"])
                say({})
            elif cmd == "reset":
                hub.reset_counters()
                say({})
            elif cmd == "stats":
                say(
                    {
                        "bytes_served": int(hub.bytes_served[msg["repo"]]),
                        "requests": [list(r) for r in hub.requests],
                        "connections": hub.connections_opened,
                        "resolver_calls": hub.resolver_calls,
                        "api_calls": hub.api_calls,
                        "cdn_requests": hub.cdn_requests,
                        "rate_limited": dict(hub.rate_limited),
                    }
                )
            elif cmd == "stop":
                say({})
                break
    finally:
        hub.stop()


if __name__ == "__main__":
    main()
