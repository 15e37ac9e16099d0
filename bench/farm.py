"""A farm of realistic news feeds served on loopback, for the benchmark.

`N` feeds of `M` items each, spread over several loopback addresses (127.0.0.1,
127.0.0.2, ...) the way real feeds are spread over hosts. Items read like news in
English, Russian, Ukrainian and Korean: a headline and a summary of about 1.5 KB of
HTML. About one item in a hundred is about the story the shipped config follows
(a few of them wire copies carried by several feeds under the same link). One feed
in five is Atom, the rest RSS 2.0.

The server answers with an ETag, honours If-None-Match with a 304, and gzips the
body when the client accepts it, from bytes prepared before it starts: what it
costs per request is a header parse and one write.

Run as a script it serves until killed, printing `ready <port>` once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import random
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape, quoteattr

BASE_TIME = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

_TEXTS = {
    "en": (
        "government minister said on Tuesday that the new budget would include funding for "
        "regional hospitals schools and roads after months of debate in parliament while "
        "opposition leaders criticised the plan as too little too late and warned of rising "
        "prices energy costs and a shortage of workers in several industries across the "
        "country officials expect the measures to take effect early next year analysts "
        "noted that inflation slowed for a third month as central bank held rates steady "
        "exports grew despite weaker demand from abroad and the currency remained stable "
        "football club won the match in extra time weather service forecast heavy snow"
    ),
    "ru": (
        "правительство заявило во вторник что новый бюджет предусматривает финансирование "
        "региональных больниц школ и дорог после нескольких месяцев обсуждения в парламенте "
        "оппозиция раскритиковала план и предупредила о росте цен на энергию нехватке "
        "работников в ряде отраслей по всей стране чиновники ожидают что меры вступят в силу "
        "в начале следующего года аналитики отметили что инфляция замедлилась третий месяц "
        "подряд центральный банк сохранил ставку экспорт вырос несмотря на слабый спрос "
        "футбольный клуб выиграл матч в дополнительное время синоптики прогнозируют снегопад"
    ),
    "uk": (
        "уряд заявив у вівторок що новий бюджет передбачає фінансування регіональних лікарень "
        "шкіл і доріг після кількох місяців обговорення в парламенті опозиція розкритикувала "
        "план і попередила про зростання цін на енергію брак працівників у низці галузей по "
        "всій країні посадовці очікують що заходи набудуть чинності на початку наступного "
        "року аналітики зазначили що інфляція сповільнилася третій місяць поспіль "
        "національний банк зберіг облікову ставку експорт зріс попри слабкий попит "
        "футбольний клуб виграв матч у додатковий час синоптики прогнозують снігопад"
    ),
    "ko": (
        "정부는 화요일 새 예산에 지역 병원과 학교 도로 예산이 포함될 것이라고 밝혔다 국회에서 "
        "몇 달간의 논의 끝에 야당은 계획이 너무 늦었다고 비판하며 에너지 가격 상승과 여러 "
        "산업의 인력 부족을 경고했다 당국은 조치가 내년 초 시행될 것으로 예상한다 분석가들은 "
        "물가 상승률이 석 달 연속 둔화했으며 중앙은행이 금리를 동결했다고 전했다 수출은 해외 "
        "수요 약화에도 증가했고 환율은 안정세를 유지했다 축구 구단은 연장전 끝에 승리했다 "
        "기상청은 폭설을 예보했다"
    ),
}

WORDS = {lang: text.split() for lang, text in _TEXTS.items()}

STORY = {
    "en": [
        (
            "Site chosen for monument to North Korean soldiers in Kursk region",
            "Authorities in the Kursk region said a site was chosen for a monument to North "
            "Korean soldiers who fought there, and land will be allocated next to the memorial "
            "park.",
        ),
        (
            "Design of Kursk monument to DPRK soldiers presented",
            "The design of the monument to soldiers of the DPRK who fought in the Kursk region "
            "was presented to the public on Monday.",
        ),
    ],
    "ru": [
        (
            "В Курской области выбрали место для памятника бойцам КНДР",
            "Власти Курской области выбрали площадку для монумента военнослужащим КНДР, "
            "участвовавшим в освобождении региона.",
        ),
        (
            "Представлен эскиз памятника воинам КНДР в Курске",
            "Эскиз памятника военнослужащим КНДР, который установят в Курске, представили "
            "в понедельник.",
        ),
    ],
    "uk": [
        (
            "У Курській області обрали місце для пам'ятника військовим КНДР",
            "Російська влада в Курській області обрала майданчик для пам'ятника військовим "
            "КНДР, повідомляють ЗМІ.",
        ),
    ],
    "ko": [
        (
            "쿠르스크에 북한군 기념비 부지 선정",
            "러시아 쿠르스크주 당국이 북한군 기념비를 세울 부지를 선정했다고 밝혔다.",
        ),
    ],
}
LANGS = ("en", "ru", "uk", "ko")
SUMMARY_BYTES = 1500


@dataclass(frozen=True)
class Feed:
    path: str
    host: str
    body: bytes
    gzipped: bytes
    etag: str


def _sentence(rng: random.Random, lang: str) -> str:
    words = rng.choices(WORDS[lang], k=rng.randint(8, 16))
    text = " ".join(words)
    return text[0].upper() + text[1:] + "."


def _summary(rng: random.Random, lang: str) -> str:
    """About SUMMARY_BYTES of UTF-8 HTML: paragraphs, a link, an entity or two."""
    parts: list[str] = []
    size = 0
    while size < SUMMARY_BYTES:
        paragraph = " ".join(_sentence(rng, lang) for _ in range(rng.randint(2, 4)))
        if rng.random() < 0.3:
            paragraph += ' <a href="https://news.example/more">&quot;More&quot;</a>'
        parts.append(f"<p>{paragraph}</p>")
        size += len(parts[-1].encode())
    return "".join(parts)


def _items(rng: random.Random, feed: int, items: int, lang: str) -> list[dict[str, str]]:
    out = []
    for i in range(items):
        published = BASE_TIME - timedelta(minutes=37 * i + feed)
        link = f"https://outlet{feed}.example/{lang}/news/{feed}-{i}?utm_source=rss"
        title = _sentence(rng, lang).rstrip(".")
        summary = _summary(rng, lang)
        if rng.random() < 0.01:
            story_lang = rng.choice(LANGS)
            number = rng.randrange(len(STORY[story_lang]))
            title, lead = STORY[story_lang][number]
            summary = f"<p>{escape(lead)}</p>" + summary[: SUMMARY_BYTES // 2]
            if rng.random() < 0.5:  # a wire copy: several feeds carry the same link
                link = f"https://wire.example/{story_lang}/story-{number}"
        out.append(
            {
                "title": title,
                "link": link,
                "guid": f"urn:bench:{feed}:{i}",
                "summary": summary,
                "published": format_datetime(published),
                "updated": published.isoformat(),
            }
        )
    return out


def _rss(feed: int, lang: str, items: list[dict[str, str]]) -> str:
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<rss version="2.0"><channel>',
        f"<title>Outlet {feed}</title><link>https://outlet{feed}.example/</link>",
        f"<description>News from outlet {feed}</description><language>{lang}</language>",
    ]
    for item in items:
        parts.append(
            f"<item><title>{escape(item['title'])}</title><link>{escape(item['link'])}</link>"
            f"<description>{escape(item['summary'])}</description>"
            f'<guid isPermaLink="false">{item["guid"]}</guid>'
            f"<pubDate>{item['published']}</pubDate></item>"
        )
    parts.append("</channel></rss>")
    return "\n".join(parts)


def _atom(feed: int, lang: str, items: list[dict[str, str]]) -> str:
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f'<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="{lang}">',
        f"<title>Outlet {feed}</title><id>urn:bench:feed:{feed}</id>",
        f'<link href="https://outlet{feed}.example/"/>',
        f"<updated>{BASE_TIME.isoformat()}</updated>",
    ]
    for item in items:
        parts.append(
            f"<entry><title>{escape(item['title'])}</title>"
            f"<link href={quoteattr(item['link'])}/><id>{item['guid']}</id>"
            f"<updated>{item['updated']}</updated>"
            f'<summary type="html">{escape(item["summary"])}</summary></entry>'
        )
    parts.append("</feed>")
    return "\n".join(parts)


def build(feeds: int, items: int, hosts: int, seed: int = 2026) -> list[Feed]:
    """The farm's feeds, the same for the same arguments."""
    rng = random.Random(seed)
    made = []
    for n in range(feeds):
        lang = LANGS[n % len(LANGS)]
        entries = _items(rng, n, items, lang)
        text = _atom(n, lang, entries) if n % 5 == 4 else _rss(n, lang, entries)
        body = text.encode()
        made.append(
            Feed(
                path=f"/feeds/{n}.xml",
                host=f"127.0.0.{n % hosts + 1}",
                body=body,
                gzipped=gzip.compress(body, 6),
                etag='"' + hashlib.blake2b(body, digest_size=8).hexdigest() + '"',
            )
        )
    return made


