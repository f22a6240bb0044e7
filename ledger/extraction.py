"""Contact fields found in a message's text: a name the sender gives, an email address, a phone number.

Pure functions: the extraction policy (workers/policies/extraction.py) records what they find as
`Contact.FieldExtracted` events, each naming the message it came from and the method that found it.
At most one value per field per message: the first one in the text.
"""

import re
from dataclasses import dataclass

import phonenumbers
from email_validator import EmailNotValidError, validate_email

# Only a prefix of a message is searched, which bounds the work a hostile body can cause.
MAX_TEXT_CHARACTERS = 64 * 1024
MAX_EMAIL_CANDIDATES = 20
MAX_NAME_WORDS = 3

METHOD_EMAIL = "email-validator"
METHOD_PHONE = "phonenumbers"

# "my name is X", "I'm X", "I am X", "this is X": the trigger in any case, then the name in the
# words that follow it. A word is letters, maybe joined by an apostrophe or a hyphen (O'Brien, Mary-Jane).
_WORD = r"[^\W\d_]+(?:['’\-][^\W\d_]+)*"
NAME_PATTERN = re.compile(
    r"(?<![\w'’])(?P<trigger>(?i:my\s+name\s+is|i['’]m|i\s+am|this\s+is))"
    rf"[ \t]+(?P<words>{_WORD}(?:[ \t]+{_WORD}){{0,{MAX_NAME_WORDS}}})"
)
# What follows "I'm" or "this is" capitalized at times but is no name ("I'm Fine", "This is Urgent").
_NOT_NAME_WORDS = """
    fine good great ok okay well sure sorry glad happy sad here there back home out in on at from with about
    looking interested calling writing texting emailing trying having going getting working waiting wondering
    not so very just also still really too available busy ready done new the a an it this that what who
    yes no hi hello hey thanks thank please urgent important regarding re mr mrs ms miss dr sir madam i
"""
NOT_NAMES = frozenset(_NOT_NAME_WORDS.split())

# A candidate address: a local part of up to 64 characters that starts a token, "@", a domain of up to
# 9 labels that ends the token.
# The quantifiers are bounded and the classes do not overlap the separators, so matching stays linear.
EMAIL_CANDIDATE = re.compile(r"(?<![\w.+%'\-])[\w.+%'\-]{1,64}@[\w\-]{1,63}(?:\.[\w\-]{1,63}){1,8}(?!\.?[\w\-@])")


@dataclass(frozen=True)
class Extracted:
    field: str  # "name", "email" or "phone"
    value: str
    method: str


def extract_fields(text: str, default_region: str) -> list[Extracted]:
    """The name, email address and phone number the text gives, each at most once, in that order."""
    text = text[:MAX_TEXT_CHARACTERS]
    found = [extract_name(text), extract_email(text), extract_phone(text, default_region)]
    return [extracted for extracted in found if extracted is not None]


def extract_name(text: str) -> Extracted | None:
    for match in NAME_PATTERN.finditer(text):
        name = name_from(match.group("words").split())
        if name is not None:
            trigger = " ".join(match.group("trigger").lower().replace("’", "'").split())
            return Extracted("name", name, f"pattern:{trigger}")
    return None


def name_from(words: list[str]) -> str | None:
    """The capitalized words at the start (a name is 1 to 3 of them), or None when they are none or
    start with a word that is no name. A word in capitals (OK, USA, URGENT) or a lowercase one ends it."""
    name: list[str] = []
    for word in words:
        if not word[0].isupper() or (len(word) > 1 and word.isupper()) or word.lower() in NOT_NAMES:
            break
        name.append(word)
    if not name or len(name) > MAX_NAME_WORDS:  # more capitalized words than a name has: a title, not a name
        return None
    return " ".join(name)


def extract_email(text: str) -> Extracted | None:
    for index, match in enumerate(EMAIL_CANDIDATE.finditer(text)):
        if index >= MAX_EMAIL_CANDIDATES:
            break
        candidate = match.group().rstrip(".-")
        try:
            address = validate_email(candidate, check_deliverability=False)
        except EmailNotValidError:
            continue
        return Extracted("email", address.normalized, METHOD_EMAIL)
    return None


def extract_phone(text: str, default_region: str) -> Extracted | None:
    """The first valid number (phonenumbers' default leniency: POSSIBLE would take "555-1234" for
    +15551234, which no one can dial), in E.164."""
    for match in phonenumbers.PhoneNumberMatcher(text, default_region):
        if phonenumbers.is_possible_number(match.number):
            e164 = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
            return Extracted("phone", e164, METHOD_PHONE)
    return None
