"""The password policy (SPEC §14): at least 10 characters and not easily guessed, by zxcvbn's estimate.

One rule wherever a password is set: `flask users create`, accepting an invitation, the account page."""
from __future__ import annotations

import re

from zxcvbn import zxcvbn

from webapp.services import validation

MIN_LENGTH = 10
MAX_LENGTH = 1000  # the login form's limit: a longer password could never be typed in again
MIN_SCORE = 3  # zxcvbn: 3 = "safely unguessable: moderate protection from offline slow-hash scenario" (~10^8 guesses)
# zxcvbn's matching grows quickly with length, and its Python port refuses more than 72 characters. A longer password
# is judged by its first 72: that prefix has to be guessed before the rest, so its strength is a lower bound.
ESTIMATED_PREFIX = 72
# Words anyone guessing a password here would try first.
SITE_WORDS = ("agent", "studio", "agentstudio", "experiment", "experiments")


def problem(password, user_inputs: tuple[str, ...] = ()) -> str | None:
    """Why `password` is refused, in a sentence for its field, or None when it is good enough.

    `user_inputs` are words of the account (its email, the workspace): a password built from them is weak."""
    if not isinstance(password, str) or len(password) < MIN_LENGTH:
        return f"Password needs at least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"Password must be at most {MAX_LENGTH} characters."
    if surrogate := validation.LONE_SURROGATE_RE.search(password):  # it is hashed as UTF-8
        return validation.not_unicode("Password", surrogate.group())
    words = _inputs(user_inputs)
    # zxcvbn rates a few of these words strung together (owner-acme-test) as strong: they are the first guess.
    letters = re.findall(r"[^\W\d_]+", password.lower())
    if letters and all(word in words for word in letters):
        return ("Password is too easy to guess. It is made of words of your email address, your workspace or this "
                "site. Add another word or two. Uncommon words are better.")
    estimate = zxcvbn(password[:ESTIMATED_PREFIX], user_inputs=words)
    if estimate["score"] >= MIN_SCORE:
        return None
    feedback = estimate["feedback"]
    reasons = [feedback.get("warning") or ""] + list(feedback.get("suggestions") or [])
    reasons = [reason for reason in reasons if reason.strip()] or ["Add another word or two. Uncommon words are better."]
    return "Password is too easy to guess. " + " ".join(_sentence(reason) for reason in reasons)


def _inputs(user_inputs: tuple[str, ...]) -> list[str]:
    """The given words, and the parts of each (an email's name and domain words), lower-cased."""
    words: list[str] = list(SITE_WORDS)
    for value in user_inputs:
        if isinstance(value, str) and value:
            words.append(value.lower())
            words.extend(part for part in re.split(r"[@.\-_+\s]+", value.lower()) if len(part) >= 3)
    return words


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."
