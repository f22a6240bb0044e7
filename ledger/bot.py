"""The AI bot: its per-company configuration (FAQ answers and handoff phrases) and the
default responder, which is deterministic and offline.

The bot policy (workers/policies/bot.py) asks the responder what to do with each inbound
message of a conversation the bot owns: answer, or hand the customer to a person.
"""

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal, Protocol
from uuid import UUID

from ledger.base import LedgerAggregate
from ledger.errors import ValidationFailed
from ledger.ids import natural_id
from ledger.tenancy import check_name

DEFAULT_HANDOFF_PHRASES = ("human", "agent", "real person", "talk to someone", "a person", "representative")
MAX_FALLBACKS = 3  # the bot hands off instead of its third "I did not understand"
FAQ_MATCH = 0.6  # the share of a question's words a message must contain to match it
STOP_WORDS = frozenset(
    ("a", "an", "and", "are", "can", "do", "does", "for", "how", "i", "is", "it", "me", "my", "of", "on", "the")
    + ("to", "what", "when", "where", "which", "who", "you", "your")
)
GREETING = "Hi! I'm the virtual assistant. Ask me anything, or say 'agent' for a person."
FALLBACK = "Sorry, I did not understand. Could you rephrase, or say 'agent' for a person?"
HANDOFF = "Let me connect you with a person; someone will be with you shortly."


class BotConfig(LedgerAggregate):
    """Keyed by the company."""

    class Created(LedgerAggregate.Created):
        pass

    class FaqSet(LedgerAggregate.Event):
        entries: list[dict]  # [{question, answer}]
        handoff_phrases: list[str]

        def apply(self, config: "BotConfig") -> None:
            config.entries = self.entries
            config.handoff_phrases = self.handoff_phrases

    def __init__(self, company_id: str, actor: str) -> None:
        self.company_id = company_id
        self.entries: list[dict] = []
        self.handoff_phrases: list[str] = list(DEFAULT_HANDOFF_PHRASES)

    @staticmethod
    def id_for(company_id: str) -> UUID:
        return natural_id("bot-config", company_id)

    @classmethod
    def create(cls, company_id: str, actor: str) -> "BotConfig":
        return cls._create(cls.Created, id=cls.id_for(company_id), company_id=company_id, actor=actor)

    def set_faq(self, entries: list[dict], handoff_phrases: list[str], actor: str) -> None:
        self._record(self.FaqSet, actor, entries=entries, handoff_phrases=handoff_phrases)


@dataclass(frozen=True)
class Decision:
    action: Literal["reply", "handoff"]
    body: str
    intent: str  # greeting, faq, fallback or handoff
    reason: str | None = None


class Responder(Protocol):
    def respond(self, text: str, first_message: bool, fallbacks_so_far: int, config: BotConfig | None) -> Decision: ...


class OfflineResponder:
    """Hands off when asked for a person or after MAX_FALLBACKS misunderstandings; else answers
    from the FAQ, greets a new conversation, or says it did not understand."""

    def respond(self, text: str, first_message: bool, fallbacks_so_far: int, config: BotConfig | None) -> Decision:
        phrases = config.handoff_phrases if config is not None else DEFAULT_HANDOFF_PHRASES
        if asks_for_a_person(text, phrases):
            return handoff("the customer asked for a person")
        answer = faq_answer(text, config.entries if config is not None else [])
        if answer is not None:
            return Decision("reply", answer, "faq")
        if first_message:
            return Decision(
                "reply", "Hi! I'm the virtual assistant. Ask me anything, or say 'agent' for a person.", "greeting"
            )
        if fallbacks_so_far + 1 >= MAX_FALLBACKS:
            return handoff(f"the bot did not understand {MAX_FALLBACKS} times")
        return Decision(
            "reply", "Sorry, I did not understand. Could you rephrase, or say 'agent' for a person?", "fallback"
        )


def handoff(reason: str) -> Decision:
    return Decision("handoff", HANDOFF, "handoff", reason)


def words(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKC", text).casefold()
    return re.findall(r"[\w']+", folded)


def asks_for_a_person(text: str, phrases) -> bool:
    said = " " + " ".join(words(text)) + " "
    return any(f" {' '.join(words(phrase))} " in said for phrase in phrases if words(phrase))


def faq_answer(text: str, entries: list[dict]) -> str | None:
    """The answer of the question that the message covers best, if it covers enough of it."""
    said = set(words(text))
    best, best_score = None, 0.0
    for entry in entries:
        asked = {word for word in words(entry["question"]) if word not in STOP_WORDS} or set(words(entry["question"]))
        score = len(asked & said) / len(asked) if asked else 0
        if score > best_score:
            best, best_score = entry["answer"], score
    return best if best_score >= FAQ_MATCH else None


def check_faq(entries: list[dict], handoff_phrases: list[str] | None) -> tuple[list[dict], list[str]]:
    for index, entry in enumerate(entries):
        for field in ("question", "answer"):
            if not entry.get(field, "").strip():
                raise ValidationFailed.single(f"entries.{index}.{field}", "missing", f"{field} must not be blank")
    phrases = list(DEFAULT_HANDOFF_PHRASES) if handoff_phrases is None else handoff_phrases
    for index, phrase in enumerate(phrases):
        check_name(phrase, f"handoff_phrases.{index}")
    return [{"question": e["question"], "answer": e["answer"]} for e in entries], phrases


class BotCommands:
    """The Ledger's bot commands (self is the Ledger)."""

    def set_faq(self, principal, entries: list[dict], handoff_phrases: list[str] | None) -> tuple[BotConfig, int]:
        principal.require("admin")
        entries, phrases = check_faq(entries, handoff_phrases)

        def run() -> tuple[BotConfig, int]:
            config = self.bot_config(principal.company_id) or BotConfig.create(principal.company_id, principal.actor)
            config.set_faq(entries, phrases, principal.actor)
            return config, self.commit(config)

        return self.retry_on_conflict(run)

    def bot_config(self, company_id: str) -> BotConfig | None:
        return self.find(BotConfig, BotConfig.id_for(company_id))
