"""Serve an app with uvicorn on a socket whose connections give up on vanished clients."""

import sys

import uvicorn

from litestar_sse import listening_socket


def main(app: str = "app:app", host: str = "0.0.0.0", port: int = 8000) -> None:
    # Every connection accepted on it inherits TCP_USER_TIMEOUT: data unacknowledged for
    # 30 s (a ping to a client whose network is gone) and the kernel closes the connection.
    sock = listening_socket(host, port, user_timeout=30)
    config = uvicorn.Config(app, timeout_graceful_shutdown=7)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main(*sys.argv[1:2])  # python serve.py app:app
