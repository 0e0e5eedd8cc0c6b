"""Several uvicorn workers, each with its own SO_REUSEPORT listening socket.

uvicorn's own multi-worker mode hands every worker the same listening socket; a keep-alive
connection then stays with whichever worker accepted it, and with a few long-lived client
connections one worker can end up serving most of them (bench/RESULTS.md, serve: 39 vs 17
CPU seconds). With one SO_REUSEPORT socket per worker the kernel spreads new connections over
the workers. Everything else (health checks, restarting a dead worker, signals) is uvicorn's
supervisor unchanged: it asks for ``sockets`` each time it starts a worker, and gets a new one.
A worker's socket is bound but not listening until that worker serves, which the app's lifespan
delays until the bundle is loaded (``app.py``): a starting or respawned worker gets no traffic.
"""

from __future__ import annotations

import logging
import socket

from uvicorn import Config
from uvicorn.supervisors import Multiprocess

logger = logging.getLogger(__name__)


def reuse_port_supported() -> bool:
    """Return whether this platform has SO_REUSEPORT (Linux, macOS and the BSDs do)."""
    return hasattr(socket, "SO_REUSEPORT")


def reuse_port_socket(host: str, port: int, *, backlog: int, listen: bool = True) -> socket.socket:
    """Return a TCP socket bound to ``host:port`` that other SO_REUSEPORT sockets share.

    ``listen=False`` leaves it bound only: the kernel sends it no connections until the worker
    starts serving (asyncio's ``create_server`` calls ``listen`` then, after the lifespan).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        if listen:
            sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class ReusePortMultiprocess(Multiprocess):
    """uvicorn's worker supervisor; every worker it starts listens on a socket of its own."""

    def __init__(self, config: Config) -> None:
        # one socket now, so that a port in use fails here, before any worker starts
        reuse_port_socket(config.host, config.port, backlog=config.backlog).close()
        super().__init__(config, sockets=[])
        logger.info("workers=%d listen on http://%s:%d", config.workers, config.host, config.port)

    @property
    def sockets(self) -> list[socket.socket]:
        """A new socket for the worker being started, listening once that worker is ready."""
        config = self.config
        return [reuse_port_socket(config.host, config.port, backlog=config.backlog, listen=False)]

    @sockets.setter
    def sockets(self, _value: list[socket.socket]) -> None:
        """Ignore the base class's assignment: sockets are made per worker."""
