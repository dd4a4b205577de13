"""The legal bases a request may rest on, and the sworn statements each one requires.

The wording is versioned: a case records which version its requester agreed to, so the text can
change without rewriting what anyone swore to.
"""

from __future__ import annotations

from django.db import models

STATEMENTS_VERSION = "2026-11"

STATEMENTS: dict[str, str] = {
    "owner_or_agent": (
        "I am the owner of the content named in this request, or I am authorised to act for "
        "the owner."
    ),
    "subject_or_agent": (
        "I am the person this content is about, or I am authorised to act for them."
    ),
    "good_faith": (
        "I believe in good faith that the publication of this content by the aggregator is not "
        "authorised by its owner, the owner's agent, or the law."
    ),
    "accurate": (
        "The information in this request is accurate, and I understand that a knowingly false "
        "request may be recorded against me and may lead to my requests being refused."
    ),
}


class Basis(models.TextChoices):
    COPYRIGHT = "copyright", "Copyright: I own this content or act for the owner"
    PRIVACY = "privacy", "Privacy: this content is about me"
    DEFAMATION = "defamation", "Defamation: this content makes false claims about me"
    OTHER = "other", "Other: the owner does not want it republished"


REQUIRED_STATEMENTS: dict[str, tuple[str, ...]] = {
    Basis.COPYRIGHT: ("owner_or_agent", "good_faith", "accurate"),
    Basis.PRIVACY: ("subject_or_agent", "good_faith", "accurate"),
    Basis.DEFAMATION: ("subject_or_agent", "good_faith", "accurate"),
    Basis.OTHER: ("owner_or_agent", "accurate"),
}
