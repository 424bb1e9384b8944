"""Kinde webhooks: each answer of the verification and of our own checks, replays, stale and
future events, and two deliveries of one event racing each other."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import boto3
import jwt
import pytest
from planguard.accounts_store import get_repository
from planguard.usage_counter import get_usage_counter

from local.kinde import KindeStandIn, webhook_claims
from tests.support import USER, clear_caches, deliver_webhook, seed, sign_webhook, webhook_refusals

HOUR = 3600


def user_deleted(kinde: KindeStandIn, user: str = USER, **claims: Any) -> str:
    """A ``user.deleted`` body signed by the stand-in, with these claims changed (None: removed)."""
    payload = {**webhook_claims("user.deleted", {"user": {"id": user}}), **claims}
    payload = {name: value for name, value in payload.items() if value is not None}
    key = kinde.keys[-1]
    return jwt.encode(payload, key.private_key, algorithm="RS256", headers={"kid": key.kid})


def accounts_of(user: str = USER) -> int:
    return get_usage_counter().usage_count(user)


def delivery_record(event_id: str) -> dict[str, Any] | None:
    key = {"id": {"S": f"webhook#{hashlib.sha256(event_id.encode()).hexdigest()}"}}
    item: dict[str, Any] | None = (
        boto3.client("dynamodb").get_item(TableName="IdempotencyTable", Key=key).get("Item")
    )
    return item


def claims_of(body: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(body, options={"verify_signature": False})
    return claims


# -- replays ---------------------------------------------------------------------------------------
def test_a_captured_body_replayed_under_any_webhook_id_does_nothing(
    env: pytest.MonkeyPatch, aws: None, kinde: KindeStandIn
) -> None:
    seed(USER, 2)
    body = user_deleted(kinde)
    assert deliver_webhook(body, "msg_first").status == 200
    assert accounts_of() == 0
    seed(USER, 2)  # the user is back (a new sign-up with the same Kinde id)
    for webhook_id in ("msg_first", "msg_chosen_by_a_replayer", None):
        result = deliver_webhook(body, webhook_id)
        assert (result.status, result.body) == (200, {"received": True})
        assert accounts_of() == 2


def test_a_new_event_for_the_same_user_is_acted_on(
    env: pytest.MonkeyPatch, aws: None, kinde: KindeStandIn
) -> None:
    seed(USER, 1)
    assert deliver_webhook(user_deleted(kinde), "msg_1").status == 200
    seed(USER, 1)
    assert deliver_webhook(user_deleted(kinde), "msg_1").status == 200  # same header, new event_id
    assert accounts_of() == 0


def test_an_event_signed_73_hours_ago_is_ignored_and_logged(
    env: pytest.MonkeyPatch, aws: None, kinde: KindeStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    seed(USER, 2)
    body = kinde.sign_webhook("user.deleted", {"user": {"id": USER}}, age_seconds=73 * HOUR)
    result = deliver_webhook(body, "msg_stale")
    assert (result.status, result.body) == (200, {"received": True})  # a 4xx would make Kinde retry
    assert accounts_of() == 2
    assert "webhook ignored: older than the deduplication window" in caplog.messages
    assert delivery_record(claims_of(body)["event_id"]) is None
    # Just inside the window, the same user's event is acted on.
    fresh = kinde.sign_webhook("user.deleted", {"user": {"id": USER}}, age_seconds=71 * HOUR)
    assert deliver_webhook(fresh, "msg_71h").status == 200
    assert accounts_of() == 0


def test_an_event_signed_10_minutes_ahead_is_refused_and_records_nothing(
    env: pytest.MonkeyPatch, aws: None, kinde: KindeStandIn
) -> None:
    seed(USER, 2)
    body = kinde.sign_webhook(
        "user.deleted", {"user": {"id": USER}}, age_seconds=-600, event_id="event_ahead"
    )
    result = deliver_webhook(body, "msg_ahead")
    assert (result.status, result.error_code) == (400, "BAD_REQUEST")
    assert result.body["error"]["message"] == "The webhook's timestamp is in the future."
    assert accounts_of() == 2 and delivery_record("event_ahead") is None
    # A few minutes of clock skew is fine, and the same event_id is still free.
    skewed = kinde.sign_webhook(
        "user.deleted", {"user": {"id": USER}}, age_seconds=-240, event_id="event_ahead"
    )
    assert deliver_webhook(skewed, "msg_skewed").status == 200
    assert accounts_of() == 0


def test_the_record_outlives_the_window_of_the_event(
    env: pytest.MonkeyPatch, aws: None, kinde: KindeStandIn
) -> None:
    """Kept 72 h from the later of now and the signed time: an event signed ahead of our clock
    is still remembered until it is too old to act on."""
    before = time.time()
    ahead = kinde.sign_webhook("user.updated", {}, age_seconds=-240, event_id="event_skewed")
    now = kinde.sign_webhook("user.updated", {}, event_id="event_now")
    assert deliver_webhook(ahead).status == deliver_webhook(now).status == 200
    skewed_record, now_record = delivery_record("event_skewed"), delivery_record("event_now")
    assert skewed_record and now_record
    assert int(skewed_record["expiration"]["N"]) >= before + 240 + 72 * HOUR
    assert before + 72 * HOUR <= int(now_record["expiration"]["N"]) <= time.time() + 72 * HOUR + 1


# -- every answer, and nothing recorded on a refusal -----------------------------------------------
@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"type": None}, "The webhook must carry a type and an event_id."),
        ({"event_id": None}, "The webhook must carry a type and an event_id."),
        ({"event_id": ""}, "The webhook must carry a type and an event_id."),
        ({"type": 7}, "The webhook must carry a type and an event_id."),
        ({"timestamp": None}, "The webhook must carry its timestamp (ISO-8601)."),
        ({"timestamp": "yesterday"}, "The webhook must carry its timestamp (ISO-8601)."),
        ({"timestamp": 1767225600}, "The webhook must carry its timestamp (ISO-8601)."),
    ],
)
def test_a_signed_event_without_what_we_need_is_400_and_records_nothing(
    claims: dict[str, Any], message: str, env: pytest.MonkeyPatch, aws: None, kinde: KindeStandIn
) -> None:
    seed(USER, 1)
    body = user_deleted(kinde, **{"event_id": "event_incomplete", **claims})
    result = deliver_webhook(body, "msg_incomplete")
    assert (result.status, result.body) == (400, {"error": {"code": "BAD_REQUEST", "message": message}})
    assert accounts_of() == 1 and delivery_record("event_incomplete") is None


@pytest.mark.parametrize(
    "body",
    ["not-a-jwt", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.WzFd.c2ln", "eyJhbGciOiJSUzI1NiJ9.bnVsbA.c2ln"],
)
def test_a_body_that_is_not_a_jwt_is_400(body: str, env: pytest.MonkeyPatch, aws: None) -> None:
    result = deliver_webhook(body, "msg_garbage")
    assert (result.status, result.error_code) == (400, "BAD_REQUEST")
    assert set(result.body["error"]) == {"code", "message"}


def test_a_wrong_key_algorithm_or_signature_is_401(
    env: pytest.MonkeyPatch, aws: None, kinde: KindeStandIn
) -> None:
    from local.kinde import SigningKey, new_rsa_key

    seed(USER, 1)
    good = user_deleted(kinde)
    head, claims, signature = good.split(".")
    forged = SigningKey(kinde.keys[-1].kid, new_rsa_key())
    bodies = [
        sign_webhook(kinde, "user.deleted", {"user": {"id": USER}}, key=forged),
        f"{head}.{claims}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}",  # another signature
        jwt.encode(claims_of(good), "secret-of-32-bytes-or-more-for-hs256", algorithm="HS256"),
        jwt.encode({**claims_of(good), "exp": int(time.time()) - 1}, kinde.keys[-1].private_key, "RS256"),
    ]
    for body in bodies:
        result = deliver_webhook(body, "msg_forged")
        assert (result.status, result.error_code) == (401, "UNAUTHORIZED")
        assert result.body["error"]["message"] == "A valid access token is required."
        assert result.headers["www-authenticate"].startswith("Bearer")
    assert accounts_of() == 1
    assert deliver_webhook(good, "msg_forged").status == 200  # nothing was recorded
    assert accounts_of() == 0


def test_an_access_token_shaped_like_a_webhook_is_401_and_records_nothing(
    env: pytest.MonkeyPatch, aws: None, kinde: KindeStandIn
) -> None:
    """The environment signs access tokens and webhooks with the same keys: a user's access token
    minted with a webhook's claims must not delete anyone."""
    seed(USER, 1)
    claims = webhook_claims("user.deleted", {"user": {"id": USER}}, event_id="event_token")
    token = kinde.mint("kp_attacker", **claims)  # carries scp and azp, as Kinde's access tokens do
    m2m = kinde.mint(None, gty=["client_credentials"], **{**claims, "event_id": "event_m2m"})
    for body in (token, m2m):
        with webhook_refusals() as checks:
            result = deliver_webhook(body, "msg_token")
        assert (result.status, result.error_code, checks) == (401, "UNAUTHORIZED", ["access-token"])
    assert accounts_of() == 1
    assert delivery_record("event_token") is None and delivery_record("event_m2m") is None


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_a_key_under_2048_bits_is_refused_as_by_kindes_decoder(
    env: pytest.MonkeyPatch, aws: None, kinde: KindeStandIn
) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    from local.kinde import SigningKey

    kinde.keys[:] = [SigningKey("short", rsa.generate_private_key(public_exponent=65537, key_size=1024))]
    with webhook_refusals() as checks:
        result = deliver_webhook(user_deleted(kinde), "msg_short")
    assert (result.status, result.error_code, checks) == (401, "UNAUTHORIZED", ["key"])


