"""Telegram channel previews (t.me/s/CHANNEL) read into entries, from fixture pages."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.core.errors import NotAFeed
from monitor.ingest.entry import Entry, ParsedFeed
from monitor.ingest.identity import content_hash
from monitor.ingest.parse import parse
from monitor.ingest.read_telegram import MAX_POSTS
from monitor.ingest.sources import TelegramSource

DATA = Path(__file__).resolve().parents[1] / "data"
MIRROR = "http://127.0.0.1:8080/s/kursk_gov_test"
CHANNEL = TelegramSource("kursk_gov_test")


def read(name: str, base: str = MIRROR, content_type: str | None = "text/html") -> ParsedFeed:
    return parse((DATA / name).read_bytes(), base, content_type, CHANNEL)


def by_id(feed: ParsedFeed) -> dict[str, Entry]:
    return {str(e.url).rsplit("/", 1)[1]: e for e in feed.entries}


def test_each_post_is_an_entry_with_its_permalink() -> None:
    """Every post becomes an entry whose id and link are t.me/CHANNEL/ID, newest first."""
    feed = read("telegram_channel.html")
    assert feed.parser == "telegram"
    assert feed.title == "Губернатор Курской области"
    assert [e.url for e in feed.entries] == [
        f"https://t.me/kursk_gov_test/{n}" for n in (105, 104, 103, 102, 101)
    ]
    assert all(e.guid == e.url for e in feed.entries)


def test_permalinks_do_not_depend_on_the_address_the_page_came_from() -> None:
    """A mirror or test server gives the same entries (keys and links) as t.me itself."""
    here = read("telegram_channel.html", base=MIRROR)
    there = read("telegram_channel.html", base="https://t.me/s/kursk_gov_test")
    assert [(e.key, e.url) for e in here.entries] == [(e.key, e.url) for e in there.entries]


def test_a_text_post_has_its_first_line_as_title_and_its_links_kept() -> None:
    """Title is the first line; the summary is the whole text followed by its links."""
    post = by_id(read("telegram_channel.html"))["101"]
    assert post.title == "Провели совещание по подготовке региона к зиме."
    assert post.summary.startswith("Провели совещание по подготовке региона к зиме. Подробности")
    assert post.summary.endswith("Links: https://gov.example/news/winter")  # no utm_source
    assert post.published == datetime(2026, 11, 28, 9, 15, tzinfo=UTC)


def test_a_media_post_is_read_by_its_caption() -> None:
    """A photo's caption is the post's text; hashtag searches are not kept as links."""
    post = by_id(read("telegram_channel.html"))["102"]
    assert post.title.startswith("Выбрано место для памятника воинам КНДР")
    assert "Проект представят в декабре." in post.summary
    assert "Links:" not in post.summary
    assert "cdn4.telesco.pe" not in post.summary


def test_a_media_post_without_caption_is_titled_by_its_kind() -> None:
    """A video with no text still is an entry, titled by what it carries."""
    post = by_id(read("telegram_channel.html"))["105"]
    assert (post.title, post.summary) == ("[video]", "")


def test_a_forwarded_post_names_its_origin() -> None:
    """The forward's source is the outlet and is said in the summary; its preview link kept."""
    post = by_id(read("telegram_channel.html"))["103"]
    assert post.outlet == "ТАСС"
    assert post.summary.startswith("Forwarded from ТАСС: Путин провёл")
    assert "https://tass.example/politika/555" in post.summary


def test_service_messages_and_view_counts_are_not_read() -> None:
    """A "channel photo updated" notice is no entry; view counters never reach the text."""
    feed = read("telegram_channel.html")
    assert "106" not in by_id(feed)
    assert not any("12.4K" in e.summary or "edited" in e.summary for e in feed.entries)


