"""Where webhooks may go: no loopback, link-local, private or cloud-metadata address.

A webhook URL is the admin's to set, but whoever sets it (or a DNS record it names)
must not turn the router into a way into the private network (SSRF). With the check on
(``BATON_ENV=production``, or ``BATON_ROUTER_WEBHOOK_CHECK``), a URL is refused when its
host resolves to any address that is not public — at registration (the API answers 422
naming the field) and again at every delivery, because DNS can change: the delivery
session's :class:`CheckedResolver` resolves, checks every address, and hands aiohttp
only checked addresses to connect to; an IP-literal host is checked by
:meth:`TargetPolicy.refusal_for_url`. ``BATON_ROUTER_WEBHOOK_ALLOW`` lists the CIDRs and
host names of on-premise receivers that may be private.

:func:`post` is the one way the dispatcher sends: redirects are not followed and at most
:data:`RESPONSE_CAP_BYTES` of an answer is read.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: How much of a receiver's answer is read (the rest is dropped with the connection).
RESPONSE_CAP_BYTES = 64 * 1024
#: Cloud instance-metadata endpoints (AWS, GCP, Azure: 169.254.169.254; AWS over IPv6;
#: Alibaba; Oracle), named as such in refusals.
METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnsafeTarget(OSError):
    """A webhook target that resolves to an address it may not reach (an ``OSError``, so
    aiohttp reports it as a connection error with this message)."""


def address_refusal(address: IPAddress) -> str | None:
    """Why ``address`` may not be a webhook target, or None for a public address. IPv6
    forms that carry an IPv4 address (mapped, 6to4, NAT64) are judged by that address."""
    if address in METADATA:
        return "a cloud metadata address"
    if isinstance(address, ipaddress.IPv6Address):
        inner = address.ipv4_mapped or address.sixtofour
        if inner is None and address in NAT64:
            inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if inner is not None:
            return address_refusal(inner)
    for refused, why in (
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_unspecified, "the unspecified address"),
        (address.is_multicast, "a multicast address"),
        (address.is_private, "a private address"),
        (not address.is_global, "not a public address"),
    ):
        if refused:
            return why
    return None


def parse_allow(entries: Iterable[str]) -> tuple[tuple[IPNetwork, ...], frozenset[str]]:
    """``BATON_ROUTER_WEBHOOK_ALLOW``'s entries as networks (CIDRs or addresses) and host
    names (lower case)."""
    networks: list[IPNetwork] = []
    hosts: set[str] = set()
    for entry in (e.strip() for e in entries):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            if "/" in entry or ":" in entry:
                raise ValueError(f"not a CIDR, address or host name: {entry!r}") from None
            hosts.add(entry.lower().rstrip("."))
    return tuple(networks), frozenset(hosts)


@dataclass(frozen=True)
class TargetPolicy:
    """Whether targets are checked, and what the allowlist lets through anyway. Pure."""

    enforce: bool = False
    allow_networks: tuple[IPNetwork, ...] = ()
    allow_hosts: frozenset[str] = field(default_factory=frozenset)

    def refusal(self, host: str, addresses: Iterable[str]) -> str | None:
        """Why ``host``, resolving to ``addresses``, may not be a target (None: it may)."""
        name = host.lower().rstrip(".").strip("[]")
        if not self.enforce or name in self.allow_hosts:
            return None
        for text in addresses:
            address = ipaddress.ip_address(text.split("%")[0])
            why = address_refusal(address)
            if why is not None and not any(address in n for n in self.allow_networks):
                shown = host if name == str(address) else f"{host} resolves to {address},"
                return f"webhook target refused: {shown} {why}"
        return None

    def refusal_for_url(self, url: str) -> str | None:
        """The refusal of a URL whose host is an IP literal (None for a host name: the
        resolver checks those)."""
        host = urlsplit(url).hostname or ""
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return None
        return self.refusal(host, [host])


class CheckedResolver(AbstractResolver):
    """aiohttp's resolver, refusing a host any of whose addresses the policy refuses:
    the addresses it returns are the ones checked, and the only ones aiohttp connects to."""

    def __init__(self, policy: TargetPolicy, inner: AbstractResolver | None = None):
        self.policy = policy
        self.inner = inner  # made on first use: aiohttp's binds to the running loop

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self.inner is None:
            self.inner = ThreadedResolver()
        results = await self.inner.resolve(host, port, family)
        why = self.policy.refusal(host, [r["host"] for r in results])
        if why is not None:
            raise UnsafeTarget(why)
        return results

    async def close(self) -> None:
        if self.inner is not None:
            await self.inner.close()

    async def refusal_for_url(self, url: str) -> str | None:
        """At registration: the URL's refusal, resolving a host name (one that does not
        resolve now passes: every delivery checks it again)."""
        literal = self.policy.refusal_for_url(url)
        host = urlsplit(url).hostname
        if literal is not None or not self.policy.enforce or not host:
            return literal
        try:
            await self.resolve(host, urlsplit(url).port or 0, socket.AF_UNSPEC)
        except UnsafeTarget as refused:
            return str(refused)
        except OSError:
            return None
        return None


def refusal_in(exc: BaseException) -> str | None:
    """The refusal an exception carries: an :class:`UnsafeTarget` raised directly, or by
    the resolver (aiohttp wraps it in a connection error)."""
    cause = getattr(exc, "os_error", exc)
    return str(cause) if isinstance(cause, UnsafeTarget) else None


@dataclass(frozen=True)
class Answer:
    """A receiver's answer: status, headers and at most the first bytes of the body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


async def post(
    http: aiohttp.ClientSession,
    policy: TargetPolicy,
    url: str,
    body: bytes,
    headers: dict[str, str],
) -> Answer:
    """POST without following redirects, reading at most ``RESPONSE_CAP_BYTES``;
    :class:`UnsafeTarget` for an IP-literal URL the policy refuses."""
    why = policy.refusal_for_url(url)
    if why is not None:
        raise UnsafeTarget(why)
    async with http.post(url, data=body, headers=headers, allow_redirects=False) as response:
        head: Any = response.headers
        return Answer(response.status, head, await response.content.read(RESPONSE_CAP_BYTES))
