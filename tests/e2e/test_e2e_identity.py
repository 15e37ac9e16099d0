"""Identity end to end: `monitor once` processes against a loopback feed farm, on SQLite
and on the local PostgreSQL.

"Seen" is not "judged": a report whose headline changes in place, a link republished
under a new GUID or carried by another feed with a new headline, and a feed that links
every item to its homepage each give their milestone's one alert; copies, GUID churn
and tracking parameters still give nothing more. An item the database refuses is
skipped, never the feed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import run_cli, write_config
from tests.support.events import alert_title
from tests.support.feeds import FILLER, Item, rss
from tests.support.postgres import schema_url
from tests.support.servers import AlertReceiver, FeedServer

DISCUSSED = "Kursk city council discusses site for monument to North Korean soldiers"
"""About the story, no milestone."""
CHOSEN = "Site chosen for monument to North Korean soldiers in Kursk region"
"""The site-selection milestone."""
FUNDRAISING = "Kursk region starts fundraising for monument to North Korean soldiers"
UNVEILED = "Monument to North Korean soldiers unveiled in Kursk"
ARTICLE = "https://wire.example/kursk/monument-site"
HOMEPAGE = "https://homepage.example/"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The database URL the service is configured with: a file, or a fresh schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'monitor.db'}"
        return
    with schema_url() as url:
        yield url


def _config(folder: Path, database: str, feeds: dict[str, str], receiver: AlertReceiver) -> Path:
    return write_config(folder, feeds, [{"name": "desk", "url": receiver.url}], database=database)


def _once(config: Path) -> list[dict[str, Any]]:
    """One cycle; its log events."""
    result = run_cli(config, "once")
    assert result.returncode == 0, result.stderr + result.stdout[-3000:]
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def _json(config: Path, *args: str) -> list[dict[str, Any]]:
    result = run_cli(config, *args, "--json")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


Render = Callable[..., str]


class Farm:
    """The loopback feeds of one test: what each serves, and a way to serve it again."""

    def __init__(self, server: FeedServer) -> None:
        self.server = server
        self.feeds: dict[str, tuple[list[Item], Render]] = {}

    def serve(self, path: str, items: list[Item], render: Render = rss) -> str:
        self.feeds[path] = (items, render)
        return self.server.serve(path, render(items))

    def refresh(self) -> None:
        """Serve the same items again in new bytes (a new channel title), so the next
        cycle reads them again rather than skipping an unchanged body."""
        for path, (items, render) in self.feeds.items():
            self.server.serve(path, render(items, title="Test feed, refreshed"))


def _one_alert(
    config: Path, receiver: AlertReceiver, farm: Farm, milestone: str, headline: str
) -> None:
    """Exactly one message came: the alert for `milestone`, naming `headline`; another
    cycle reading the same items again sends nothing."""
    expected = [alert_title(milestone)]
    messages = receiver.messages()
    assert [m["title"] for m in messages] == expected, messages
    assert headline in messages[0]["message"]
    farm.refresh()
    _once(config)
    assert [m["title"] for m in receiver.messages()] == expected
    [event] = [e for e in _json(config, "history") if e["kind"] == "milestone"]
    assert (event["milestone"], event["title"]) == (milestone, headline)
    assert [d["status"] for d in event["deliveries"]] == ["sent"]


@dataclass(frozen=True)
class Retelling:
    """A report stored as no milestone (`before`, in feed `first`), then carried again
    with the milestone headline (`after`, in feed `then`)."""

    first: str
    before: Item
    then: str
    after: Item


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            Retelling(
                "/a.xml",
                Item(DISCUSSED, ARTICLE, guid="tass-1"),
                "/a.xml",
                Item(CHOSEN, ARTICLE, guid="tass-1"),
            ),
            id="headline-updated-in-place",
        ),
        pytest.param(
            Retelling(
                "/a.xml",
                Item(DISCUSSED, ARTICLE, guid="a-1"),
                "/a.xml",
                Item(CHOSEN, f"{ARTICLE}?utm_source=rss", guid="a-2"),
            ),
            id="link-republished-under-a-new-guid",
        ),
        pytest.param(
            Retelling("/a.xml", Item(DISCUSSED, ARTICLE), "/b.xml", Item(CHOSEN, ARTICLE)),
            id="link-carried-by-another-feed",
        ),
    ],
)
def test_a_stored_report_with_a_milestone_headline_alerts(
    tmp_path: Path,
    database: str,
    feed_server: FeedServer,
    receiver: AlertReceiver,
    case: Retelling,
) -> None:
    """A report stored as no milestone, carried again with the milestone headline (its
    GUID updated in place, its link under a new GUID or in another feed), alerts once."""
    farm = Farm(feed_server)
    feeds = {"a": farm.serve("/a.xml", FILLER), "b": farm.serve("/b.xml", FILLER[:2])}
    config = _config(tmp_path, database, feeds, receiver)
    _once(config)
    farm.serve(case.first, [case.before, *FILLER])
    _once(config)
    assert receiver.messages() == []
    farm.serve(case.then, [case.after, *FILLER])
    _once(config)
    _one_alert(config, receiver, farm, "site_selection", CHOSEN)


@pytest.mark.parametrize("guids", [True, False], ids=["with-guids", "without-guids"])
def test_feed_linking_every_item_to_its_homepage_alerts(
    tmp_path: Path,
    database: str,
    feed_server: FeedServer,
    receiver: AlertReceiver,
    guids: bool,
) -> None:
    """Items that all link to the homepage are separate reports: a new milestone alerts."""

    def homepage(items: list[Item], title: str = "Homepage") -> str:
        return rss(
            [Item(i.title, HOMEPAGE, guid=f"home-{i.title}" if guids else None) for i in items],
            title=title,
        )

    farm = Farm(feed_server)
    url = farm.serve("/home.xml", FILLER, homepage)
    config = _config(tmp_path, database, {"home": url}, receiver)
    _once(config)
    fundraising = Item(FUNDRAISING, HOMEPAGE)
    farm.serve("/home.xml", [fundraising, *FILLER], homepage)
    _once(config)
    assert receiver.messages() == []
    farm.serve("/home.xml", [Item(UNVEILED, HOMEPAGE), fundraising, *FILLER], homepage)
    _once(config)
    _one_alert(config, receiver, farm, "unveiling", UNVEILED)


def test_guid_churn_and_tracking_copies_alert_once(
    tmp_path: Path, database: str, feed_server: FeedServer, receiver: AlertReceiver
) -> None:
    """A feed re-serving its items under new GUIDs and tracking links, and a copy in
    another feed, give one alert in all."""
    farm = Farm(feed_server)
    churning = farm.serve("/churn.xml", FILLER)
    other = farm.serve("/other.xml", FILLER[:1])
    config = _config(tmp_path, database, {"churn": churning, "other": other}, receiver)
    _once(config)
    for cycle in range(3):
        items = [
            Item(
                item.title,
                f"{item.link}?utm_source=rss&utm_campaign=c{cycle}&fbclid=x{cycle}",
                guid=f"{item.link}#{cycle}",
            )
            for item in [Item(UNVEILED, "https://wire.example/unveiled"), *FILLER]
        ]
        farm.serve("/churn.xml", items)
        copy = Item(UNVEILED, f"https://wire.example/unveiled?gclid=g{cycle}", guid=f"o{cycle}")
        farm.serve("/other.xml", [copy, *FILLER[:1]])
        _once(config)
    _one_alert(config, receiver, farm, "unveiling", UNVEILED)


POISON = "POISON: a row this database refuses"


def _refuse_poison(database: str) -> None:
    """Make the database itself refuse any item whose title contains POISON."""
    engine = create_engine(database)
    try:
        with engine.begin() as connection:
            if engine.dialect.name == "sqlite":
                connection.execute(
                    text(
                        "CREATE TRIGGER refuse_poison BEFORE INSERT ON item "
                        "WHEN NEW.title LIKE '%POISON%' "
                        "BEGIN SELECT RAISE(ABORT, 'poisoned row'); END"
                    )
                )
            else:
                connection.execute(
                    text(
                        "ALTER TABLE item ADD CONSTRAINT refuse_poison "
                        "CHECK (title NOT LIKE '%POISON%')"
                    )
                )
    finally:
        engine.dispose()


def test_an_item_the_database_refuses_is_skipped_and_the_feed_alerts(
    tmp_path: Path, database: str, feed_server: FeedServer, receiver: AlertReceiver
) -> None:
    """A row the store cannot write is skipped, counted and logged; the good milestone
    item beside it alerts."""
    farm = Farm(feed_server)
    url = farm.serve("/wire.xml", FILLER)
    config = _config(tmp_path, database, {"wire": url}, receiver)
    _once(config)
    _refuse_poison(database)
    poisoned = Item(POISON, "https://wire.example/poison")
    farm.serve("/wire.xml", [poisoned, Item(UNVEILED, ARTICLE), *FILLER])
    events = _once(config)

    [skipped] = [e for e in events if e["event"] == "item.skipped"]
    assert (skipped["feed"], skipped["title"], skipped["url"]) == ("wire", POISON, poisoned.link)
    assert "poison" in skipped["error"].lower()
    [row] = _json(config, "status")
    assert (row["items_skipped"], row["items_seen"], row["last_error"]) == (1, 4, None)
    _one_alert(config, receiver, farm, "unveiling", UNVEILED)