def test_an_edited_post_is_the_same_entry_with_new_content() -> None:
    """Editing keeps the post's key; its text (so its content hash) changes; the view
    counter moving does not change it at all."""
    page = (DATA / "telegram_channel.html").read_text(encoding="utf-8")
    edited = page.replace("переносится на четверг", "переносится на пятницу")
    edited = edited.replace("5.2K", "7.9K").replace("12.4K", "13.0K")
    before, after = (
        by_id(parse(text.encode(), MIRROR, "text/html", CHANNEL)) for text in (page, edited)
    )
    assert after["104"].key == before["104"].key
    assert "пятницу" in after["104"].title

    def hashed(e: Entry) -> str:
        return content_hash(e.title, e.summary)

    assert hashed(after["104"]) != hashed(before["104"])
    assert hashed(after["101"]) == hashed(before["101"])


def test_an_older_page_reads_the_same_way() -> None:
    """A `?before=ID` page (pagination) gives its own posts; a reply's quote is not its text."""
    feed = read("telegram_before.html", base=f"{MIRROR}?before=101")
    posts = by_id(feed)
    assert list(posts) == ["100", "99"]
    assert posts["100"].title == "Ответ на предыдущий пост: работы продолжаются."
    assert "на который отвечают" not in posts["100"].summary


def test_broken_markup_keeps_each_readable_post_apart() -> None:
    """Unclosed tags, bad ids and dates, script and javascript: links: the readable posts
    come out separately and inert; the rest is left out."""
    posts = by_id(read("telegram_broken.html"))
    assert list(posts) == ["202", "201"]
    assert posts["201"].title.startswith("Первый пост без закрывающих тегов")
    assert "Второй пост" not in posts["201"].summary
    assert posts["201"].published is None
    assert "alert" not in posts["202"].summary
    assert "javascript" not in posts["202"].summary
    assert posts["202"].published == datetime(2026, 11, 30, 11, 0, tzinfo=UTC)


def test_an_empty_channel_is_an_empty_feed() -> None:
    """A channel frame with no posts yet is no error."""
    body = b'<html><body><section class="tgme_channel_history"></section></body></html>'
    assert parse(body, MIRROR, "text/html", CHANNEL).entries == []


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b"<html><body><h1>Log in to Telegram</h1></body></html>",
        b'<?xml version="1.0"?><rss version="2.0"><channel></channel></rss>',
        bytes(range(256)) * 40,
    ],
    ids=["empty", "blank", "login page", "a feed", "random bytes"],
)
def test_a_page_that_is_no_channel_preview_is_not_a_feed(body: bytes) -> None:
    """Anything without posts or the channel's frame raises NotAFeed, nothing else."""
    with pytest.raises(NotAFeed):
        parse(body, MIRROR, "text/html", CHANNEL)


def test_the_header_charset_is_honoured() -> None:
    """A page sent in windows-1251 with the charset in its header reads right."""
    page = (DATA / "telegram_channel.html").read_text(encoding="utf-8")
    body = page.replace('<meta charset="utf-8">', "").encode("cp1251", errors="replace")
    feed = parse(body, MIRROR, "text/html; charset=windows-1251", CHANNEL)
    assert by_id(feed)["104"].title == "Уточнение: приём граждан переносится на четверг."


def test_a_page_of_too_many_posts_is_read_to_the_newest_max_posts() -> None:
    """A page carrying thousands of posts (no real preview does) yields the newest
    MAX_POSTS."""
    posts = "".join(
        f'<div class="tgme_widget_message" data-post="kursk_gov_test/{n}">'
        f'<div class="tgme_widget_message_text">post {n}</div></div>'
        for n in range(1, MAX_POSTS * 3 + 1)
    )
    body = f'<html><body><section class="tgme_channel_history">{posts}</section>'.encode()
    feed = parse(body, MIRROR, "text/html", CHANNEL)
    assert len(feed.entries) == MAX_POSTS
    assert feed.entries[0].title == f"post {MAX_POSTS * 3}"
