"""The part of Kinde's Management API this function uses, as a narrow port: the layer's client
(``planguard.kinde_management``) is one, and the tests' fake Kinde another."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from planguard.kinde_management import KindeRejected, get_management_api

__all__ = ["AgreementLike", "KindeRejected", "ManagementApi", "OrganizationLike", "get_management_api"]


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
