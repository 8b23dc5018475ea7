"""The reports' pure parts: key terms, the grouping of callers' words, percentiles, CSV cells."""

from __future__ import annotations

from app.reports import similarity
from app.reports.export import _cell


def test_key_terms_drop_little_words_and_meet_across_forms() -> None:
    assert set(similarity.key_terms("my late husband's account")) == {"lat", "husband", "account"}
    assert similarity.key_terms("Account of my HUSBAND who died!") == {
        "account": "account",
        "husband": "husband",
        "died": "died",
    }
    assert similarity.key_terms("I want a mortgage, please") == {"mortgag": "mortgage"}
    forms = ["charge", "charged", "charges", "charging"]
    assert {similarity.stem(word) for word in forms} == {"charg"}
    assert similarity.stem("husbands") == similarity.stem("husband's") == "husband"
    assert similarity.key_terms("hello? yes, I need to talk to someone") == {}


def test_the_issues_words_group_together_and_apart_from_a_mortgage() -> None:
    words = [
        "my late husband's account",
        "I want a mortgage",
        "account of my husband who died",
        "ok, thanks",
    ]
    groups = similarity.group(words)
    assert [g.members for g in groups] == [[0, 2], [1]]
    assert groups[0].label() == ["account", "husband", "died"]


def test_single_link_joins_through_a_middle_utterance_only_over_the_threshold() -> None:
    words = ["card lost abroad", "card lost", "card stolen", "lost abroad"]
    # {card, lost} is alike to both others (2/3); {card, stolen} shares 1 of 3 with {card, lost}.
    groups = similarity.group(words)
    assert sorted(sorted(g.members) for g in groups) == [[0, 1, 3], [2]]
    assert similarity.jaccard(frozenset("ab"), frozenset("bc")) == 1 / 3


def test_many_utterances_sharing_a_common_term_are_still_grouped_alike() -> None:
    words = [f"account topic{i} detail{i}" for i in range(300)] + ["account topic7 detail7"] * 3
    groups = similarity.group(words)
    assert len(groups) == 300
    assert len(groups[0].members) == 4 and groups[0].label() == ["account", "detail7", "topic7"]


def test_csv_cells_never_start_a_formula() -> None:
    assert _cell("=1+1") == "'=1+1"
    assert _cell("@SUM(A1)") == "'@SUM(A1)"
    assert _cell("-2") == "'-2"
    assert _cell(-2) == "-2" and _cell(None) == "" and _cell("fine") == "fine"
