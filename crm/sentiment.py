"""Sentiment of feedback: the customer's score and what they wrote, read together.

A middling score (rating 3, NPS 5-7) with "waited 40 minutes and nothing was
fixed" is a complaint: a team lead wants a recovery case for it. VADER alone
reads such texts as neutral (no "bad" words), so the text is first read for
complaint phrases (an unresolved fault, a repeat contact, a broken promise, a
long wait, a billing error, rudeness, wanting to leave). A complaint phrase
wins over any score, because praise for the agent does not fix the fault.
Without one, the score decides, and the text's tone (VADER) only when no score
was given or it is clearly at odds with a plain-praise text.

Measured on tests/data/feedback_labelled.csv (docs/sentiment.md).
"""

from __future__ import annotations

import re
from functools import lru_cache

POSITIVE, NEUTRAL, NEGATIVE = "positive", "neutral", "negative"

# Each pattern is a complaint on its own; matched case-insensitively on the text with apostrophes normalised.
COMPLAINT_PATTERNS: tuple[str, ...] = (
    # the problem is not solved
    r"\bstill (?:no|not|down|dropping|broken|wrong|waiting|there|getting|being|showing|cuts?|ongoing|hasn'?t|"
    r"haven'?t|isn'?t|doesn'?t|don'?t|can'?t|drops?|off|out|going on|charg\w*|nothing|the same)\b",
    r"\b(?:is|are|was) still\b",
    r"\bnothing (?:was|has been|has|got|is|had been) (?:fixed|changed|done|sorted|resolved|happened)\b",
    r"\bnot (?:fixed|resolved|sorted)\b",
    r"\b(?:isn'?t|wasn'?t|hasn'?t been|haven'?t been|never (?:got|been)) (?:fixed|resolved|sorted|solved)\b",
    r"\b(?:didn'?t|did not|couldn'?t|could not|can'?t|cannot|won'?t|wouldn'?t) (?:solve|fix|sort|resolve|help)\b",
    r"\bit (?:hasn'?t|didn'?t|doesn'?t)\b",
    r"\bkeeps? (?:coming back|dropping|happening|cutting|going)\b",
    r"\bsame (?:problem|fault|issue|thing)\b",
    r"\bwithout (?:my|a|any|gas|power|heating|internet|broadband|wifi|phone|signal|hot water|electric)",
    r"\bno (?:broadband|internet|wifi|signal|gas|power|heating|hot water|service|apology|reason|answer|one)\b",
    r"\bno-?one (?:showed|called|came|rang|turned|has|can|could|will|would|got|bothered)\b",
    r"\bnobody\b",
    r"\boutage\b",
    r"\bdisconnected\b|\bcut (?:me )?off\b|\bcutting my\b|\bcuts out\b|\bdrops? out\b",
    # repeat contact
    r"\b(?:second|third|fourth|fifth|sixth|2nd|3rd|4th|5th|\d+th) (?:time|call|engineer|visit|week|month|\"?final)",
    r"\b(?:two|three|four|five|\d+) (?:times|calls|weeks|days|months)\b",
    r"\b(?:again|another)\b.*\b(?:call|ring|bill|estimat|fault|engineer|escalat)|\bring again\b|\bcall(?:ing)? again\b",
    r"\bfrom scratch\b|\bexplain(?:ed|ing)? (?:it |everything )?(?:all )?again\b|\brepeat myself\b",
    r"\bhad to (?:chase|ring|call|explain|ask)\b|\bchas(?:e|ed|ing) (?:this|it|up|them)\b|\bbeing chased\b",
    r"\basked (?:twice|\d+ times|three times|again)\b|\bi'?ve asked\b",
    # broken promise
    r"\bpromis\w*\b|\bwas told\b|\btold me\b|\bthey said\b|\bsaid (?:they|it|he|she) would\b|\bmeant to\b",
    r"\bnever (?:got|came|called|rang|arrived|turned|happened|received|heard|showed)\b",
    r"\bno[- ]show\b|\bdidn'?t (?:turn up|show|arrive|come|call|ring|get)\b|\bnot (?:turned up|arrived|received)\b",
    r"\bcall ?back\b.*\b(?:never|not|no)\b|\b(?:never|not|no)\b.*\bcall ?back\b",
    r"\bcancel+ed the (?:appointment|visit|engineer)\b|\bcancel+ed (?:on me|by text)\b",
    # long wait or runaround
    r"\b(?:waited|waiting|wait(?:ing)? time|on hold|in the queue|queued|hold music)\b"
    r".*\b(?:\d+|hour|hours|ages|forever)\b",
    r"\b\d+ ?(?:mins?|minutes|hours?|hrs?)\b.*\b(?:hold|queue|wait)",
    r"\bhours?\b.*\b(?:on the phone|on hold|calls?)\b|\bfor ages\b|\bages\b",
    r"\btransferred (?:\w+ )?(?:times|twice|round|around|again)\b|\bpassed (?:round|around)\b|\bruns? ?around\b",
    r"\btimed out\b|\bgave up\b|\bhung up\b|\bclosed the chat\b|\blooping\b|\bgoing round in circles\b",
    # billing
    r"\bovercharg\w*|\bcharged (?:twice|me|for|an?)\b|\bbill(?:ed)? (?:is |was )?(?:still )?wrong\b|\bbilled for\b",
    r"\bbeing billed\b|\bestimated bill\b|\bdouble charg\w*|\brefund\b.*\b(?:not|never|still|yet)\b",
    r"\bgone up\b.*\b(?:nobody|no-one|why)\b|\bprice rise\b|\bdebt\b",
    r"\bcompensation\b.*\b(?:not|didn'?t|hasn'?t|still)\b",
    r"\btermination fee\b|\bdidn'?t get the\b",
    # rudeness, anger
    r"\brude\b|\bhung up on\b|\bpatroni[sz]\w*|\bdismissive\b|\bunprofessional\b|\bincompeten\w*",
    r"\bdisgrace\w*|\bappalling\b|\bterrible\b|\bawful\b|\bshocking\b|\bworst\b|\bridiculous\b|\bjoke\b|\buseless\b",
    r"\bfed up\b|\bnot happy\b|\bunhappy\b|\bannoy\w*|\bfurious\b|\bdisappoint\w*|\bunimpressed\b|\bfrustrat\w*",
    r"\bwaste of (?:time|money)\b|\bfor nothing\b|\bpointless\b|\bnot good enough\b|\bunacceptable\b",
    r"\bif i could give 0\b|\bzero stars?\b|\bdon'?t you keep notes\b|\bnobody read\b",
    # leaving
    r"\b(?:want|going|trying|looking) to (?:cancel|leave|switch)\b|\bmoving to\b|\bswitching to\b|\bi'?m leaving\b",
    r"\bcancel my (?:contract|account)\b|\bjust let me cancel\b",
    # sarcasm
    r"\bthanks? (?:a lot|for nothing)\b|\bcheers for\b|\bcan'?t wait for\b|\boh great\b",
)

