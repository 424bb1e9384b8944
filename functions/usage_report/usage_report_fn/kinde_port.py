"""The part of Kinde's Management API this function uses, as a narrow port (tests fake it).

TEMPORARY until the shared Management API client lands in the layer: then ``KindeRejected`` and
``get_management_api`` come from ``planguard.kinde_management``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol


class KindeRejected(Exception):
    """Kinde refused a Management API call with a 4xx other than 429: a retry cannot help."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Kinde answered {status}: {message}")
        self.status = status
        self.message = message


class AgreementLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def expires_on(self) -> datetime | None: ...


class OrganizationLike(Protocol):
    @property
    def billing_customer_id(self) -> str | None: ...


class ManagementApi(Protocol):
    def organization(self, code: str, deadline: float | None) -> OrganizationLike | None: ...
    def user_customer_id(self, user_id: str, deadline: float | None) -> str | None: ...
    def agreements(
        self, customer_id: str, feature_code: str, deadline: float | None
    ) -> Sequence[AgreementLike]: ...
    def meter_usage(
        self, agreement_id: str, feature_code: str, value: int, deadline: float | None
    ) -> None: ...


def get_management_api() -> ManagementApi | None:
    """None: no M2M client configured."""
    return None
