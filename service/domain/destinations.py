"""Where a webhook may send: https (http only when allowed), and never into the service's own networks.

The host is resolved and every address it resolves to is checked: loopback, private, link-local,
shared, reserved, unspecified and multicast addresses are refused unless a setting allows them
(multicast and unspecified never). The worker checks again before each attempt, so a name that
later resolves inward is caught then.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class DestinationRefused(ValueError):
    """The URL may not receive webhooks; the message says why."""


def check_destination(url: str, *, allow_http: bool, allow_private: bool) -> list[str]:
    """The addresses `url` resolves to, all allowed; raises DestinationRefused otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise DestinationRefused(f"not a valid URL: {exc}") from None
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes:
        raise DestinationRefused(f"the scheme must be {' or '.join(schemes)}, not {parts.scheme or 'none'!r}")
    if not parts.hostname:
        raise DestinationRefused("the URL has no host")
    if parts.username or parts.password:
        raise DestinationRefused("credentials in the URL are not allowed; authenticate with the signature")
    addresses = _resolve(parts.hostname, port or (443 if parts.scheme == "https" else 80))
    for address in addresses:
        problem = _problem(address, allow_private=allow_private)
        if problem:
            raise DestinationRefused(f"{parts.hostname} resolves to {address}, {problem}")
    return [str(a) for a in addresses]


def _resolve(host: str, port: int) -> list[Address]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DestinationRefused(f"cannot resolve {host}: {exc}") from None
    return sorted({ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos}, key=str)


def _problem(address: Address, *, allow_private: bool) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "an unspecified address"
    if allow_private:
        return None
    for flag, what in (("is_loopback", "a loopback address"), ("is_link_local", "a link-local address"),
                       ("is_private", "a private address"), ("is_reserved", "a reserved address")):
        if getattr(address, flag):
            return what
    if not address.is_global:
        return "not a public address"
    return None
