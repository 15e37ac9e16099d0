"""Compiling the `stories` block: errors name the field, terms mean what docs/rules.md says."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.core.errors import ConfigError
from monitor.match.classify import classify
from monitor.match.rules import Story, compile_stories, scripts_of
from monitor.match.textnorm import normalize

CONFIG = Path(__file__).resolve().parents[2] / "config.yaml"


def minimal() -> dict[str, Any]:
    """A small valid story to break in one place per test."""
    return {
        "id": "demo",
        "name": "Demo story",
        "lists": {"thing": ["monument*", "памятник*"]},
        "watch": {"all": ["$thing", ["kursk*", "курск*"]], "none": ["museum*"]},
        "cues": {"future": ["will"], "negation": ["не"]},
        "milestones": {
            "site_selection": {"event": ["chosen"], "all": [["site"]]},
            "unveiling": {
                "label": "Unveiled",
                "event": ["unveiled", "открыли"],
                "all": ["$thing", {"any": ["a", "b", "c", "d"]}],
            },
        },
    }


def one_group(*terms: str) -> Story:
    """A story whose only rule is one watch group of `terms`."""
    return compile_stories([{"id": "t", "name": "t", "watch": {"any": list(terms)}}])[0]


def test_default_config_compiles_with_its_three_milestones() -> None:
    """The shipped config's default story compiles with the three milestones, in order."""
    raw = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    (story,) = compile_stories(raw["stories"])
    assert story.id == "kursk-kpa-monument"
    assert [m.key for m in story.milestones] == ["site_selection", "design_reveal", "unveiling"]
    assert [m.key for m in story.order] == ["unveiling", "design_reveal", "site_selection"]
    assert "\n# --- stories ---\nstories:" in CONFIG.read_text(encoding="utf-8")


def test_milestone_lookup_by_key() -> None:
    """Story.milestone finds a milestone by key and returns None for an unknown one."""
    (story,) = compile_stories([minimal()])
    found = story.milestone("unveiling")
    assert found is not None
    assert found.label == "Unveiled"
    assert story.milestone("nope") is None


def test_label_defaults_to_the_key_in_words() -> None:
    """A milestone without a label is labelled from its key."""
    (story,) = compile_stories([minimal()])
    site = story.milestone("site_selection")
    assert site is not None
    assert site.label == "Site selection"


def test_milestones_are_tried_latest_first_without_precedence() -> None:
    """Without `precedence`, the milestone declared last is tried first."""
    (story,) = compile_stories([minimal()])
    assert [m.key for m in story.order] == ["unveiling", "site_selection"]


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(story: dict[str, Any]) -> None:
        target: Any = story
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return apply


def _drop(path: list[Any]) -> Callable[[dict[str, Any]], None]:
    def apply(story: dict[str, Any]) -> None:
        target: Any = story
        for step in path[:-1]:
            target = target[step]
        del target[path[-1]]

    return apply


