"""A Telegram channel and a page without a feed, through the command line, on loopback."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.conftest import run_cli, write_config
from tests.support.feeds import UNVEILING_RU
from tests.support.servers import AlertReceiver, FeedServer

DATA = Path(__file__).resolve().parents[1] / "data"
HTML = "text/html; charset=utf-8"
NEW_POST = """
<div class="tgme_widget_message_wrap js-widget_message_wrap">
  <div class="tgme_widget_message js-widget_message" data-post="kursk_gov_test/107">
    <div class="tgme_widget_message_bubble">
      <a class="tgme_widget_message_photo_wrap" href="https://t.me/kursk_gov_test/107"
         style="background-image:url('https://cdn4.telesco.pe/file/unveiling.jpg')"></a>
      <div class="tgme_widget_message_text js-message_text" dir="auto">
        {title}<br/><br/>{summary}</div>
      <div class="tgme_widget_message_footer compact js-message_footer">
        <span class="tgme_widget_message_meta"><a class="tgme_widget_message_date"
          href="https://t.me/kursk_gov_test/107"><time datetime="{when}"
          class="time">now</time></a></span>
      </div>
    </div>
  </div>
</div>
"""
NEW_ITEM = """
      <div class="news-item">
        <h3 class="news-title"><a href="/news/2026/12/01/pamyatnik-otkryt/">{title}</a></h3>
        <p class="lead">{summary}</p>
      </div>
"""


def _once(config: Path) -> None:
    result = run_cli(config, "once")
    assert result.returncode == 0, result.stderr + result.stdout[-3000:]


def _history(config: Path) -> list[dict[str, Any]]:
    result = run_cli(config, "history", "--json")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_a_new_post_and_a_new_page_item_alert_once(
    tmp_path: Path, feed_server: FeedServer, receiver: AlertReceiver
) -> None:
    """Baseline first; then the governor's post and the city site's item on the same
    unveiling make exactly one alert, with both as its sources."""
    channel = (DATA / "telegram_channel.html").read_text(encoding="utf-8")
    listing = (DATA / "page_listing.html").read_text(encoding="utf-8")
    feed_server.serve("/s/kursk_gov_test", channel, content_type=HTML)
    page_url = feed_server.serve("/news/", listing, content_type=HTML)
    config = write_config(
        tmp_path,
        {
            "Kursk governor": {
                "telegram": "kursk_gov_test",
                "url": feed_server.url("/s/kursk_gov_test"),
            },
            "Kursk city news": {
                "page": page_url,
                "items": "div.news-item",
                "title": "h3",
                "summary": "p.lead",
                "date": ".news-date",
            },
        },
        [{"url": receiver.url}],
    )

    _once(config)  # the baseline: what is already there is recorded, never alerted
    assert receiver.messages() == []

    when = datetime.now(UTC).isoformat(timespec="seconds")
    post = NEW_POST.format(title=UNVEILING_RU.title, summary=UNVEILING_RU.summary, when=when)
    feed_server.serve(
        "/s/kursk_gov_test",
        channel.replace("      </section>", post + "</section>"),
        content_type=HTML,
    )
    item = NEW_ITEM.format(title=UNVEILING_RU.title, summary=UNVEILING_RU.summary)
    feed_server.serve(
        "/news/",
        listing.replace('<div class="news-list">', '<div class="news-list">' + item),
        content_type=HTML,
    )
    _once(config)

    [message] = receiver.messages()
    assert "КНДР" in message["title"] + message["message"]
    events = {e["milestone"]: e for e in _history(config)}
    assert events["site_selection"]["silent"] is True  # in the baseline, on both sources
    event = events["unveiling"]
    assert event["silent"] is False
    assert set(event["sources"]) == {
        "https://t.me/kursk_gov_test/107",
        feed_server.url("/news/2026/12/01/pamyatnik-otkryt"),
    }

    _once(config)  # nothing new: nothing more is sent
    assert len(receiver.messages()) == 1