def test_kinde_jwks_unreachable_is_401_and_records_nothing(
    env: pytest.MonkeyPatch, aws: None, kinde: KindeStandIn
) -> None:
    """Kinde retries a non-2xx answer, so the event is acted on once the key set answers again."""
    from local.kinde import Fault

    seed(USER, 1)
    body = user_deleted(kinde)
    kinde.jwks_faults.extend([Fault(503)] * 3)
    with webhook_refusals() as checks:
        result = deliver_webhook(body, "msg_outage")
    assert (result.status, result.error_code, checks) == (401, "UNAUTHORIZED", ["key"])
    assert accounts_of() == 1
    kinde.jwks_faults.clear()
    clear_caches()  # past the verifier's pause between fetch attempts
    assert deliver_webhook(body, "msg_outage").status == 200
    assert accounts_of() == 0


def test_access_tokens_keep_their_own_rules(kinde: KindeStandIn, env: pytest.MonkeyPatch) -> None:
    """The webhook rules loosen nothing for access tokens: a kid is required and a 30 s leeway
    stays (a token 10 s past exp still passes, one without kid never does)."""
    from planguard.auth import get_verifier
    from planguard.errors import Unauthorized

    verifier = get_verifier()
    assert verifier.verify(kinde.mint(USER, ttl_seconds=-10)).user_id == USER
    key = kinde.keys[-1]
    claims = claims_of(kinde.mint(USER))
    with pytest.raises(Unauthorized):
        verifier.verify(jwt.encode(claims, key.private_key, algorithm="RS256"))  # no kid, one-key set


