"""The accounts use cases: where the caller's Kinde entitlement meets the store.

Whose accounts: the signed-in user's, or, when Kinde bills organizations, the organization the
user is signed in to (``planguard.organizations``: its members share the accounts, the count, the
hold and the limit, which comes from the Management API; who may not act is refused there).
Every route of AccountsFunction is one call here. An add is decided by the layer in one call
(``planguard.add_decision.decide_add``: the entitlement, the write, the re-read, the hold's
replacement, the refusal); here its outcome becomes metrics and the answer. The reads (list,
``/usage``) show the counter against the entitlement (``planguard.limit_rule.shown_limit``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from planguard.accounts_store import Account, AccountRepository, Page, get_repository
from planguard.add_decision import Added, Customer, EntitlementSource, Refused, Unavailable, decide_add
from planguard.auth import Principal
from planguard.entitlements import Entitlement, KindeAccountApi, get_account_api
from planguard.errors import EntitlementUnavailable, UserDeleted
from planguard.limit_rule import excess, shown_limit
from planguard.parallel_reads import join, start
from planguard.settings import FEATURE_KEY, get_settings
from planguard.usage_counter import Counter, UsageCounter

from accounts_api.cold_overlap import Prefetched
from accounts_api.idempotency import IdempotencyTable, request_data

if TYPE_CHECKING:  # organization mode's module is imported when a deployment serves organizations
    from planguard.organizations import Member, OrganizationEntitlements

logger = Logger()
metrics = Metrics()


@dataclass(frozen=True)
class NewAccount:
    name: str
    account_number: str


@dataclass(frozen=True)
class Acting:
    """Whom a request acts for: ``customer`` keys the accounts, the count, the hold and the limit
    (the user, or the organization they are signed in to); ``member``: the organization's member
    acting (None when the user is the customer)."""

    customer: Customer
    member: Member | None = None

    @property
    def author(self) -> str | None:
        """Who an account's ``createdBy``/``updatedBy`` names: the member, in organization mode."""
        return self.member.user_id if self.member else None

    def require_write(self) -> None:
        if self.member is not None:
            self.member.require_write()


@dataclass(frozen=True)
class _ByMember:
    """The store as the add decision writes to it, recording the member who adds."""

    store: AccountRepository
    member: str

    @property
    def usage(self) -> UsageCounter:
        return self.store.usage

    def create(
        self, user_id: str, name: str, account_number: str, limit: int | None, *, issued_at: int | None = None
    ) -> Account:
        return self.store.create(
            user_id, name, account_number, limit, created_by=self.member, issued_at=issued_at
        )