def urls(feeds: list[Feed], port: int) -> list[str]:
    return [f"http://{f.host}:{port}{f.path}" for f in feeds]


async def serve(feeds: list[Feed], port: int) -> None:
    by_path = {f.path: f for f in feeds}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                writer.write(_answer(by_path.get(path), headers))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()

    hosts = sorted({f.host for f in feeds})
    servers = [await asyncio.start_server(handle, host, port) for host in hosts]
    print(f"ready {port} {len(hosts)} hosts", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


def _answer(feed: Feed | None, headers: dict[str, str]) -> bytes:
    if feed is None:
        return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
    if headers.get("if-none-match") == feed.etag:
        return f"HTTP/1.1 304 Not Modified\r\nETag: {feed.etag}\r\n\r\n".encode()
    gzipped = "gzip" in headers.get("accept-encoding", "")
    body = feed.gzipped if gzipped else feed.body
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: application/xml; charset=utf-8\r\n"
        f"ETag: {feed.etag}\r\nContent-Length: {len(body)}\r\n"
        + ("Content-Encoding: gzip\r\n" if gzipped else "")
        + "\r\n"
    )
    return head.encode() + body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=400)
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    feeds = build(args.feeds, args.items, args.hosts)
    try:
        asyncio.run(serve(feeds, args.port))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