# -- two deliveries of one event at once -----------------------------------------------------------
def deliver_racing(token: str, webhook_id: str, barrier: Any, results: Any) -> None:
    """In another process (another Lambda container): deliver once both have checked for the
    event's record and found none, and report the status and whether this one's mark won."""
    from kinde_webhooks_api.deliveries import WebhookDeliveries

    seen, mark = WebhookDeliveries.seen, WebhookDeliveries.mark
    marks: list[bool] = []

    def seen_then_wait(self: WebhookDeliveries, event_id: str) -> bool:
        answer = seen(self, event_id)
        barrier.wait(timeout=30)
        return answer

    def mark_and_tell(self: WebhookDeliveries, *args: Any) -> bool:
        marks.append(mark(self, *args))
        return marks[-1]

    WebhookDeliveries.seen = seen_then_wait  # type: ignore[method-assign]
    WebhookDeliveries.mark = mark_and_tell  # type: ignore[method-assign,assignment]
    result = deliver_webhook(token, webhook_id)
    results.put((result.status, result.body, marks))


def test_two_concurrent_deliveries_of_one_event_act_once_and_both_answer_200(
    endpoint: str, env: pytest.MonkeyPatch, kinde: KindeStandIn
) -> None:
    import multiprocessing

    env.setenv("DYNAMODB_ENDPOINT_URL", endpoint)
    clear_caches()
    user = "kp_webhook_race"
    for n in range(4):
        get_repository().create(user, f"Account {n}", f"R-{n}", limit=None)
    body = user_deleted(kinde, user)
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    racers = [
        context.Process(target=deliver_racing, args=(body, webhook_id, barrier, results))
        for webhook_id in ("msg_race_a", "msg_race_b")
    ]
    for racer in racers:
        racer.start()
    answers = [results.get(timeout=60) for _ in racers]
    for racer in racers:
        racer.join(timeout=10)
    assert [(status, body) for status, body, _ in answers] == [(200, {"received": True})] * 2
    assert sorted(marks[0] for _, _, marks in answers) == [False, True]  # one mark won, one lost
    assert get_usage_counter().usage_count(user) == 0
    client = boto3.client("dynamodb", endpoint_url=endpoint)
    left = client.query(
        TableName="AccountsTable",
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": f"USER#{user}"}},
        ConsistentRead=True,
    )["Items"]
    assert left == []
    # Marked once, so a later replay does nothing to the returning user.
    get_repository().create(user, "Back", "R-back", limit=None)
    assert deliver_webhook(body, "msg_race_c").status == 200
    assert get_usage_counter().usage_count(user) == 1
