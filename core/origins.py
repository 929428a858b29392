"""Which browser origins may open the app's websocket, decided from the request alone.

A page on any site can make a visitor's browser open a websocket to the app; the browser then sends
that site's address in the ``Origin`` header. The app accepts the connection only from its own
pages: the same origin as the request's ``Host``, a local address (``localhost``, ``127.0.0.1``,
``0.0.0.0``), or the public host name the app is served under (Streamlit's
``browser.serverAddress``, set with ``STREAMLIT_BROWSER_SERVER_ADDRESS``). Everything else is
refused before Streamlit sees the request: Streamlit's own check, for an origin that matches none
of these, looks up the machine's external IP address (an HTTP request to checkip.amazonaws.com),
and the app makes no network calls but to its configured services. No lookup is made here.

Hosts are compared as Streamlit compares them (the host name of the URL, lower-cased; an origin
without a scheme, such as ``null``, is read as ``http://null``), so whatever passes here Streamlit
also accepts without a lookup.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

__all__ = ["LOCAL_HOSTNAMES", "hostname_of", "websocket_origin_allowed"]

LOCAL_HOSTNAMES: Final = frozenset({"localhost", "127.0.0.1", "0.0.0.0"})  # noqa: S104 - names, not a bind


def hostname_of(url: str) -> str | None:
    """The lower-cased host name of ``url``, with or without a scheme; None when it has none."""
    try:
        return urlsplit(url if "://" in url else f"http://{url}").hostname
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return None


def websocket_origin_allowed(origin: str | None, host: str | None, public_address: str) -> bool:
    """True when a websocket handshake with this ``Origin`` / ``Host`` comes from the app's own pages.

    ``origin`` None (no header) is allowed: browsers always send one, so only non-browser clients
    omit it, and they cannot act with a visitor's cookies. ``public_address`` is the configured
    public host name (or URL) of the app.
    """
    if origin is None:
        return True
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:
        return False
    if host is not None and netloc == host:
        return True
    hostname = hostname_of(origin)
    if hostname is None:
        return False
    return hostname in LOCAL_HOSTNAMES or hostname == hostname_of(public_address)
