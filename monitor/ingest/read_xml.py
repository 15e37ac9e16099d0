"""The fast path: well-formed RSS 2.0/0.9x, RSS 1.0 (RDF) and Atom 1.0, read with lxml.

It handles only what it can read exactly as feedparser would and declines everything
else: a DTD, an encoding it cannot vouch for, an element that feedparser would map
onto a field the fast path does not read, a date outside RFC 822 or RFC 3339.
Documents with a DOCTYPE or ENTITY declaration never reach lxml, which is configured
not to resolve entities, load DTDs or touch the network in any case.
"""

from __future__ import annotations

import codecs
import html
import re
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import urljoin

from lxml import etree

from monitor.ingest import normalize, sniff
from monitor.ingest.entry import Entry, ParsedFeed
from monitor.ingest.urls import canonical_url

_ATOM = "http://www.w3.org/2005/Atom"
_RSS1 = "http://purl.org/rss/1.0/"
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_DC = "http://purl.org/dc/elements/1.1/"
_DCTERMS = "http://purl.org/dc/terms/"
_CONTENT = "http://purl.org/rss/1.0/modules/content/"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
_RDF_ABOUT = f"{{{_RDF}}}about"


class _Decline(Exception):
    """The fast path cannot vouch for this document; feedparser reads it."""


class _XMLParsers(threading.local):
    """One parser per thread: lxml serializes parses that share a parser."""

    def __init__(self) -> None:
        self.strict = etree.XMLParser(
            recover=False,
            resolve_entities=False,
            load_dtd=False,
            no_network=True,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
            collect_ids=False,
        )


_xml_parsers = _XMLParsers()
_UTF32_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)


