"""The loopback guard: whether a host is this machine, judged by the addresses it resolves to
(127.0.0.0/8, ::1), never by its name. Used when a target is set (simulator.delivery), at each
connection (simulator.transports) and by code that opens its own sockets (load, locust)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable, Sequence
from typing import Any

from simulator.errors import WasimError, named

# socket.getaddrinfo's shape: (host, port, family, type) -> [(family, type, proto, name, addr)].
# Injected in tests, so `evil.localhost` can resolve to 203.0.113.5 without DNS or /etc/hosts;
# None everywhere means socket.getaddrinfo.
Resolver = Callable[..., Sequence[tuple[Any, ...]]]


def is_loopback_address(address: str) -> bool:
    """Whether an IP address is this machine: 127.0.0.0/8 or ::1 (also as ::ffff:127.x)."""
    try:
        ip = ipaddress.ip_address(address.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def resolve_host(host: str, port: int | None = None,
                 resolver: Resolver | None = None) -> tuple[str, ...]:
    """Every address `host` resolves to (an IP literal is itself); WasimError if none.

    Blocking (it is getaddrinfo): async code calls it through asyncio.to_thread.
    """
    name = host.strip("[]")
    literal = _ip_literal(name)
    if literal is not None:
        return (literal,)
    try:
        # socket.getaddrinfo looked up now, not bound at import: a test may patch it.
        infos = (resolver or socket.getaddrinfo)(name, port, 0, socket.SOCK_STREAM)
        addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    except (OSError, UnicodeError, ValueError, LookupError, TypeError):
        addresses = ()
    if not addresses:
        raise WasimError(f"cannot resolve the host {name!r}",
                         hint="Check the name; wasim decides what is this machine by the "
                              "addresses a name resolves to.")
    return addresses


def _ip_literal(host: str) -> str | None:
    """`host` as an IP address if it is one (no lookup needed), else None."""
    try:
        return str(ipaddress.ip_address(host.strip("[]").split("%", 1)[0]))
    except ValueError:
        return None


async def resolve_off_loop(host: str, port: int | None,
                            resolver: Resolver | None) -> tuple[str, ...]:
    """resolve_host without blocking the event loop (an IP literal needs no thread)."""
    literal = _ip_literal(host)
    if literal is not None:
        return (literal,)
    return await asyncio.to_thread(resolve_host, host, port, resolver)


def is_loopback(host: str, resolver: Resolver | None = None) -> bool:
    """Whether `host` is this machine: every address it resolves to is loopback.

    Judged by the addresses, not the name: `evil.localhost` may resolve anywhere.
    """
    try:
        return all(is_loopback_address(a) for a in resolve_host(host, None, resolver))
    except WasimError:
        return False


def refuse_remote(host: str, addresses: Sequence[str]) -> str | None:
    """Why `host` is not this machine (the first address that is not loopback), or None."""
    for address in addresses:
        if not is_loopback_address(address):
            shown = host if host.strip("[]") == address else f"{host} ({address})"
            return f"refusing to send callbacks to {shown}, which is not this machine"
    return None


REMOTE_HINT = ("wasim only fires at this machine (names that resolve to 127.0.0.0/8 or ::1) by "
               "default, so a typo or a shared file cannot reach a real endpoint; add "
               f"{named('allow_remote')} if you mean it.")


SCOPE_HINT = (f"{named('allow_remote')} covers only the hosts you name yourself "
              f"({named('url')}, {named('token_url')}, or the Python API's target()), never "
              "one a file names; name it there if you mean it.")


def host_key(host: str) -> str:
    """A host as the remote permission compares it: no brackets, lower case, no final dot."""
    return host.strip("[]").lower().rstrip(".")


def permitted(host: str, allow_remote: bool, hosts: frozenset[str] | None) -> bool:
    """Whether the person's permission covers `host` (else it must be this machine)."""
    return allow_remote and (hosts is None or host_key(host) in hosts)


async def checked_address(host: str, port: int | None, allow_remote: bool,
                          resolver: Resolver | None = None,
                          remote_hosts: frozenset[str] | None = None) -> str:
    """The address to connect to for `host`: itself if remote is allowed for it (any host, or
    one of `remote_hosts`), else the loopback address it resolves to now (resolved off the
    event loop); raises WasimError otherwise.

    For code that opens its own sockets: connecting to the returned address, not the name,
    leaves no gap between the check and the connection for a rebinding name to use.
    """
    if permitted(host, allow_remote, remote_hosts):
        return host
    addresses = await resolve_off_loop(host, port, resolver)
    refusal = refuse_remote(host, addresses)
    if refusal:
        raise WasimError(refusal, field="url", hint=REMOTE_HINT)
    return addresses[0]