BROKEN = [
    pytest.param(
        _set(["milestones", "unveiling", "all", 1, "any", 3], "re:(?:unclosed"),
        "stories[0].milestones.unveiling.all[1].any[3]",
        "invalid regular expression",
        id="invalid-regex-deep",
    ),
    pytest.param(_set(["wtach"], {}), "stories[0].wtach", "did you mean 'watch'", id="unknown-key"),
    pytest.param(_drop(["id"]), "stories[0].id", "missing 'id'", id="missing-id"),
    pytest.param(_drop(["watch"]), "stories[0].watch", "missing 'watch'", id="missing-watch"),
    pytest.param(
        _set(["watch", "all", 1], []), "stories[0].watch.all[1]", "empty", id="empty-group"
    ),
    pytest.param(
        _set(["watch", "all", 0], "monument*"),
        "stories[0].watch.all[0]",
        "each item under 'all' is a group",
        id="bare-term-in-all",
    ),
    pytest.param(
        _set(["watch", "none", 0], "$nothing"),
        "stories[0].watch.none[0]",
        "unknown list '$nothing'",
        id="unknown-list",
    ),
    pytest.param(
        _set(["lists", "thing", 1], "$thing"),
        "stories[0].lists.thing[1]",
        "circle",
        id="list-cycle",
    ),
    pytest.param(
        _set(["precedence"], ["unveiling", "site_choice"]),
        "stories[0].precedence[1]",
        "unknown milestone 'site_choice'",
        id="unknown-milestone",
    ),
    pytest.param(
        _set(["precedence"], ["unveiling"]),
        "stories[0].precedence",
        "missing: site_selection",
        id="precedence-incomplete",
    ),
    pytest.param(
        _drop(["milestones", "unveiling", "event"]),
        "stories[0].milestones.unveiling.event",
        "missing 'event'",
        id="missing-event",
    ),
    pytest.param(
        _set(["milestones", "Unveiling!"], {"event": ["x"]}),
        "stories[0].milestones.Unveiling!",
        "milestone names",
        id="bad-milestone-name",
    ),
    pytest.param(
        _set(["milestones", "unveiling", "whenever"], ["x"]),
        "stories[0].milestones.unveiling.whenever",
        "did you mean 'when'",
        id="unknown-milestone-key",
    ),
    pytest.param(
        _set(["cues", "negation", 0], "pa*mi"),
        "stories[0].cues.negation[0]",
        "'*' goes only at the start or end",
        id="star-inside-word",
    ),
    pytest.param(
        _set(["cues", "future", 0], False),
        "stories[0].cues.future[0]",
        "put the term in quotes",
        id="yaml-no-read-as-false",
    ),
    pytest.param(
        _set(["cues", "futur"], ["demain"]),
        "stories[0].cues.futur",
        "did you mean 'future'",
        id="unknown-cue-kind",
    ),
    pytest.param(
        _set(["modality"], ["will"]),
        "stories[0].modality",
        "shared language cues",
        id="modality-moved-to-cues",
    ),
    pytest.param(
        _set(["milestones", "unveiling", "tense"], "future"),
        "stories[0].milestones.unveiling.tense",
        "tense is 'past'",
        id="unknown-tense",
    ),
    pytest.param(
        _set(["milestones", "unveiling", "when"], [{"event": ["x"]}]),
        "stories[0].milestones.unveiling.event",
        "goes inside each case",
        id="event-beside-when",
    ),
    pytest.param(
        _set(["milestones", "site_selection"], {"when": []}),
        "stories[0].milestones.site_selection.when",
        "a list of cases",
        id="when-empty",
    ),
    pytest.param(
        _set(["milestones", "site_selection"], {"when": [{"all": [["site"]]}]}),
        "stories[0].milestones.site_selection.when[0].event",
        "missing 'event'",
        id="case-without-event",
    ),
    pytest.param(
        _set(["milestones", "site_selection"], {"tense": "soon", "when": [{"event": ["x"]}]}),
        "stories[0].milestones.site_selection.tense",
        "tense is 'past'",
        id="shared-key-reported-at-the-milestone",
    ),
    pytest.param(
        _set(["milestones", "site_selection", "with"], "site"),
        "stories[0].milestones.site_selection.with",
        "'with' is a list of groups",
        id="with-not-a-list",
    ),
    pytest.param(
        _set(["watch", "none", 0], "... museum"),
        "stories[0].watch.none[0]",
        "'...' goes between two words",
        id="gap-at-start",
    ),
    pytest.param(
        _set(["watch", "none", 0], "re:(museum)"),
        "stories[0].watch.none[0]",
        "use (?:...)",
        id="capturing-group",
    ),
    pytest.param(
        _set(["watch", "none", 0], "re:x*"),
        "stories[0].watch.none[0]",
        "matches empty text",
        id="regex-matches-empty",
    ),
    pytest.param(
        _set(["watch", "none", 0], "re:a(?i)b"),
        "stories[0].watch.none[0]",
        "invalid regular expression",
        id="inline-flag-mid-pattern",
    ),
    pytest.param(_set(["id"], "Demo Story"), "stories[0].id", "lowercase", id="id-with-spaces"),
    pytest.param(
        _set(["watch"], {"none": ["x"]}),
        "stories[0].watch.all",
        "needs 'all' or 'any'",
        id="watch-without-groups",
    ),
    pytest.param(
        _set(["milestones", "unveiling", "event"], {"all": [["a"]], "some": 1}),
        "stories[0].milestones.unveiling.event.some",
        "unknown key 'some'",
        id="event-groups-unknown-key",
    ),
]


