"""Messages that are not support questions: greetings, thanks, and requests no help center
answers (poems, general knowledge, homework). They get one polite line, without retrieval or
the model, so the assistant never writes a poem or names a capital city on a company's site."""

from __future__ import annotations

import re

_GREETING = re.compile(
    r"^\s*(?:hi+|hello|hey+|hiya|howdy|yo|good\s+(?:morning|afternoon|evening|day)|greetings|"
    r"hallo|guten\s+tag|bonjour|salut|hola|buenos\s+d[ií]as)"
    r"(?:\s+(?:there|all|team|everyone|again))?[\s!.,:)]*$",
    re.I,
)
_THANKS = re.compile(
    r"^\s*(?:(?:ok(?:ay)?|great|perfect|cool|awesome|got\s+it)[\s,!.]*)?"
    r"(?:thanks?(?:\s+you)?(?:\s+(?:so|very)\s+much)?|thank\s+you(?:\s+(?:so|very)\s+much)?|thx|"
    r"ty|cheers|danke(?:\s+schön)?|merci(?:\s+beaucoup)?|gracias)"
    r"(?:\s+(?:a\s+lot|again|for\s+(?:the|your)\s+help))?[\s!.,:)]*$",
    re.I,
)
_OFF_TOPIC = [
    # Creative writing and entertainment.
    r"\b(?:write|compose|create|make\s+up|give\s+me|tell\s+me|sing)\s+(?:me\s+)?(?:a|an|some|one)?\s*"
    r"(?:short\s+|funny\s+|little\s+)?(?:poem|story|song|joke|essay|haiku|limerick|rap|riddle|"
    r"novel|lyrics|screenplay|tweet)s?\b",
    r"\btell\s+me\s+(?:a\s+)?(?:joke|story|fun\s+fact)\b",
    # General knowledge and trivia.
    r"\bwhat(?:'s|\s+is)\s+the\s+(?:capital|population|currency|tallest|largest|biggest|"
    r"longest|meaning\s+of\s+life)\b",
    r"\bcapital\s+(?:city\s+)?of\b",
    r"\bwho\s+(?:is|was|were)\s+(?:the\s+)?(?:president|prime\s+minister|king|queen|chancellor|"
    r"inventor|first\s+man|author\s+of|richest)\b",
    r"\bwho\s+(?:won|invented|discovered|wrote|painted)\b",
    r"\bwhat(?:'s|\s+is)\s+the\s+weather\b|\bweather\s+(?:forecast|today|tomorrow)\b",
    r"\b(?:stock\s+price|lottery|horoscope)\b",
    # Homework, code and arithmetic.
    r"^\s*(?:what\s+is\s+|calculate\s+|compute\s+|solve\s+)?\d+(?:\.\d+)?\s*[-+*/x\u00d7\u00f7^]\s*\d+"
    r"(?:\.\d+)?\s*[=?]*\s*$",
    r"\b(?:solve|calculate|compute)\s+(?:this|the|my)?\s*(?:equation|integral|derivative|math)\b",
    r"\b(?:write|generate|debug|fix)\s+(?:me\s+)?(?:a\s+|some\s+|this\s+|my\s+)?"
    r"(?:python|javascript|java|sql|c\+\+|rust|go|bash|html|css)?\s*"
    r"(?:code|program|script|function|regex|query)\b",
    r"\btranslate\s+.+\s+(?:into|to)\s+[a-z]+\b",
    r"\b(?:recipe|cook|bake)\s+(?:for|a|an|me)\b",
    r"\bwhat\s+do\s+you\s+think\s+(?:about|of)\s+(?:politics|religion|the\s+election)\b",
]
_OFF_TOPIC_RE = re.compile("|".join(f"(?:{p})" for p in _OFF_TOPIC), re.I)


def classify(message: str) -> str:
    """greeting, thanks, off_topic, or "" for a message that may be a support question."""
    text = (message or "").strip()
    if not text:
        return ""
    if _GREETING.match(text):
        return "greeting"
    if _THANKS.match(text):
        return "thanks"
    if _OFF_TOPIC_RE.search(text):
        return "off_topic"
    return ""
