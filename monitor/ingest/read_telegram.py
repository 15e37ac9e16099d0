"""A public Telegram channel's web preview (`https://t.me/s/CHANNEL`) as entries.

The preview is HTML anyone can read without logging in. Each post is a
`div.tgme_widget_message` whose `data-post` is `channel/ID`; its text (or a media
post's caption) is in `.tgme_widget_message_text`, its time in
`a.tgme_widget_message_date time[datetime]`, a forward's origin in
`.tgme_widget_message_forwarded_from_name`. The page shows the latest posts, oldest
first; older ones are on `?before=ID` pages, which read the same.

Each post becomes one entry: its permalink `https://t.me/CHANNEL/ID` is its id and
link (whichever address the page was read from), its first line the title, its whole
text the summary, followed by the links it carries; a forwarded post names its origin
as the entry's outlet. Only the text is read, never the view counter or the "edited"
mark, so a post is a new version exactly when its text changes.
"""

from __future__ import annotations

import re
from datetime import datetime

from lxml import etree

from monitor.core.errors import NotAFeed
from monitor.ingest import normalize
from monitor.ingest.entry import Entry, ParsedFeed
from monitor.ingest.html import html_document, html_to_text, inner_html, matches, selector
from monitor.ingest.urls import canonical_url

MAX_POSTS = 500
"""Posts read from one page, the newest: a preview shows about twenty; more is no preview."""
MAX_LINKS = 10
"""Links kept from one post's text (a post of a hundred links is a link list, not news)."""
HEADLINE_CHARS = 200

_POSTS = selector("div.tgme_widget_message[data-post]")
_CHANNEL_PAGE = selector(".tgme_channel_history, .tgme_channel_info, .tgme_widget_message_wrap")
_CHANNEL_TITLE = selector(".tgme_channel_info_header_title")
_TEXT = selector(".tgme_widget_message_text")
_TIME = selector("a.tgme_widget_message_date time[datetime]")
_ANY_TIME = selector("time[datetime]")
_FORWARDED = selector(".tgme_widget_message_forwarded_from_name")
_PREVIEW = selector("a.tgme_widget_message_link_preview[href]")
_LINKS = selector("a[href]")
_MEDIA = (
    ("poll", selector(".tgme_widget_message_poll_question")),
    ("video", selector(".tgme_widget_message_video_player")),
    ("photo", selector(".tgme_widget_message_photo_wrap")),
    ("document", selector(".tgme_widget_message_document")),
)
_SERVICE = selector(".service_message")
_DATA_POST = re.compile(r"([A-Za-z0-9_]{1,64})/([0-9]{1,20})")
_LINE_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


def parse_telegram(body: bytes, base_url: str, content_type: str | None) -> ParsedFeed:
    """The posts on a channel preview page, newest first.

    Raises NotAFeed when the page is no channel preview at all (a login wall, an error
    page, a page whose markup lost every post and the channel's frame). A channel with
    no posts yet is an empty feed.
    """
    root = html_document(body, content_type)
    posts = matches(_POSTS, root)
    if not posts and not matches(_CHANNEL_PAGE, root):
        raise NotAFeed("not a Telegram channel preview (no posts, no channel frame)")
    for post in posts:
        _detach_if_nested(post)
    entries: list[Entry] = []
    seen: set[str] = set()
    for post in reversed(posts[-MAX_POSTS:]):
        entry = _post(post, base_url)
        if entry is not None and entry.key not in seen:
            seen.add(entry.key)
            entries.append(entry)
    titles = matches(_CHANNEL_TITLE, root)
    title = html_to_text(inner_html(titles[0])) if titles else None
    return ParsedFeed(entries=entries, title=normalize.feed_title(title), parser="telegram")


def _post(post: etree._Element, base_url: str) -> Entry | None:
    """One post as an entry; None for a service message or a post with no permalink."""
    found = _DATA_POST.fullmatch(post.get("data-post", "").strip())
    if found is None or matches(_SERVICE, post):
        return None
    permalink = f"https://t.me/{found[1]}/{found[2]}"
    texts = [t for t in matches(_TEXT, post) if not _in_reply(t, post)]
    html = " ".join(inner_html(t) for t in texts)
    forwarded = matches(_FORWARDED, post)
    origin = html_to_text(inner_html(forwarded[0])) if forwarded else None
    links = _links(texts, post, base_url)
    summary = html
    if origin:
        summary = f"Forwarded from {origin}: {summary}"
    if links:
        summary = f"{summary} <p>Links: {' '.join(links)}</p>"
    return normalize.entry(
        guid=permalink,
        link=permalink,
        title=_headline(html) or _media_kind(post),
        summary=summary,
        published=_time(post),
        base_url=base_url,
        outlet=origin,
        lang=None,
    )


def _detach_if_nested(post: etree._Element) -> None:
    """Take a post out of another one it landed in (broken markup: an unclosed `div`),
    so neither reads the other's text; the text after it stays where it was."""
    parent = post.getparent()
    if parent is None or not any(_is_post(a) for a in post.iterancestors()):
        return
    tail, post.tail = post.tail, None
    if tail:
        previous = post.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(post)


def _is_post(element: etree._Element) -> bool:
    return "tgme_widget_message" in (element.get("class") or "").split()


def _in_reply(text: etree._Element, post: etree._Element) -> bool:
    """Whether a text element is the quoted post a reply answers, not the post's own."""
    for parent in text.iterancestors():
        if parent is post:
            return False
        if "tgme_widget_message_reply" in (parent.get("class") or "").split():
            return True
    return False


def _headline(html: str) -> str:
    """The text's first non-empty line, cut at a word near HEADLINE_CHARS."""
    for line in _LINE_BREAK.split(html):
        text = html_to_text(line)
        if text:
            if len(text) <= HEADLINE_CHARS:
                return text
            cut = text.rfind(" ", 0, HEADLINE_CHARS)
            return text[: cut if cut > 0 else HEADLINE_CHARS] + "…"
    return ""


def _media_kind(post: etree._Element) -> str:
    """A title for a post without text: its poll's question, or what it carries."""
    for kind, media in _MEDIA:
        found = matches(media, post)
        if found and kind == "poll":
            return html_to_text(inner_html(found[0])) or "[poll]"
        if found:
            return f"[{kind}]"
    return "[post]"


def _links(texts: list[etree._Element], post: etree._Element, base_url: str) -> list[str]:
    """The web links a post carries: in its text, then its link preview's."""
    anchors = [a for t in texts for a in matches(_LINKS, t) if not _is_date(a)]
    anchors += matches(_PREVIEW, post)
    links: list[str] = []
    for anchor in anchors:
        # The preview writes `&amp;` for `&` inside some hrefs (RSSHub notes it too).
        href = (anchor.get("href") or "").replace("&amp;", "&")
        url = canonical_url(href, base_url)
        if url and url not in links and not href.startswith("?"):
            links.append(url)
        if len(links) == MAX_LINKS:
            break
    return links


def _is_date(anchor: etree._Element) -> bool:
    return "tgme_widget_message_date" in (anchor.get("class") or "").split()


def _time(post: etree._Element) -> datetime | None:
    times = matches(_TIME, post) or matches(_ANY_TIME, post)
    return normalize.rfc3339(times[0].get("datetime", "")) if times else None