@pytest.mark.parametrize(("breakage", "key", "message"), BROKEN)
def test_config_errors_name_the_field(
    breakage: Callable[[dict[str, Any]], None], key: str, message: str
) -> None:
    """Each kind of mistake is a ConfigError whose key is the dotted path of the field."""
    story = copy.deepcopy(minimal())
    breakage(story)
    with pytest.raises(ConfigError) as caught:
        compile_stories([story])
    assert caught.value.key == key
    assert message in caught.value.message


def test_cases_inherit_the_milestones_shared_keys() -> None:
    """Under `when`, each case is compiled on its own, inheriting `about`, `tense`, `none`."""
    story = minimal()
    story["milestones"]["site_selection"] = {
        "about": "$thing",
        "tense": "any",
        "none": ["replica"],
        "when": [
            {"event": ["chosen"], "all": [["site"]], "tense": "past"},
            {"event": ["placed"], "with": [["square"]]},
        ],
    }
    (compiled,) = compile_stories([story])
    site = compiled.milestone("site_selection")
    assert site is not None
    first, second = site.cases
    assert first.path == "milestones.site_selection.when[0]"
    assert (first.tense, second.tense) == ("past", "any")
    assert [g.path for g in second.near] == ["milestones.site_selection.when[1].with[0]"]
    assert all(
        c.about is not None and c.about.terms == ("monument*", "памятник*") for c in site.cases
    )
    assert all(c.exclude is not None and c.exclude.terms == ("replica",) for c in site.cases)


def test_language_cues_are_built_in_extended_at_the_top_and_replaced_per_story() -> None:
    """Every story reads the built-in cues; top-level `cues` add words, a story's replace them."""
    plain = minimal()
    del plain["cues"]
    (built_in,) = compile_stories([plain])
    future = built_in.cues.of("future")
    assert future is not None
    assert {"will", "будет", "예정"} <= set(future.terms)
    (extended,) = compile_stories([plain], cues={"future": ["demain"]})
    extended_future = extended.cues.of("future")
    assert extended_future is not None
    assert extended_future.terms[-1] == "demain"
    assert set(future.terms) < set(extended_future.terms)
    (own,) = compile_stories([minimal()], cues={"future": ["demain"]})
    own_future = own.cues.of("future")
    assert own_future is not None
    assert own_future.terms == ("will",)
    negation = own.cues.of("negation")
    assert negation is not None
    assert negation.terms == ("не",)


def test_top_level_cue_errors_name_the_key() -> None:
    """A mistake in the top-level `cues` is reported at `cues.<kind>[i]`."""
    with pytest.raises(ConfigError) as caught:
        compile_stories([minimal()], cues={"negation": ["ok", "x*y"]})
    assert caught.value.key == "cues.negation[1]"


def test_alternations_share_beginnings_and_still_name_each_term() -> None:
    """Terms with a common beginning are matched through one trie and still told apart."""
    group = one_group("памятник*", "памятн* знак*", "пам'ятник*", "re:памят[ь]", "north korea*")
    assert group.watch.groups[0].source.count("п(?<!\\w.)ам") == 1  # one branch for all three
    text = normalize("Памятный знак, памятнику, Пам’ятник, память, North Korean")
    found = [
        (text[s:e], group.watch.groups[0].terms[i]) for s, e, i in group.watch.groups[0].hits(text)
    ]
    assert found == [
        ("памятный знак", "памятн* знак*"),
        ("памятнику", "памятник*"),
        ("пам'ятник", "пам'ятник*"),
        ("память", "re:памят[ь]"),
        ("north korean", "north korea*"),
    ]


def test_a_text_in_one_alphabet_is_searched_with_that_alphabets_terms() -> None:
    """`hits(text, scripts)` finds the same as `hits(text)`, whatever the alphabets."""
    group = one_group("monument*", "памятник*", "기념비", "北", "re:\\d{4}").watch.groups[0]
    for raw in ["Monument 1943", "памятник и monument", "기념비 北 2025", "nothing here"]:
        text = normalize(raw)
        assert group.hits(text, scripts_of(text)) == group.hits(text)


def test_duplicate_story_ids_are_rejected_at_the_second() -> None:
    """Two stories with one id: the error points at the second one's id."""
    with pytest.raises(ConfigError) as caught:
        compile_stories([minimal(), minimal()])
    assert caught.value.key == "stories[1].id"
    assert "also stories[0]" in caught.value.message


