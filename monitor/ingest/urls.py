"""Canonical article URLs: one spelling per article, whichever feed linked to it.

This is identity level 2 (the same article in several feeds) of README.md, "How it
works". The canonical form has a lower-case scheme and host (IDNA for non-ASCII
hosts), no default port, no fragment, no tracking parameters, and no trailing slash
except on the root path.

The remaining query parameters keep their order. Sorting them would merge a few
more spellings, but parameter order is the site's business: signed links and
some CMS routers break when it changes, and two feeds of one site write a link
the same way anyway.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit, urlunsplit

from w3lib.url import safe_url_string

# Nothing for safe_url_string to quote or encode: skipping it halves the cost for most links.
_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[A-Za-z0-9._~:/?&=;,+!$'()*@-]*")
# What can be left of a host after IDNA: letters, digits, dots, dashes, IPv6 colons.
_HOST = re.compile(r"[A-Za-z0-9_.:-]+")
_SCHEMES = frozenset({"http", "https"})
_DEFAULT_PORTS = {"http": 80, "https": 443}

# Parameters that say who clicked where, never which article.
TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "yclid", "msclkid",
        "twclid", "ttclid", "igshid", "li_fat_id", "mc_cid", "mc_eid", "mkt_tok", "_ga",
        "_gl", "_hsenc", "_hsmi", "__hstc", "__hssc", "__hsfp", "hsctatracking",
        "oly_anon_id", "oly_enc_id", "rb_clickid", "s_cid", "vero_conv", "vero_id",
        "wickedid", "at_medium", "at_campaign", "ito", "ocid", "ncid", "cmpid",
        "sr_share", "spm",
    }
)  # fmt: skip
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hmb_")


def canonical_url(url: str | None, base: str | None = None) -> str | None:
    """The canonical form of `url`, resolved against `base` if relative.

    Returns None for a missing or empty URL and for any scheme other than
    http(s) (`javascript:`, `mailto:`, `data:`, `urn:`), and for URLs too broken
    to read (an unterminated IPv6 host, a port that is not a number).
    """
    if not url or not (url := url.strip()):
        return None
    if base and not url[:8].lower().startswith(("http://", "https://")):
        url = urljoin(base.strip(), url)
    try:
        parts = urlsplit(url if _PLAIN.fullmatch(url) else safe_url_string(url))
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if scheme not in _SCHEMES or not _HOST.fullmatch(host):
        return None
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    if "@" in parts.netloc:
        netloc = f"{parts.netloc.rpartition('@')[0]}@{netloc}"
    path = parts.path.rstrip("/") or "/"
    return urlunsplit((scheme, netloc, path, _without_trackers(parts.query), ""))


def _without_trackers(query: str) -> str:
    if not query:
        return ""
    kept = [
        pair
        for pair in query.split("&")
        if pair and not _is_tracker(pair.partition("=")[0].lower())
    ]
    return "&".join(kept)


def _is_tracker(name: str) -> bool:
    return name in TRACKING_PARAMS or name.startswith(TRACKING_PREFIXES)
