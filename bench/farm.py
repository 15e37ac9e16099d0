"""A farm of realistic news feeds served on loopback, for the benchmark.

`N` feeds of `M` items each, spread over several loopback addresses (127.0.0.1,
127.0.0.2, ...) the way real feeds are spread over hosts. Items read like news in
English, Russian, Ukrainian and Korean: a headline and a summary of about 1.5 KB of
HTML. A share of the items (`--relevant`, one in a hundred by default; 1.0 is the day
of an unveiling) are about the story the shipped config follows: reports of a few
wire stories (a site chosen, a design shown, the unveiling) in the four languages,
each outlet filling the story's slots with its own wording and link, a third of them
plain wire copies carried by several feeds under one link. One feed in five is Atom,
the rest RSS 2.0.

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
# Wire stories about the story the shipped config follows, for a surge: each is a
# headline and a lead with slots, and every report fills the slots its own way (the
# outlet's wording), may name its source, and carries its own link, or the wire's.
WIRE = {
    "en": [
        (
            "{Authorities} {chose} site for {monument} to North Korean soldiers in Kursk region",
            "Authorities in the Kursk region {chose} a site for {a_monument} to North Korean"
            " soldiers who fought {there}, {official} said on {day}. Land next to the {park}"
            " will be allocated for it.",
        ),
        (
            "{Design} of Kursk {monument} to DPRK soldiers {presented}",
            "The {design} of the {monument} to soldiers of the DPRK who fought in the Kursk"
            " region was {presented} {audience} on {day}, {official} said.",
        ),
        (
            "{Monument} to North Korean soldiers {unveiled} in Kursk",
            "A {monument} to North Korean soldiers who fought in the Kursk region was"
            " {unveiled} in Kursk on {day}, {official} said. Veterans and diplomats attended"
            " the ceremony.",
        ),
    ],
    "ru": [
        (
            "В Курской области {chose} место для {monument_gen} {soldiers}",
            "Власти Курской области {chose} площадку для {monument_gen} {soldiers},"
            " участвовавшим в освобождении региона, сообщил {official_ru}.",
        ),
        (
            "{Presented} {design_ru} {monument_gen} {soldiers} в Курске",
            "{Design_ru} {monument_gen} {soldiers}, который установят в Курске, {presented_ru}"
            " {day_ru}, сообщил {official_ru}.",
        ),
        (
            "В Курске {opened} {monument_acc} {soldiers}",
            "В Курске {day_ru} {opened} {monument_acc} {soldiers}, погибшим при освобождении"
            " региона, сообщил {official_ru}. В церемонии участвовали ветераны и дипломаты.",
        ),
    ],
    "uk": [
        (
            "У Курській області {chose_uk} місце для пам'ятника {soldiers_uk}",
            "Російська влада в Курській області {chose_uk} майданчик для пам'ятника"
            " {soldiers_uk}, {reports_uk}.",
        ),
        (
            "У Курську {opened_uk} пам'ятник {soldiers_uk}",
            "У Курську {day_uk} {opened_uk} пам'ятник {soldiers_uk}, які воювали в регіоні,"
            " {reports_uk}.",
        ),
    ],
    "ko": [
        (
            "쿠르스크에 {nk} 기념비 부지 {chosen_ko}",
            "러시아 쿠르스크주 당국이 {nk} 기념비를 세울 부지를 {chose_ko}고 {agency}가 {day_ko}"
            " 보도했다.",
        ),
        (
            "쿠르스크서 {nk} 기념비 제막",
            "러시아 쿠르스크에서 {nk} 참전 기념비 제막식이 {day_ko} 열렸다고 {agency}가 전했다.",
        ),
    ],
}
SLOTS = {
    "Authorities": ["Authorities", "Officials", "Russia", "Kursk officials"],
    "chose": ["chose", "picked", "selected", "have chosen", "have selected", "approved"],
    "monument": ["monument", "memorial"],
    "Monument": ["Monument", "Memorial", "Statue"],
    "a_monument": ["a monument", "a memorial", "the monument", "the future monument"],
    "there": ["there", "in the region", "in the Kursk incursion", "near Sudzha"],
    "official": [
        "the governor",
        "regional officials",
        "a spokesman for the governor",
        "Alexander Khinshtein",
        "the regional administration",
    ],
    "day": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"],
    "park": ["memorial park", "Victory park", "city park", "war memorial"],
    "Design": ["Design", "Sketch", "Draft design", "Winning design"],
    "design": ["design", "sketch", "draft design", "winning design"],
    "presented": ["presented", "unveiled", "revealed", "shown"],
    "audience": ["to the public", "to journalists", "at a press conference", "to veterans"],
    "unveiled": ["unveiled", "solemnly unveiled", "officially unveiled"],
    "monument_gen": ["памятника", "монумента", "мемориала"],
    "monument_acc": ["памятник", "монумент", "мемориал"],
    "soldiers": ["бойцам КНДР", "военнослужащим КНДР", "воинам КНДР", "солдатам КНДР"],
    "official_ru": [
        "губернатор Александр Хинштейн",
        "пресс-секретарь губернатора",
        "источник в администрации",
        "региональный оперштаб",
    ],
    "Presented": ["Представлен", "Показан", "Опубликован"],
    "design_ru": ["эскиз", "проект", "макет"],
    "Design_ru": ["Эскиз", "Проект", "Макет"],
    "presented_ru": ["представили", "показали", "презентовали", "опубликовали"],
    "day_ru": ["в понедельник", "во вторник", "в среду", "в четверг", "в пятницу"],
    "opened": ["открыли", "торжественно открыли", "открыт"],
    "chose_uk": ["обрала", "визначила", "затвердила"],
    "soldiers_uk": ["військовим КНДР", "бійцям КНДР", "солдатам КНДР", "воїнам КНДР"],
    "reports_uk": ["повідомляють ЗМІ", "пишуть російські медіа", "повідомляє Укрінформ"],
    "opened_uk": ["відкрили", "урочисто відкрили"],
    "day_uk": ["у понеділок", "у вівторок", "у середу", "у четвер", "у п'ятницю"],
    "nk": ["북한군", "북한 군인", "북한 병사"],
    "chosen_ko": ["선정", "확정", "결정"],
    "chose_ko": ["선정했다", "확정했다", "결정했다"],
    "agency": ["타스통신", "리아노보스티", "연합뉴스", "뉴시스", "인테르팍스"],
    "day_ko": ["월요일", "화요일", "수요일", "목요일", "금요일"],
}
OUTLETS = ("TASS", "RIA Novosti", "Interfax", "Yonhap", "Ukrinform", "Kommersant", "NK News")
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


def _items(
    rng: random.Random, feed: int, items: int, lang: str, relevant: float
) -> list[dict[str, str]]:
    out = []
    for i in range(items):
        published = BASE_TIME - timedelta(minutes=37 * i + feed)
        link = f"https://outlet{feed}.example/{lang}/news/{feed}-{i}?utm_source=rss"
        title = _sentence(rng, lang).rstrip(".")
        summary = _summary(rng, lang)
        if rng.random() < relevant:
            story_lang, title, lead, wire = _report(rng)
            # The rest of the text in the report's language; a wire copy's is the
            # wire's, the same on every feed that carries it under its link.
            summary = _summary(random.Random(wire) if wire else rng, story_lang)
            if wire is not None:
                link = wire
            summary = f"<p>{escape(lead)}</p>" + summary[: SUMMARY_BYTES // 2]
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


def _report(rng: random.Random) -> tuple[str, str, str, str | None]:
    """One outlet's report of a wire story: its language, title, lead, and the wire's link
    when it is a plain copy (a third of reports; a few copies of each story exist, so
    feeds carry them under one link), else None and the outlet's own wording."""
    lang = rng.choice(LANGS)
    number = rng.randrange(len(WIRE[lang]))
    title, lead = WIRE[lang][number]
    copy = rng.random() < 1 / 3
    version = rng.randrange(4)
    # A copy is one of four fixed fillings of the story's slots, the same on every feed.
    fill = random.Random(f"{lang}:{number}:{version}") if copy else rng
    slots = {name: fill.choice(choices) for name, choices in SLOTS.items()}
    title, lead = title.format(**slots), lead.format(**slots)
    if not copy and rng.random() < 0.5:
        lead += f" ({rng.choice(OUTLETS)})"
    if copy:
        return lang, title, lead, f"https://wire.example/{lang}/story-{number}-{version}"
    return lang, title, lead, None


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


def build(
    feeds: int, items: int, hosts: int, relevant: float = 0.01, seed: int = 2026
) -> list[Feed]:
    """The farm's feeds, the same for the same arguments."""
    rng = random.Random(seed)
    made = []
    for n in range(feeds):
        lang = LANGS[n % len(LANGS)]
        entries = _items(rng, n, items, lang, relevant)
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
    parser.add_argument(
        "--relevant", type=float, default=0.01, help="share of items about the story (0 to 1)"
    )
    args = parser.parse_args()
    feeds = build(args.feeds, args.items, args.hosts, args.relevant)
    try:
        asyncio.run(serve(feeds, args.port))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
