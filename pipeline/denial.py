"""Coding rule 2: finding the framings a quote names only to deny, doubt or call failed.

NegEx-style rules (as negspaCy applies them), over the sentences of a quote and each match of
a code's cue patterns (``configs/cues.toml``):

- **negation** before the cue, in its scope: from the trigger ("not", "never", "no", "didn't",
  "hardly", "failed to") to the end of its clause or ``SCOPE_WORDS`` words, whichever is first;
- **nobody**: a negated subject ("nobody", "no one", "none of us", "not a single partner")
  whose clause holds the cue ("Nobody on the council cared about the real-time feeds");
- **failure** after the cue, in its clause or sentence: "fell flat", "never materialized",
  "did not convince", "was not much help", "had no effect", "gave us no leverage";
- **doubt**: "I doubt", "skeptical", "no evidence that", "remains to be seen";
- **hope**: the cue under "we hoped", "was supposed to", "we told the board it would",
  followed by "but", "yet" or "instead" in the sentence;
- **next sentence**: the framing stated, then denied by the next sentence ("We told the
  board this would cut ER visits. It didn't.").

Pseudo-negations ("not only", "no longer", "never again", "no one falls through the cracks")
deny nothing; a counterfactual or problem statement in the sentence ("without it we could
not...", "before the exchange") makes a negation a problem statement, which coding rule 3
codes by the value it implies, so it is not a denial. For the rule-3 codes
(``FeatureSpec.denial_exempt``: care_coordination, timely_data) a plain negation is read as
such a problem statement too; only the other rules deny them.

A code is denied in a quote when every match of its cues is denied; the words that deny it
are kept, for ``framecode tag`` and the review reason.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .features import FeatureSpec, compiled_cues, cue_candidates, sentence_spans

SCOPE_WORDS = 8
"""How far a preceding negation reaches, in words, when no clause boundary comes first."""
UNSURE_RULES = frozenset({"hope", "doubt", "next sentence"})
NEAR_WORDS = 5
"""A denial within this many words of the cue is near; further, or in another sentence, is far."""

_I = re.IGNORECASE
_NEGATION = re.compile(
    r"\b(?:not|never|no|nothing|neither|nor|hardly|barely|cannot|without any|little to no|failed to|fails to|fail to)\b"
    r"|\b\w+n't\b", _I)
_NOBODY = re.compile(
    r"\b(?:nobody|no one|no-one|none of (?:us|them|the|our|their|those|these)|not (?:one|a single|a soul|many|much)"
    r"|few (?:people|partners|of us|of them|members|providers|agencies)"
    r"|no (?:partner|hospital|agency|provider|funder|legislator|board member|council member|one)s?)\b", _I)
_FAILURE = re.compile(
    r"\b(?:fell flat|falls? flat|flopped|backfired|fizzled|stalled|went nowhere|came to nothing|led nowhere"
    r"|(?:is|was|are|were)(?: not|n't) (?:\w+ )?what (?:got|convinced|brought|made|won|moved|persuaded|sold|did it|mattered|happened)"
    r"|(?:changed|did|meant|made|moved|showed|gave|brought|saved|proved|achieved|delivered|carries|carried|added) (?:\w+ )?(?:nothing|no such thing|none of)"
    r"|no such thing|not what (?:actually )?happened|sold nobody|convinced nobody|moved nobody|impressed nobody"
    r"|cost(?:s|ing)? (?:us |them |the \w+ )?(?:more|extra)|costs? (?:rose|went up|increased|climbed|grew)|more expensive"
    r"|failed(?! to (?:\w+ )?(?:see|notice|appreciate))"
    r"|never (?:\w+ ){0,2}?(?:materiali[sz]ed|showed up|came|happened|landed|arrived|paid off|took off|caught on|panned out"
    r"|added up|translated|delivered|worked|got off the ground|made (?:it|a difference|them see)|moved|mattered|convinced|persuaded"
    r"|resonated|helped|changed|budged|saved|reduced|cut|improved|used|looked|opened|read|came|gave|freed|arrived|find|found|saw|see"
    r"|bothered|confirmed|opened|once|did|got|reached|held)"
    r"|(?:did|does|do|has|have|had|was|were|is|are|would|could|will)(?: not|n't) (?:\w+ ){0,2}?(?:convince|persuade|pay off"
    r"|work(?:ed)? out|materiali[sz]e|move|budge|help|matter|happen|deliver|land|change|translate|add up|hold up|impress|resonate"
    r"|sway|win (?:over|anyone|anybody)|make (?:a|any|much|the) (?:\w+ )?(?:difference|case|dent)|produce|yield|result in|lead to"
    r"|reduce|save|improve|cut|lower|speed|interest|excite|care|use|need|want|show|give|bring|get us|drop|fall|decline|go down|shrink"
    r"|mean|understand|sign on|join|bother|budge|arrive|come|reach|find|free|stick|last|pan out|prove"
    r"|held up|moved|changed|helped|proven|proved|made|worked out|paid off|delivered|improved|reduced|budged|dropped|fallen|fell"
    r"|declined|meant|mattered|convinced|persuaded|happened|materiali[sz]ed|translated|shown|shifted|led|resulted)"
    r"|(?:was|were|is|are|has been|have been|proved|proven|turned out to be|ended up) (?:\w+ )?(?:not (?:\w+ )?|of )?"
    r"(?:little|no|not much|limited|zero|minimal) (?:real )?(?:help|use|value|interest|benefit|consequence|importance)"
    r"|(?:had|has|have|made|showed|produced|yielded|gave (?:us|them|anyone)|got (?:us|them)?|gained|bought (?:us)?) "
    r"(?:no|little|zero|not much|not any|nothing like the|none of the) (?:\w+ ){0,2}?(?:effect|impact|difference|influence"
    r"|leverage|traction|bearing|change|savings?|return|headway|purchase|credibility|interest|response|buy-in|sway)"
    r"|not much (?:help|use|good)|no help|no leverage|no traction|no difference|no better|not any better|no faster|no cheaper"
    r"|(?:turned out|proved|proven) (?:not|to be (?:wrong|illusory|false|a myth|unfounded|overstated|wishful|hollow|empty))"
    r"|(?:was|were|is|are) (?:largely |mostly |simply |quietly )?(?:ignored|shelved|abandoned|dropped|dismissed|overstated|overblown"
    r"|exaggerated|illusory|unproven|unfounded|wishful thinking)|gather(?:s|ed|ing)? dust|on a shelf"
    r"|(?:nobody|no one|few people|no partner) (?:\w+ ){0,2}?(?:used|looked at|read|opened|cared|noticed|asked|wanted|believed))\b", _I)
_DOUBT = re.compile(
    r"\b(?:(?:I|we|they|many|some|partners|the board) (?:still )?(?:doubt|question)(?:s|ed)?|doubtful|skeptic(?:al|s|ism)"
    r"|unconvinced|not (?:yet )?(?:convinced|sure|clear|certain|persuaded)|unclear (?:whether|if|that)|unproven"
    r"|no (?:real |hard |solid )?(?:evidence|proof|data|sign) (?:that|of|it|yet)|no idea (?:whether|if)"
    r"|remains? to be seen|(?:is|was|remains?) (?:an )?open question|questionable|yet to see|have yet to|has yet to)\b", _I)
_HOPE = re.compile(
    r"\b(?:hoped|hoping|expected|expecting|(?:was|were|is|are) supposed to|promised|promising|pitched|planned|assumed|thought"
    r"|believed|predicted|projected|counted on|banked on|bet|told (?:\w+ ){0,6}?(?:that )?(?:it|this|the \w+|we) would"
    r"|argued|claimed|imagined|anticipated|(?:was|were) meant to|intended)\b", _I)
_CLAIM = re.compile(
    r"\b(?:told|sold|pitch|pitched|the (?:idea|goal|promise|hope|plan|theory|pitch|point) (?:was|behind)|meant to|supposed to"
    r"|designed to|set up|agreed|collected|brought|presented|showed|demonstrated)\b", _I)
_CONTRAST = re.compile(r"\b(?:but|yet|however|instead|only to|though|although)\b", _I)
_NEXT_SENTENCE = re.compile(
    r"^\W*(?:(?:but|yet|however|sadly|unfortunately|in (?:practice|reality|the end|fact)|instead|alas|still|so far|to date)\W+)?"
    r"(?:(?:it|that|this|they|those|these|none of (?:it|that|this|them)|nothing|nobody|no one|the (?:numbers|data|results|evidence"
    r"|reality|savings|board|council|partners|hospitals?|funders?|legislators?))\b[^.!?;]{0,80}?"
    r"\b(?:not|never|no|nothing|nowhere|\w+n't|failed|fell flat|wrong|otherwise|different|doubt\w*|yet to)\b"
    r"|not (?:so|really|quite|once|at all)|no such luck|it did not|it didn't|that didn't|that never|nothing (?:came|happened|changed))", _I)
_PSEUDO = re.compile(
    r"\b(?:not only|not just|not simply|not merely|no longer|no more|never again|not least|no doubt|without (?:a )?doubt"
    r"|not to mention|nothing but|no question|no wonder|never been (?:better|easier|faster)|(?:can|could)(?: not|n't) (?:say enough"
    r"|overstate|imagine going back|be happier)|nothing short of|no small|not (?:a )?small|(?:no one|nobody|no (?:family|patient|client"
    r"|child|resident|person|one))(?: \w+){0,2} (?:falls?|fell|slips?|slipped|gets? lost|got lost|goes without|went without|waits?"
    r"|waited|has to wait|had to wait|is left out)|not (?:a )?single (?:family|patient|client|child|resident|person) (?:falls?|fell|slips?"
    r"|slipped|gets? lost|got lost|waits?|waited)|(?:no one|nobody|none of us|no partner|not one partner)(?: \w+){0,4}? (?:question|doubt"
    r"|dispute|argue|deny|denie|complain|disagree|object)\w*|(?:no|nothing)\b[^.;]{0,60}\b(?:the way|as much as|as well as|like)\b)\b", _I)
_COUNTERFACTUAL = re.compile(
    r"\b(?:without|unless|until|if|instead of|otherwise|lack(?:ed|s|ing)?|absence|before (?:we|the|this|that|our|sharing|data|it|then)"
    r"|used to|in the past|previously|had no (?:way|means|access|idea|view|window)|no way (?:to|of)|would(?: not|n't) have"
    r"|could(?: not|n't) (?:have|get|see|find|know|tell|reach|track|coordinate|follow|share|access)|(?:was|were)(?: not|n't) able"
    r"|unable|impossible)\b", _I)
_CLAUSE_END = re.compile(r"[;:()\u2014]|\s-\s|\b(?:but|yet|however|although|though|whereas|while|except|instead|because|so that|which|who)\b", _I)
# A text matching none of these can deny nothing: the scan skips it.
_ANY_DENIAL = re.compile(
    r"\b(?:not|never|no|nothing|neither|nor|hardly|barely|cannot|nobody|none|few|fail\w*|fell flat|flop\w*|doubt\w*|skeptic\w*"
    r"|unconvinced|unclear|unproven|hoped|expected|supposed|promised|ignored|shelved|dust|nowhere|little|yet)\b|n't\b", _I)


@dataclass(frozen=True)
class Denial:
    """Why a code is denied in a quote: the rule, the words that deny it, and whether they sit
    near the cue (same clause, within ``NEAR_WORDS`` words)."""

    code: str
    rule: str
    words: str
    near: bool

    @property
    def unsure(self) -> bool:
        """Whether the rules may be wrong: the denial sits far from the cue, or is read from a
        hope, a doubt or the next sentence."""
        return not self.near or self.rule in UNSURE_RULES


@dataclass(frozen=True)
class DenialScan:
    """Per quote and code, ``denied``: the quote names the code's cues, and every match is
    denied; ``reasons[i]`` holds a :class:`Denial` for each code denied in quote i."""

    denied: np.ndarray
    reasons: tuple[dict[str, Denial], ...]


def scan_denials(texts: Sequence[str], spec: FeatureSpec, code_ids: Sequence[str],
                 candidates: np.ndarray | None = None) -> DenialScan:
    """Find, for every quote and code with cue patterns, whether the quote names the code's
    cues only to deny them (see the module's rules). ``candidates`` (quotes x codes) limits
    the scan to those cells, e.g. the codes above their thresholds."""
    per_code = compiled_cues(spec, code_ids)
    exempt = np.array([code in spec.denial_exempt for code in code_ids])
    wanted = np.broadcast_to(np.array([bool(cues) for cues in per_code]), (len(texts), len(code_ids)))
    if candidates is not None:
        wanted = wanted & candidates
    wanted = wanted & np.array([bool(_ANY_DENIAL.search(text)) for text in texts], dtype=bool)[:, None]
    denied = np.zeros((len(texts), len(code_ids)), dtype=bool)
    reasons: list[dict[str, Denial]] = [{} for _ in texts]
    rows = np.flatnonzero(wanted.any(axis=1))
    per_row = [[texts[i][start:end] for start, end in sentence_spans(texts[i], min_words=1)] for i in rows]  # "It didn't." apart
    flat = [sentence for sentences in per_row for sentence in sentences]
    cues = [cue for group in per_code for cue in group]
    present = cue_candidates(flat, cues)
    first = np.cumsum([0] + [len(group) for group in per_code])
    at = 0
    for i, sentences in zip(rows, per_row):
        for k in np.flatnonzero(wanted[i]):
            verdicts = [
                _deny_match(sentence, match, sentences[n + 1] if n + 1 < len(sentences) else "", bool(exempt[k]))
                for n, sentence in enumerate(sentences)
                for j in range(first[k], first[k + 1]) if present[at + n, j]
                for match in cues[j].regex.finditer(sentence)
            ]
            if verdicts and None not in verdicts:
                denied[i, k] = True
                reasons[i][code_ids[k]] = Denial(code_ids[k], *min(verdicts, key=lambda v: (not v[2], len(v[1]))))
        at += len(sentences)
    return DenialScan(denied, tuple(reasons))


def _deny_match(sentence: str, match: re.Match, following: str, exempt: bool) -> tuple[str, str, bool] | None:
    """(rule, denying words, near) when this cue match is denied, else None."""
    text = _PSEUDO.sub(lambda m: " " * len(m.group()), sentence)
    start, end = match.start(), match.end()
    before, after = text[:start], text[end:]
    clause_before = _CLAUSE_END.split(before)[-1]
    clause_after = _CLAUSE_END.split(after)[0]
    problem = bool(_COUNTERFACTUAL.search(text))

    rest = text[start:]  # a failure may begin at the cue ("cost more")
    found = _FAILURE.search(rest)
    if found and not _CONTRAST.search(rest[: found.start()]):
        return "failure", found.group(), _words(rest[: found.start()]) <= NEAR_WORDS
    found = _last(_FAILURE, clause_before)
    if found and _words(clause_before[found.end():]) <= SCOPE_WORDS:
        return "failure", found.group(), _words(clause_before[found.end():]) < NEAR_WORDS
    found = _last(_DOUBT, before)
    if found and not _CONTRAST.search(before[found.end():]):
        return "doubt", found.group(), _words(before[found.end():]) < NEAR_WORDS
    found = _DOUBT.search(clause_after)
    if found:
        return "doubt", found.group(), _words(clause_after[: found.start()]) < NEAR_WORDS
    found = _last(_HOPE, before)
    if found and (contrast := _CONTRAST.search(after)):
        return "hope", f"{found.group()} ... {contrast.group()}", False
    if not problem:
        found = _last(_NOBODY, clause_before)
        if found:
            return "nobody", found.group(), _words(clause_before[found.end():]) < NEAR_WORDS
        found = _last(_NEGATION, clause_before)
        if found and not exempt and _words(clause_before[found.end():]) <= SCOPE_WORDS:
            return "negation", found.group(), _words(clause_before[found.end():]) < NEAR_WORDS
    following = _PSEUDO.sub(lambda m: " " * len(m.group()), following)
    found = _NEXT_SENTENCE.search(following)
    if not found and (_HOPE.search(text) or _CLAIM.search(text)):
        found = _FAILURE.search(following) or _DOUBT.search(following)
    if not found and (doubt := _DOUBT.search(following)) and _words(following[: doubt.start()]) < NEAR_WORDS:
        found = doubt
    if found:
        return "next sentence", found.group().strip(), False
    return None


def _last(pattern: re.Pattern, text: str) -> re.Match | None:
    last = None
    for last in pattern.finditer(text):
        pass
    return last


def _words(text: str) -> int:
    return len(text.split())