def _fast_path_encoding_ok(body: bytes, content_type: str | None) -> bool:
    if body.startswith(_UTF32_BOMS) or body[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return False
    if b"\x00" in body[:64]:
        return False  # UTF-16/32 without a BOM
    declared = sniff.XML_DECLARATION.match(body.removeprefix(codecs.BOM_UTF8).lstrip()[:256])
    declared_codec = sniff.codec(declared.group(1).decode("ascii")) if declared else "utf-8"
    if declared_codec not in sniff.ASCII_SAFE_CODECS:
        return False
    charset = sniff.CHARSET.search(content_type or "")
    # feedparser lets the HTTP charset win over the document's declaration; the fast
    # path reads what the document declares, so it only goes where the two agree.
    return charset is None or sniff.codec(charset.group(1)) == declared_codec


def parse_fast(body: bytes, base_url: str, content_type: str | None) -> ParsedFeed | None:
    """Read a plain, well-formed RSS or Atom feed with lxml, or None to let feedparser read it."""
    try:
        return _parse_fast(body, base_url, content_type)
    except _Decline:
        return None


def _parse_fast(body: bytes, base_url: str, content_type: str | None) -> ParsedFeed:
    if sniff.DTD.search(body) or not _fast_path_encoding_ok(body, content_type):
        raise _Decline("DTD or encoding")
    try:
        root = etree.fromstring(body, _xml_parsers.strict)
    except etree.XMLSyntaxError:
        raise _Decline("not well-formed") from None
    bases = _XmlBase(base_url) if b"xml:base" in body else None
    read_entry: Callable[[etree._Element], Entry]
    if root.tag == "rss":
        items, title, feed_lang = _rss_shape(root)
        read_entry = partial(_rss_entry, ns="", base_url=base_url, bases=bases, feed_lang=feed_lang)
    elif root.tag == f"{{{_RDF}}}RDF":
        items, title, feed_lang = _rdf_shape(root)
        read_entry = partial(
            _rss_entry, ns=_RSS1, base_url=base_url, bases=bases, feed_lang=feed_lang
        )
    elif root.tag == f"{{{_ATOM}}}feed":
        items, title, feed_lang = _atom_shape(root)
        read_entry = partial(_atom_entry, base_url=base_url, bases=bases, feed_lang=feed_lang)
    else:
        raise _Decline(f"root element {root.tag!r}")
    return ParsedFeed(
        entries=[read_entry(item) for item in items],
        title=normalize.feed_title(title),
        lang=normalize.language(feed_lang),
        parser="lxml",
    )


_Shape = tuple[list[etree._Element], str | None, str | None]


def _rss_shape(root: etree._Element) -> _Shape:
    """RSS 0.9x/2.0: the items, title and language of its one channel."""
    channel = root.find("channel")
    if channel is None or len(root) != 1:
        raise _Decline("rss without exactly one channel")
    items = channel.findall("item")
    if sum(1 for _ in root.iter("item")) != len(items):
        raise _Decline("items outside the channel")
    lang = _child_text(channel, "language") or _child_text(channel, f"{{{_DC}}}language")
    lang = lang or root.get(_XML_LANG) or channel.get(_XML_LANG)
    return items, _child_text(channel, "title"), lang


def _rdf_shape(root: etree._Element) -> _Shape:
    """RSS 1.0: items are the RDF root's children, beside the channel."""
    channel = root.find(f"{{{_RSS1}}}channel")
    items = root.findall(f"{{{_RSS1}}}item")
    if channel is None or sum(1 for _ in root.iter(f"{{{_RSS1}}}item", "item")) != len(items):
        raise _Decline("RDF items in unexpected places")
    lang = _child_text(channel, f"{{{_DC}}}language") or root.get(_XML_LANG)
    return items, _child_text(channel, f"{{{_RSS1}}}title"), lang


def _atom_shape(root: etree._Element) -> _Shape:
    """Atom 1.0: the feed's entries, title and xml:lang."""
    items = root.findall(f"{{{_ATOM}}}entry")
    if sum(1 for _ in root.iter(f"{{{_ATOM}}}entry")) != len(items):
        raise _Decline("nested Atom entries")
    title_element = root.find(f"{{{_ATOM}}}title")
    title = _atom_text(title_element) if title_element is not None else None
    return items, title, root.get(_XML_LANG)


class _XmlBase:
    """Resolves xml:base the way feedparser does: each ancestor's, joined from the outside in."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def of(self, element: etree._Element, start: str | None = None) -> str:
        chain = [element, *element.iterancestors()]
        base = self.base_url if start is None else start
        for node in reversed(chain):
            value = node.get(_XML_BASE)
            if value is not None:
                base = urljoin(base, value.strip())
        return base


# Local names that feedparser maps onto a field we read (title, link, id, summary,
# content, dates, source, language) in some namespace. Met in a namespace the fast
# path does not read, or nested where it does not look, they send the feed to feedparser.
_SENSITIVE = frozenset(
    {
        "title", "link", "guid", "id", "description", "summary", "content", "encoded", "body",
        "fullitem", "abstract", "pubdate", "pubDate", "published", "issued", "updated",
        "modified", "date", "created", "source", "language", "item", "entry", "info",
        "tagline", "subtitle", "url", "uri", "homepage", "href",
    }
)  # fmt: skip


def _rss_fields(rss: str) -> dict[str, str]:
    """Element tag -> field, for items in the `rss` namespace ("" for RSS 0.9x/2.0)."""
    return {
        f"{rss}title": "title",
        f"{rss}link": "link",
        f"{rss}description": "description",
        f"{rss}guid": "guid",
        f"{rss}pubDate": "published",
        f"{rss}source": "source",
        f"{{{_DC}}}title": "title",
        f"{{{_DC}}}date": "updated",
        f"{{{_DC}}}language": "language",
        f"{{{_DC}}}description": "description",
        f"{{{_DCTERMS}}}issued": "published",
        f"{{{_DCTERMS}}}modified": "updated",
        f"{{{_CONTENT}}}encoded": "content",
    }


_RSS_FIELDS = _rss_fields("")
_RSS1_FIELDS = _rss_fields(f"{{{_RSS1}}}")


def _rss_entry(
    item: etree._Element,
    ns: str,
    base_url: str,
    bases: _XmlBase | None,
    feed_lang: str | None,
) -> Entry:
    fields: dict[str, etree._Element] = {}
    names = _RSS1_FIELDS if ns else _RSS_FIELDS
    for child in item:
        name = names.get(child.tag)
        if name is None:
            for media_field, element in _check_ignorable(child):
                fields.setdefault(media_field, element)
                if media_field == "media-description" and "description" not in fields:
                    fields.setdefault("media-description-first", element)
            continue
        if name in fields:
            raise _Decline(f"two {name} elements in one item")
        if len(child):
            raise _Decline(f"markup inside {child.tag}")
        fields[name] = child
    _check_media_texts(fields, own_title="title", own_summary="description")
    guid_element = fields.get("guid")
    guid = guid_element.text if guid_element is not None else None
    if guid is None and ns:
        guid = item.get(_RDF_ABOUT)
    link = _double_escaped_link(_text(fields.get("link")))
    if guid_element is not None and guid_element.get("isPermaLink", "true") == "true":
        if bases is not None:
            _check_guid_unchanged_by_base(guid, bases, guid_element)
        if "link" not in fields:
            link = guid  # feedparser: a permalink GUID doubles as the link
    source = fields.get("source")
    base = bases.of(fields["link"]) if bases and "link" in fields else base_url
    return _entry_checked(
        guid=guid,
        link=link,
        title=_text(fields.get("title")) or "",
        summary=_text(fields.get("description"))
        or _text(fields.get("media-description"))
        or _text(fields.get("content"))
        or "",
        published=_field_date(fields, "published") or _field_date(fields, "updated"),
        base_url=base,
        outlet=_text(source),
        lang=item.get(_XML_LANG) or _text(fields.get("language")) or feed_lang,
    )


def _atom_entry(
    entry: etree._Element, base_url: str, bases: _XmlBase | None, feed_lang: str | None
) -> Entry:
    fields, link_element = _atom_fields(entry)
    id_element = fields.get("id")
    guid = _text(id_element)
    if bases is not None and id_element is not None:
        _check_guid_unchanged_by_base(guid, bases, id_element)
    link = link_element.get("href") if link_element is not None else None
    if link is None:
        link = guid  # feedparser: the id doubles as the link when no alternate link exists
    elif bases is not None and link_element is not None:
        base_url = bases.of(link_element)
    source_title = fields["source"].find(f"{{{_ATOM}}}title") if "source" in fields else None
    return _entry_checked(
        guid=guid,
        link=link,
        title=_atom_field(fields, "title"),
        summary=_atom_field(fields, "summary")
        or _text(fields.get("media-description"))
        or _atom_field(fields, "content"),
        published=_field_date(fields, "published") or _field_date(fields, "updated"),
        base_url=base_url,
        outlet=_atom_text(source_title) if source_title is not None else None,
        lang=entry.get(_XML_LANG) or _text(fields.get("language")) or feed_lang,
    )


_ATOM_FIELDS = {
    f"{{{_ATOM}}}{name}": name
    for name in ("id", "title", "summary", "content", "published", "updated", "source")
} | {f"{{{_DC}}}language": "language"}
# Containers whose inner title/uri/id feedparser files under the author, not the entry.
_ATOM_PEOPLE = frozenset({f"{{{_ATOM}}}author", f"{{{_ATOM}}}contributor"})


def _atom_fields(
    entry: etree._Element,
) -> tuple[dict[str, etree._Element], etree._Element | None]:
    """The entry's elements by field name, and its last alternate HTML link (feedparser's pick)."""
    fields: dict[str, etree._Element] = {}
    link_element = None
    for child in entry:
        name = _ATOM_FIELDS.get(child.tag)
        if name is not None:
            if name in fields:
                raise _Decline(f"two {name} elements in one entry")
            if name in ("id", "published", "updated") and len(child):
                raise _Decline(f"markup inside {name}")
            fields[name] = child
        elif child.tag == f"{{{_ATOM}}}link":
            if child.get("href") is None:
                raise _Decline("Atom link without href")
            rel = child.get("rel", "alternate")
            if rel == "alternate" and _content_type(child.get("type", "html")) in _HTML_TYPES:
                link_element = child
        elif child.tag not in _ATOM_PEOPLE:
            for media_field, element in _check_ignorable(child):
                fields.setdefault(media_field, element)
                if media_field == "media-description" and "summary" not in fields:
                    fields.setdefault("media-description-first", element)
    _check_media_texts(fields, own_title="title", own_summary="summary")
    return fields, link_element


def _atom_field(fields: Mapping[str, etree._Element], name: str) -> str:
    element = fields.get(name)
    return (_atom_text(element) if element is not None else None) or ""


_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})


def _content_type(value: str) -> str:
    value = value.lower()
    return {"text": "text/plain", "html": "text/html", "xhtml": "application/xhtml+xml"}.get(
        value, value
    )


def _atom_text(element: etree._Element) -> str | None:
    """An Atom text construct as HTML (type html or xhtml) or text (type text)."""
    kind = _content_type(element.get("type", "text"))
    if kind == "application/xhtml+xml":
        inner = element[0] if len(element) == 1 and element.text is None else element
        return html.escape(inner.text or "", quote=False) + "".join(
            etree.tostring(child, encoding="unicode", with_tail=True) for child in inner
        )
    if len(element):
        raise _Decline("markup inside a text construct that is not xhtml")
    if kind not in ("text/plain", "text/html"):
        raise _Decline(f"content of type {kind}")
    return element.text


def _check_guid_unchanged_by_base(
    guid: str | None, bases: _XmlBase, element: etree._Element
) -> None:
    """Decline when feedparser would resolve this GUID against an xml:base."""
    if not guid:
        return
    try:
        unchanged = urljoin(bases.of(element, ""), guid) == guid
    except ValueError:
        unchanged = False
    if not unchanged:
        raise _Decline("a GUID that xml:base would rewrite")


_MEDIA = "{http://search.yahoo.com/mrss/}"
_MEDIA_TEXTS = {f"{_MEDIA}title": "media-title", f"{_MEDIA}description": "media-description"}


def _check_ignorable(element: etree._Element) -> list[tuple[str, etree._Element]]:
    """Decline when an element we skip may carry a field feedparser would read.

    Media RSS is common and mostly harmless: feedparser reads only media:title and
    media:description into entry fields. Nested in media:group or media:content they
    are returned, for `_check_media_texts` to weigh against the item's own fields.
    """
    media_texts = []
    for node in element.iter() if len(element) else (element,):
        tag = node.tag
        if not isinstance(tag, str):
            continue
        if tag.startswith(_MEDIA):
            if tag in _MEDIA_TEXTS:
                if node is element or len(node):
                    raise _Decline(f"{tag} directly in an item, or with markup")
                media_texts.append((_MEDIA_TEXTS[tag], node))
        elif tag.rpartition("}")[2] in _SENSITIVE:
            raise _Decline(f"unread element {tag}")
    return media_texts


def _check_media_texts(
    fields: Mapping[str, etree._Element], own_title: str, own_summary: str
) -> None:
    """Decline where a nested media:title or media:description would change what feedparser reads.

    The entry's own non-empty title always wins over a deeper media:title. A
    media:description is the summary when the entry has neither summary nor content;
    met before the entry's own summary, it turns that into content in feedparser.
    """
    if "media-title" in fields and not (_text(fields.get(own_title)) or "").strip():
        raise _Decline("media:title would be the title")
    if "media-description" in fields:
        if "media-description-first" in fields and own_summary in fields:
            raise _Decline("media:description before the entry's own summary")
        if own_summary not in fields and "content" in fields:
            raise _Decline("media:description and content compete for the summary")


def _double_escaped_link(link: str | None) -> str | None:
    """Undo "&amp;" and "&name;" left in a link by double escaping, as feedparser does."""
    if link is None or "&" not in link:
        return link
    return _ENTITY_IN_LINK.sub(r"&\g<1>", link.replace("&amp;", "&"))


_ENTITY_IN_LINK = re.compile("&([A-Za-z0-9_]+);")


def _entry_checked(*, guid: str | None, link: str | None, **fields: Any) -> Entry:
    if guid is not None and not guid.strip():
        raise _Decline("empty GUID")
    if not guid and link and link.strip() and canonical_url(link, fields["base_url"]) is None:
        raise _Decline("identity would rest on a link feedparser may rewrite")
    return normalize.entry(guid=guid, link=link, **fields)


def _text(element: etree._Element | None) -> str | None:
    return element.text if element is not None else None


def _child_text(parent: etree._Element, tag: str) -> str | None:
    child = parent.find(tag)
    return child.text if child is not None else None


def _field_date(fields: Mapping[str, etree._Element], name: str) -> datetime | None:
    element = fields.get(name)
    if element is None:
        return None
    value = (element.text or "").strip()
    parsed = normalize.rfc822(value) or normalize.rfc3339(value)
    if parsed is None:
        raise _Decline(f"date {value!r} outside RFC 822 and RFC 3339")
    return parsed
