"""Request models: trimmed text, 1-200 characters, no control or bidirectional control characters."""

from __future__ import annotations

import re
from typing import Annotated

from planguard.keys import normalise_account_number
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

MAX_TEXT = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")  # JSON's "\ud800" escapes decode to lone surrogates
# Embeddings, overrides, isolates and marks reorder what a reader sees ("Trojan Source"): a name or
# number could display as another one.
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def _clean(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    if len(value) > MAX_TEXT:
        raise ValueError(f"must be at most {MAX_TEXT} characters")
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    if _BIDI.search(value):
        raise ValueError("must not contain bidirectional control characters")
    if _SURROGATE.search(value):  # not text: it cannot be hashed, stored or sent back as UTF-8
        raise ValueError("must be valid Unicode text (no lone surrogates)")
    return value


def _number(value: str) -> str:
    """An account number must keep something once spaces, dashes and invisible characters go (the
    duplicate guard compares that normalised form), e.g. not " - - " or a lone zero-width space."""
    if not normalise_account_number(value):
        raise ValueError("must contain more than spaces, dashes and invisible characters")
    return value


Text = Annotated[str, Field(strict=True), AfterValidator(_clean)]
AccountNumber = Annotated[Text, AfterValidator(_number)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=False)


class CreateAccountRequest(_Request):
    name: Text
    account_number: AccountNumber = Field(alias="accountNumber")


class UpdateAccountRequest(_Request):
    name: Text | None = None
    account_number: AccountNumber | None = Field(default=None, alias="accountNumber")

    @model_validator(mode="after")
    def _something_to_change(self) -> UpdateAccountRequest:
        if self.name is None and self.account_number is None:
            raise ValueError("give at least one of name, accountNumber")
        return self
