"""Telegram channel preview pages (`t.me/s/CHANNEL`) built for tests, page by page.

The markup is that of tests/data/telegram_channel.html (a real page's structure):
posts oldest first, a "load more" mark carrying the oldest post's number, and the
`rel="prev"` link the preview gives to the page before it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from html import escape

PAGE_SIZE = 20
"""Posts on one preview page, as t.me shows them."""

_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Test channel – Telegram</title>
{prev}</head>
<body class="widget_frame_base tgme_widget body_widget_post">
<header class="tgme_header"><div class="tgme_channel_info_header">
<div class="tgme_channel_info_header_title"><span dir="auto">Test channel</span></div>
</div></header>
<main class="tgme_main"><section class="tgme_channel_history js-message_history">
{more}{posts}
</section></main></body></html>
"""
_POST = """<div class="tgme_widget_message_wrap js-widget_message_wrap">
<div class="tgme_widget_message js-widget_message" data-post="{channel}/{number}">
<div class="tgme_widget_message_bubble">
<div class="tgme_widget_message_text js-message_text" dir="auto">{text}</div>
<div class="tgme_widget_message_footer compact js-message_footer">
<span class="tgme_widget_message_meta"><a class="tgme_widget_message_date"
href="https://t.me/{channel}/{number}"><time datetime="{when}" class="time">now</time></a></span>
</div></div></div></div>
"""


def post_text(number: int) -> str:
    """An ordinary post about nothing the stories follow."""
    return f"Сводка по ремонту дорог, выпуск {number}: работы идут по графику."


def preview(
    channel: str,
    numbers: Sequence[int],
    texts: Mapping[int, str] | None = None,
    *,
    now: datetime | None = None,
) -> str:
    """One preview page with posts `numbers` (oldest first), a minute apart up to `now`."""
    now = now or datetime.now(UTC)
    posts = []
    for i, number in enumerate(numbers):
        when = now - timedelta(minutes=len(numbers) - i)
        text = (texts or {}).get(number) or post_text(number)
        posts.append(
            _POST.format(
                channel=channel,
                number=number,
                text=escape(text).replace("\n", "<br/>"),
                when=when.isoformat(timespec="seconds"),
            )
        )
    first = min(numbers, default=None)
    prev = more = ""
    if first is not None and first > 1:
        prev = f'<link rel="prev" href="/s/{channel}?before={first}">\n'
        more = f'<div class="tme_messages_more js-messages_more" data-before="{first}"></div>\n'
    return _PAGE.format(prev=prev, more=more, posts="".join(posts))


def pages(channel: str, last: int, texts: Mapping[int, str] | None = None) -> dict[str, str]:
    """A channel of posts 1..`last` as the preview serves it: its path (the latest
    page) and each `?before=ID` path, to the channel's first post."""
    served: dict[str, str] = {}
    newest = last
    before: int | None = None
    while newest >= 1:
        numbers = list(range(max(1, newest - PAGE_SIZE + 1), newest + 1))
        path = f"/s/{channel}" + (f"?before={before}" if before is not None else "")
        served[path] = preview(channel, numbers, texts)
        before = numbers[0]
        newest = before - 1
    served[f"/s/{channel}?before=1"] = preview(channel, [], texts)
    return served
