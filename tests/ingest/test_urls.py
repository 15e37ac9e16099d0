"""Canonical URLs: identity level 2, one spelling per article."""

from __future__ import annotations

import pytest
from w3lib.url import safe_url_string

from monitor.ingest import urls
from monitor.ingest.urls import canonical_url

BASE = "https://news.example.com/feeds/rss.xml"

CASES = [
    pytest.param("https://news.example.com/a/b", None, "https://news.example.com/a/b", id="as-is"),
    pytest.param("HTTPS://News.Example.COM/Path", None, "https://news.example.com/Path", id="case"),
    pytest.param("http://example.com:80/x", None, "http://example.com/x", id="default-http-port"),
    pytest.param("https://example.com:443/x", None, "https://example.com/x", id="default-https"),
    pytest.param("https://example.com:8443/x", None, "https://example.com:8443/x", id="other-port"),
    pytest.param("https://example.com/a#comments", None, "https://example.com/a", id="fragment"),
    pytest.param("https://example.com/a/", None, "https://example.com/a", id="trailing-slash"),
    pytest.param("https://example.com", None, "https://example.com/", id="root-gets-slash"),
    pytest.param("https://example.com/?", None, "https://example.com/", id="empty-query"),
    pytest.param("https://example.com./a", None, "https://example.com/a", id="trailing-dot-host"),
    pytest.param(
        "https://example.com/a?utm_source=rss&id=7&UTM_Medium=x&utm_campaign=c",
        None,
        "https://example.com/a?id=7",
        id="utm-parameters",
    ),
    pytest.param(
        "https://example.com/a?fbclid=1&b=2&gclid=3&yclid=4&mc_cid=5&mc_eid=6&a=1",
        None,
        "https://example.com/a?b=2&a=1",
        id="click-ids-and-order-kept",
    ),
    pytest.param("/news/1", BASE, "https://news.example.com/news/1", id="absolute-path"),
    pytest.param("1.html", BASE, "https://news.example.com/feeds/1.html", id="relative-path"),
    pytest.param("../up", BASE, "https://news.example.com/up", id="dot-segments"),
    pytest.param("//cdn.example.org/x", BASE, "https://cdn.example.org/x", id="scheme-relative"),
    pytest.param("?p=5", BASE, "https://news.example.com/feeds/rss.xml?p=5", id="query-only"),
    pytest.param("https://other.example/x", BASE, "https://other.example/x", id="absolute-wins"),
    pytest.param(" https://example.com/x \n", None, "https://example.com/x", id="whitespace"),
    pytest.param(
        "https://пример.рф/новости?q=курск",
        None,
        "https://xn--e1afmkfd.xn--p1ai/%D0%BD%D0%BE%D0%B2%D0%BE%D1%81%D1%82%D0%B8"
        "?q=%D0%BA%D1%83%D1%80%D1%81%D0%BA",
        id="idn-and-utf8-path",
    ),
    pytest.param("https://example.com/a b", None, "https://example.com/a%20b", id="space-quoted"),
    pytest.param("http://[::1]:8080/x/", None, "http://[::1]:8080/x", id="ipv6"),
    pytest.param("https://u:p@Example.com/x", None, "https://u:p@example.com/x", id="userinfo"),
]


@pytest.mark.parametrize(("url", "base", "expected"), CASES)
def test_canonical_url(url: str, base: str | None, expected: str) -> None:
    """Spellings of one article's address reduce to one canonical URL."""
    assert canonical_url(url, base) == expected


REFUSED = [
    pytest.param(None, id="none"),
    pytest.param("", id="empty"),
    pytest.param("   ", id="blank"),
    pytest.param("javascript:alert(1)", id="javascript"),
    pytest.param("JavaScript:alert(1)", id="javascript-mixed-case"),
    pytest.param("mailto:editor@example.com", id="mailto"),
    pytest.param("data:text/html,<script>x</script>", id="data"),
    pytest.param("urn:uuid:60a76c80-d399-11d9-b93c-0003939e0af6", id="urn"),
    pytest.param("ftp://example.com/file", id="ftp"),
    pytest.param("http://[::1/x", id="broken-ipv6"),
    pytest.param("http://example.com:99999/", id="port-out-of-range"),
    pytest.param("http:///path-only", id="no-host"),
    pytest.param("http://exa mple.com/", id="space-in-host"),
    pytest.param("http://\x00/", id="control-character-host"),
]


@pytest.mark.parametrize("url", REFUSED)
def test_unusable_urls_are_none(url: str | None) -> None:
    """Missing, non-web and unreadable URLs have no canonical form."""
    assert canonical_url(url, BASE) is None


def test_relative_url_without_base_is_none() -> None:
    """A relative link with nothing to resolve it against has no canonical form."""
    assert canonical_url("news/1", None) is None


PLAIN = [
    "https://news.example.com/2026/11/20/kursk-memorial/?id=7&page=2",
    "http://example.com/a;b/c,d/(e)*f'!$~_.-+=@:",
    "https://example.com/a?x=1&y=&z",
]


@pytest.mark.parametrize("url", PLAIN)
def test_plain_urls_skip_w3lib_because_it_would_not_change_them(url: str) -> None:
    """The shortcut past safe_url_string only takes URLs it would return unchanged."""
    assert urls._PLAIN.fullmatch(url)
    assert safe_url_string(url) == url