@pytest.mark.parametrize("raw", [None, [], {"id": "x"}, "stories"], ids=repr)
def test_stories_must_be_a_non_empty_list(raw: object) -> None:
    """Anything but a non-empty list of stories is an error at `stories`."""
    with pytest.raises(ConfigError) as caught:
        compile_stories(raw)
    assert caught.value.key == "stories"


def test_the_key_prefix_follows_the_caller() -> None:
    """compile_stories(raw, key=...) roots every error path where the caller loaded it."""
    story = minimal()
    del story["name"]
    with pytest.raises(ConfigError) as caught:
        compile_stories([story], key="config.stories")
    assert caught.value.key == "config.stories[0].name"


TERMS = [
    ("памятник*", "установили памятника", True),
    ("памятник*", "памятнику", True),
    ("памятник*", "непамятник", False),
    ("museum", "museums", False),
    ("museum*", "museums", True),
    ("기념비", "기념비를 세웠다", True),
    ("기념비", "기념비가", True),
    ("기념비", "참전기념비", False),
    ("*기념관", "전투위훈기념관을", True),
    ("北", '北 "항일유격대원', True),
    ("北", "北京", False),
    ("north korea*", "North-Korean troops", True),
    ("north korea*", "north   korean", True),
    ("site chosen", "site, chosen", False),
    ("парк* патриот", "в парке «Патриот»", True),
    ("пам'ятник*", "Пам’ятника", True),
    ("пам'ятник*", "Памʼятник", True),
    ("еще не", "ещё не", True),
    ("ещё не", "еще не", True),
    ("kursk", "ＫＵＲＳＫ", True),
    ("kursk", "Kur\u00adsk", True),
    ("monument ... pyongyang", "monument in the capital pyongyang", True),
    ("monument ... pyongyang", "monument one two three four five pyongyang", False),
    ("monument ... pyongyang", "monument, said pyongyang", False),
    ("re:\\d{4} год", "в 1943 году", True),
    ("re:\\d{4} год", "в 43 году", False),
    ("re:КНДР", "кндр", True),
    ("in ... square", "in the central square", True),
    ("in ... square", "in kursk with monuments and street square", False),
    ("in ... square", "in kursk и square", False),
]


@pytest.mark.parametrize(("term", "text", "matches"), TERMS, ids=[f"{t}|{x}" for t, x, _ in TERMS])
def test_term_syntax(term: str, text: str, matches: bool) -> None:
    """Wildcards, Korean particles, phrases, gaps, regexes and typography behave as documented."""
    group = one_group(term).watch.groups[0]
    assert group.search(normalize(text)) is matches


def test_a_list_inside_a_phrase_means_any_of_its_terms() -> None:
    """`$name` inside a phrase matches any one term of that list at that place."""
    story = compile_stories(
        [
            {
                "id": "t",
                "name": "t",
                "lists": {"where": ["in pyongyang", "в пхеньяне"]},
                "watch": {"any": ["statue ... $where"]},
            }
        ]
    )[0]
    group = story.watch.groups[0]
    assert group.search("a statue of soldiers in pyongyang")
    assert group.search("statue в пхеньяне")
    assert not group.search("statue in moscow")


def test_hits_name_the_term_that_matched() -> None:
    """Each hit carries the index of the term it matched, in config order."""
    group = one_group("alpha", "be*", "*ta", "re:g[a-z]+a").watch.groups[0]
    text = "alpha beta zeta gamma"
    assert [(text[s:e], group.terms[i]) for s, e, i in group.hits(text)] == [
        ("alpha", "alpha"),
        ("beta", "be*"),
        ("ta", "*ta"),
        ("gamma", "re:g[a-z]+a"),
    ]


def test_compiled_stories_cross_a_process_boundary() -> None:
    """Stories pickle (the parse worker receives them so) and judge the same after."""
    raw = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    stories = compile_stories(raw["stories"])
    copied = pickle.loads(pickle.dumps(stories))
    text = ("Хинштейн: памятник бойцам КНДР разместят в сквере на Интернациональной", "")
    assert classify(*text, copied) == classify(*text, stories)
    assert classify(*text, copied).milestone == "site_selection"
