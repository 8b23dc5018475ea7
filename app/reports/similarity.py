"""Callers' own words grouped by the key terms they share: a plain method, no outside service.

1. Normalise: lower case; letters, digits and apostrophes only; a possessive 's dropped.
2. Drop stop words: the little words of any request ("my", "the", "want", "please").
3. Stem each word with a few suffix rules (husbands, husband's -> husband; charged, charges,
   charging -> charg), so that forms of one word meet.
4. Two utterances are alike when their sets of key terms overlap by at least THRESHOLD
   (Jaccard: shared terms over all terms of the two).
5. Groups are the connected sets of that likeness (single link): A with B and B with C puts
   A, B and C together.

Identical term sets are grouped first, and only sets that share one of their rarer terms are
compared (prefix filtering, which finds every pair over the threshold), so a month of
utterances costs far less than every pair.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

THRESHOLD = 0.5

_STOP_WORDS = """
    a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers herself him himself his how i i'd i'll i'm i've if in
    into is it it's its itself just let me more most my myself no nor not now of off on once
    only or other our ours ourselves out over own please same she should so some such than that
    the their theirs them themselves then there these they this those through to too under
    until up very was we were what when where which while who whom why will with would you
    your yours yourself yourselves hello hi hey yes yeah ok okay thanks thank need want wanted
    like talk speak someone somebody person help get got call calling calls phone phoning
    regarding re something thing things anyone dont don't cant can't im
"""
STOP_WORDS = frozenset(_STOP_WORDS.split())

_WORD = re.compile(r"[a-z0-9']+")


def stem(word: str) -> str:
    """A few suffix rules, enough for plurals and verb forms to meet; not a linguist's stemmer."""
    word = word.strip("'")
    if word.endswith("'s"):
        word = word[:-2]
    word = word.replace("'", "")
    for suffix, replacement, shortest in (
        ("sses", "ss", 5),
        ("ies", "y", 5),
        ("ing", "", 6),
        ("ed", "", 5),
        ("es", "e", 5),
        ("s", "", 4),
    ):
        if word.endswith(suffix) and len(word) >= shortest and not word.endswith("ss"):
            word = word[: len(word) - len(suffix)] + replacement
            break
    # charge, charged and charging all end as "charg".
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]
    return word


def key_terms(utterance: str) -> dict[str, str]:
    """The utterance's key terms: stem -> the word as the caller said it (first seen)."""
    terms: dict[str, str] = {}
    for raw in _WORD.findall(utterance.lower()):
        word = raw.strip("'")
        if not word or word in STOP_WORDS or len(word) < 2:
            continue
        base = word[:-2] if word.endswith("'s") else word
        if base in STOP_WORDS:
            continue
        terms.setdefault(stem(word), base.replace("'", ""))
    return terms


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


@dataclass
class Cluster:
    """One group: the indexes of its utterances, and how often each key term came up."""

    members: list[int] = field(default_factory=list)
    terms: Counter[str] = field(default_factory=Counter)
    words: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def label(self, size: int = 3) -> list[str]:
        """Its most frequent key terms, as callers said them."""
        common = sorted(self.terms.items(), key=lambda kv: (-kv[1], kv[0]))[:size]
        return [self.words[term].most_common(1)[0][0] for term, _ in common]


def group(utterances: Sequence[str], *, threshold: float = THRESHOLD) -> list[Cluster]:
    """Groups of alike utterances (indexes into utterances), largest first. An utterance with
    no key term at all is left out."""
    terms = [key_terms(u) for u in utterances]
    by_set: dict[frozenset[str], list[int]] = defaultdict(list)
    for index, found in enumerate(terms):
        if found:
            by_set[frozenset(found)].append(index)
    sets = list(by_set)
    parent = list(range(len(sets)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    # Prefix filtering: with the terms of each set in one order, rarest first, two sets alike
    # enough must share a term among the first len - ceil(threshold * len) + 1 of either. So
    # only those are indexed and probed, and a term most utterances hold is rarely looked up.
    frequency = Counter(term for key in sets for term in key)
    prefixes = []
    for key in sets:
        ordered = sorted(key, key=lambda term: (frequency[term], term))
        prefixes.append(ordered[: len(ordered) - math.ceil(threshold * len(ordered)) + 1])
    holding: dict[str, list[int]] = defaultdict(list)
    for i, prefix in enumerate(prefixes):
        for term in prefix:
            holding[term].append(i)
    for i, key in enumerate(sets):
        seen: set[int] = set()
        for term in prefixes[i]:
            for j in holding[term]:
                if j <= i or j in seen:
                    continue
                seen.add(j)
                if root(i) != root(j) and jaccard(key, sets[j]) >= threshold:
                    parent[root(j)] = root(i)

    clusters: dict[int, Cluster] = defaultdict(Cluster)
    for i, key in enumerate(sets):
        cluster = clusters[root(i)]
        for index in by_set[key]:
            cluster.members.append(index)
            for term, word in terms[index].items():
                cluster.terms[term] += 1
                cluster.words[term][word] += 1
    found_clusters = list(clusters.values())
    for cluster in found_clusters:
        cluster.members.sort()
    return sorted(found_clusters, key=lambda c: (-len(c.members), c.label(), c.members[0]))
