"""Request models: trimmed text, 1-200 characters, no control characters."""

from __future__ import annotations

import re
from typing import Annotated

from planguard.keys import normalise_account_number
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

MAX_TEXT = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")  # JSON's "\ud800" escapes decode to lone surrogates


def _clean(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    if len(value) > MAX_TEXT:
        raise ValueError(f"must be at most {MAX_TEXT} characters")
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    if _SURROGATE.search(value):  # not text: it cannot be hashed, stored or sent back as UTF-8
        raise ValueError("must be valid Unicode text (no lone surrogates)")
    return value


def _number(value: str) -> str:
    """An account number must keep something once spaces and hyphens go (the duplicate guard
    compares that normalised form), e.g. not " - - "."""
    if not normalise_account_number(value):
        raise ValueError("must contain more than spaces and hyphens")
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
