"""Run an ASGI app on uvicorn (uvloop + httptools, no access log) on a port the OS chooses.

The socket is bound and listening before the port is announced, so a client that reads the
port file can connect at once (the backlog holds it until uvicorn accepts).
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import uvicorn

from benchmarks.portfile import write_ports


def serve_asgi(app: Any, port_file: Path) -> None:
    """Serve ``app`` on 127.0.0.1:<free port> until killed; write the port to ``port_file``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    write_ports(port_file, http=sock.getsockname()[1])
    config = uvicorn.Config(
        app, loop="uvloop", http="httptools", access_log=False, log_level="warning"
    )
    uvicorn.Server(config).run(sockets=[sock])