# Phrases that look like a complaint but are not: stripped before the complaint patterns are read.
NOT_COMPLAINTS: tuple[str, ...] = (
    r"\bno complaints?\b(?! about (?:him|her|them)\b)",
    r"\bcouldn'?t fault\b|\bcan'?t fault\b|\bnot bad\b|\bno issues\b|\bno problems?\b|\bnever had a problem\b",
    r"\bnot unhappy\b|\bnot terrible\b",
    r"\bcall(?:ing)? me back when (?:he|she|they) said\b",
)

_COMPLAINT = re.compile("|".join(f"(?:{p})" for p in COMPLAINT_PATTERNS), re.IGNORECASE)
_NOT_COMPLAINT = re.compile("|".join(f"(?:{p})" for p in NOT_COMPLAINTS), re.IGNORECASE)
# Resolution words: a wait or a transfer that ended in a fix is not a complaint on its own.
_RESOLVED = re.compile(r"\b(?:sorted|fixed|resolved|got it done|done|in the end|eventually)\b", re.IGNORECASE)
_MILD = re.compile(r"\b(?:bit of a wait|took a while|transferred once|hold was about)\b", re.IGNORECASE)


@lru_cache(maxsize=1)
def _analyzer():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def complaint_phrase(text: str) -> str | None:
    """The first complaint phrase in the text, or None; shown to supervisors as the reason."""
    cleaned = _NOT_COMPLAINT.sub(" ", (text or "").replace("\u2019", "'"))
    if _MILD.search(cleaned) and _RESOLVED.search(cleaned):
        return None
    match = _COMPLAINT.search(cleaned)
    return match.group(0) if match else None


def score_band(*, rating: int | None, nps: int | None) -> float | None:
    """The customer's score in [-1, 1]: rating around 3, NPS detractor/passive/promoter; both given: their mean."""
    values = []
    if rating is not None:
        values.append((rating - 3) / 2)
    if nps is not None:
        values.append(1.0 if nps >= 9 else 0.0 if nps >= 7 else -1.0 + nps / 7)
    return sum(values) / len(values) if values else None


def classify(*, rating: int | None, nps: int | None, text: str) -> tuple[str, float]:
    """(sentiment, score in [-1, 1]) of one feedback; a complaint phrase makes it negative whatever the score."""
    text = (text or "").strip()
    score = score_band(rating=rating, nps=nps)
    tone = _analyzer().polarity_scores(text)["compound"] if text else None
    if text and complaint_phrase(text) is not None:
        return NEGATIVE, -1.0 if score is None else min(score, -0.5)
    if score is None:
        if tone is None:
            return NEUTRAL, 0.0
        return (POSITIVE if tone >= 0.3 else NEGATIVE if tone <= -0.3 else NEUTRAL), tone
    # Plain praise with a low score is a customer reading the scale backwards.
    if tone is not None and tone >= 0.6 and score < 0:
        return POSITIVE, tone
    if score >= 0.25:
        return POSITIVE, score
    if score <= -0.5:
        return NEGATIVE, score
    if tone is not None and score >= 0 and tone >= 0.6:
        return POSITIVE, (score + tone) / 2
    return NEUTRAL, score