class AccountsService:
    """``deadline``: when the request's invocation ends (``time.monotonic()``; None outside
    Lambda), so a call to Kinde never outlives it."""

    def __init__(
        self,
        repository: AccountRepository,
        kinde: KindeAccountApi,
        idempotency: IdempotencyTable | None = None,
        organizations: OrganizationEntitlements | None = None,
    ) -> None:
        """``organizations``: organization mode (the repository then keeps organizations'
        accounts), whose limits come from there rather than from ``kinde``'s Account API."""
        self.repository = repository
        self.kinde = kinde
        self._idempotency = idempotency
        self.organizations = organizations
        self.source: EntitlementSource = organizations or kinde

    def acting(self, principal: Principal, deadline: float | None) -> Acting:
        """Whom the request acts for; 403 ``NO_ORGANIZATION`` in organization mode when the token
        names no organization that may be a customer."""
        if self.organizations is None:
            return Acting(Customer(principal.user_id, principal.token, principal.issued_at))
        from planguard.organizations import member  # noqa: PLC0415 - organization mode only

        found = member(
            principal.user_id, principal.token, principal.claims, deadline, source=self.organizations
        )
        return Acting(Customer(found.org_code, principal.token, principal.issued_at), found)

    # -- reads -------------------------------------------------------------------------------
    def list(
        self,
        principal: Principal,
        limit: int,
        cursor: str | None,
        deadline: float | None,
        prefetched: Prefetched = None,
    ) -> dict[str, Any]:
        """The page, the counter and the entitlement are independent reads: all three at once."""
        customer = self.acting(principal, deadline).customer
        counter = start(self.repository.usage.shown, customer.id, principal.issued_at)
        entitlement = start(self._shown_entitlement, customer, deadline, prefetched)
        try:
            page: Page = self.repository.list_page(customer.id, limit, cursor)
        finally:
            join([counter, entitlement])
        return {
            "items": [account.to_json() for account in page.items],
            "usage": _usage(counter.result(), entitlement.result()),
            "nextCursor": page.next_cursor,
        }

    def get(self, principal: Principal, account_id: str, deadline: float | None = None) -> Account:
        return self.repository.get(self.acting(principal, deadline).customer.id, account_id)

    def usage(
        self, principal: Principal, deadline: float | None, prefetched: Prefetched = None
    ) -> dict[str, Any]:
        """``{used, limit, limitSource}``: the counter and the entitlement read at once; Kinde
        being down degrades the limit, never the answer."""
        usage: dict[str, Any] = self.usage_view(principal, deadline, prefetched)["tracked_accounts"]
        return usage

    def usage_view(
        self, principal: Principal, deadline: float | None, prefetched: Prefetched = None
    ) -> dict[str, Any]:
        """``GET /usage``'s answer: ``{"tracked_accounts": usage}``, and in organization mode
        ``organization: {code}``, its ``plan`` (null when unknown) and whether the caller
        ``canWrite`` (the page can read neither from Kinde's SDK)."""
        acting = self.acting(principal, deadline)
        entitlement = start(self._shown_entitlement, acting.customer, deadline, prefetched)
        try:
            counter = self.repository.usage.shown(acting.customer.id, principal.issued_at)
        finally:
            join([entitlement])
        view: dict[str, Any] = {"tracked_accounts": _usage(counter, entitlement.result())}
        if acting.member is not None and self.organizations is not None:
            view["organization"] = {"code": acting.member.org_code}
            view["plan"] = self._plan(acting.member.org_code, deadline)
            view["canWrite"] = acting.member.can_write
        return view

    # -- writes ------------------------------------------------------------------------------
    def add(
        self,
        principal: Principal,
        account: NewAccount,
        deadline: float | None,
        *,
        idempotency_key: str | None = None,
        prefetched: Prefetched = None,
    ) -> Account:
        """Create within the plan limit; with an ``Idempotency-Key`` a retry answers the first result.
        ``prefetched``: the entitlement as a cold container read it beside the key-set fetch."""
        self.acting(principal, deadline).require_write()
        if idempotency_key is None or self._idempotency is None:
            return self._add(principal, account, deadline, prefetched)
        request = request_data(principal.user_id, idempotency_key, account.name, account.account_number)
        stored = self._idempotency.run_once(
            self._add_request, request=request, deadline=deadline, principal=principal, prefetched=prefetched
        )
        return Account.from_json(stored)

    def update(
        self,
        principal: Principal,
        account_id: str,
        name: str | None,
        account_number: str | None,
        deadline: float | None = None,
    ) -> Account:
        acting = self.acting(principal, deadline)
        acting.require_write()
        return self.repository.update(acting.customer.id, account_id, name, account_number, acting.author)

    def delete(self, principal: Principal, account_id: str, deadline: float | None = None) -> None:
        acting = self.acting(principal, deadline)
        acting.require_write()
        self.repository.delete(acting.customer.id, account_id)

    # -- internals ---------------------------------------------------------------------------
    def _add_request(
        self, request: dict[str, Any], deadline: float | None, principal: Principal, prefetched: Prefetched
    ) -> dict[str, Any]:
        """The add as the idempotency table runs it: its stored answer is the account's JSON."""
        body = request["body"]
        new = NewAccount(body["name"], body["accountNumber"])
        return self._add(principal, new, deadline, prefetched).to_json()

    def _add(
        self, principal: Principal, account: NewAccount, deadline: float | None, prefetched: Prefetched
    ) -> Account:
        """The add, decided by the layer in one call; here only its outcome becomes metrics."""
        acting = self.acting(principal, deadline)
        author = acting.author
        outcome = decide_add(
            _ByMember(self.repository, author) if author else self.repository,
            self.source,
            acting.customer,
            account.name,
            account.account_number,
            feature_key=FEATURE_KEY,
            deadline=deadline,
            known=prefetched,
        )
        match outcome:
            case Added(account=created):
                metrics.add_metric(name="AccountsCreated", unit=MetricUnit.Count, value=1)
                return created
            case Refused(error=error):
                metrics.add_metric(name="LimitReached", unit=MetricUnit.Count, value=1)
                raise error
            case Unavailable(error=unavailable):
                self._unavailable(unavailable)

    def _entitlement(self, customer: Customer, deadline: float | None) -> Entitlement:
        try:
            return self.source.entitlement(customer.id, customer.token, FEATURE_KEY, deadline)
        except EntitlementUnavailable as error:
            self._unavailable(error)

    def _plan(self, org_code: str, deadline: float | None) -> str | None:
        """The organization's plan as Kinde bills it; None when Kinde cannot say right now."""
        assert self.organizations is not None
        try:
            return self.organizations.current_plan(org_code, deadline)
        except EntitlementUnavailable:
            return None

    @staticmethod
    def _unavailable(error: EntitlementUnavailable) -> NoReturn:
        metrics.add_metric(name="EntitlementErrors", unit=MetricUnit.Count, value=1)
        logger.warning("entitlement unavailable", extra={"detail": error.detail})
        raise error

    def _shown_entitlement(
        self, customer: Customer, deadline: float | None, prefetched: Prefetched
    ) -> Entitlement | None:
        """The entitlement a read shows; None when Kinde is unavailable."""
        try:
            if isinstance(prefetched, EntitlementUnavailable):
                self._unavailable(prefetched)
            if prefetched is not None:
                return prefetched
            return self._entitlement(customer, deadline)
        except EntitlementUnavailable:
            return None


def _usage(counter: Counter, entitlement: Entitlement | None) -> dict[str, Any]:
    """What a read shows of the usage; over the limit (a plan applied after the user added more)
    it also says how many to remove (``excess``). A user Kinde deleted sees nothing."""
    if counter.deleted:
        raise UserDeleted()
    if entitlement is None:
        return {"used": counter.count, "limit": None, "limitSource": "unavailable"}
    limit, source = shown_limit(entitlement.limit, entitlement.source, counter.hold_limit)
    over = excess(counter.count, limit)
    return {
        "used": counter.count,
        "limit": limit,
        "limitSource": source,
        **({"excess": over} if over else {}),
    }


@functools.cache
def service() -> AccountsService:
    """One per container: its clients, caches and idempotency table live across warm requests."""
    settings = get_settings()
    table = settings.idempotency_table_name
    idempotency = IdempotencyTable(table, settings.dynamodb_endpoint_url) if table else None
    organizations = None
    if settings.organizations:
        from planguard.organizations import get_organization_entitlements  # noqa: PLC0415

        organizations = get_organization_entitlements()
    return AccountsService(get_repository(), get_account_api(), idempotency, organizations)
