"""``termwise serve -m MODEL_DIR``: the command that starts the server."""

from __future__ import annotations

import errno
import ipaddress
import socket
from pathlib import Path

import typer
from rich.console import Console

from termwise import cli_options as opts
from termwise.errors import TermwiseUserError


def _read_token(path: Path) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise TermwiseUserError(f"unreadable token file ({error})", path=path) from None
    if not token:
        raise TermwiseUserError("empty token file", path=path)
    return token


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the model loads: a busy port or an unknown host
    is one line at once, not after a minute of loading."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError) as error:
        raise TermwiseUserError(f"cannot resolve the host ({error})", field="--host") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as error:
        sock.close()
        reason = error.strerror or str(error)
        field = "--host" if error.errno == errno.EADDRNOTAVAIL else "--port"
        raise TermwiseUserError(
            f"cannot listen on {host}:{port} ({reason.lower()})", field=field
        ) from None
    sock.set_inheritable(True)
    return sock


def _address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(
    model: Path = opts.MODEL_DIR,
    host: str = typer.Option(
        "127.0.0.1", help="Address to bind (loopback by default; 0.0.0.0 exposes it)."
    ),
    port: int = typer.Option(8000, min=0, max=65535, help="Port (0: any free port)."),
    token_file: Path | None = typer.Option(
        None, "--token-file", help="File holding a bearer token every request must carry."
    ),
    head: str | None = typer.Option(
        None, "--head", help="btrm: the head /get_reward returns (a request may override)."
    ),
    max_texts: int = typer.Option(256, min=1, help="Texts (or pairs) per request, at most."),
    max_chars: int = typer.Option(20_000, min=1, help="Characters per text, at most."),
    max_body_bytes: int = typer.Option(4_000_000, min=1, help="Request body size, at most."),
    max_wait_ms: float = typer.Option(
        5.0, min=0.0, help="Dynamic batching: how long a batch waits for more requests."
    ),
    max_batch_items: int = typer.Option(64, min=1, help="Texts (or pairs) per forward pass."),
    no_batching: bool = typer.Option(
        False, "--no-batching", help="One request per forward pass (for comparison)."
    ),
) -> None:
    """Serve a btrm or pref model: POST /get_reward (OpenRLHF), /score, /prefer; GET
    /health; OpenAPI docs at /docs. Ctrl-C finishes the requests in flight, then stops."""
    import uvicorn

    from termwise.serve.app import ServeSettings, create_app, wrap
    from termwise.serve.served import load_served

    token = _read_token(token_file) if token_file is not None else None
    with bind(host, port) as sock:  # closed on every way out
        served = load_served(model)
        if head is not None and head not in served.heads:
            raise TermwiseUserError(
                f"--head {head!r}: the model's heads are {', '.join(served.heads)}", path=model
            )
        console = Console(stderr=True)
        if not _loopback(host) and token is None:
            console.print(
                f"warning: serving on {host} without --token-file: anyone who can reach this "
                "port can use the model",
                markup=False,
            )
        settings = ServeSettings(
            token=token,
            head=head,
            max_texts=max_texts,
            max_chars=max_chars,
            max_body_bytes=max_body_bytes,
            max_wait_ms=max_wait_ms,
            max_batch_items=max_batch_items,
            batching=not no_batching,
        )
        app = wrap(create_app(served, settings), settings)
        console.print(
            f"serving {served.type} model {model} (heads: {', '.join(served.heads)}) on "
            f"{_address(sock)} (docs: /docs)",
            markup=False,
        )
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=30)
        uvicorn.Server(config).run(sockets=[sock])
