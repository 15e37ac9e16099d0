"""Feed lists in OPML: read with listparser, written as OPML 2.0 with xml.etree.

listparser reads through a forgiving HTML parser and calls nothing invalid, so a file is
first checked to be well-formed XML with an `<opml>` root: a truncated or mistyped file
is refused, not half-imported.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

import listparser
from lxml import etree

from monitor.core.errors import MonitorError


class OpmlError(MonitorError):
    """The file is not an OPML feed list."""


@dataclass(frozen=True, slots=True)
class Subscription:
    """One outline with an `xmlUrl`: a feed's address and the name it was listed under."""

    url: str
    title: str


def read_opml(data: bytes) -> list[Subscription]:
    """The feeds an OPML document lists, in its order (nested outlines included)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise OpmlError(f"not a valid OPML file: {exc}") from None
    if root is None or etree.QName(root).localname != "opml":
        raise OpmlError("not an OPML file: its root element is not <opml>")
    dtd = root.getroottree().docinfo.internalDTD
    # lxml-stubs lacks DTD.iterentities (lxml has it since 2.3).
    if dtd is not None and any(True for _ in dtd.iterentities()):  # type: ignore[union-attr]
        # listparser's reader would expand them (a few lines can expand to gigabytes).
        raise OpmlError("not read: an OPML file that declares entities (<!ENTITY ...>)")
    result = listparser.parse(data)
    return [
        Subscription(url=str(feed.url).strip(), title=" ".join(str(feed.title or "").split()))
        for feed in result.feeds
        if str(feed.url or "").strip()
    ]


def write_opml(subscriptions: Iterable[Subscription], title: str, created: datetime) -> str:
    """An OPML 2.0 document listing `subscriptions` as RSS outlines."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    ET.SubElement(head, "dateCreated").text = format_datetime(created)
    body = ET.SubElement(root, "body")
    for subscription in subscriptions:
        ET.SubElement(
            body,
            "outline",
            type="rss",
            text=subscription.title,
            title=subscription.title,
            xmlUrl=subscription.url,
        )
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
