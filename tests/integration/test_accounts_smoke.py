from tests.conftest import AccountsClient


def test_smoke(accounts: AccountsClient) -> None:
    r = accounts.add("Electricity", "001234")
    assert r.status == 201, r.body
    r = accounts.list()
    assert r.status == 200, r.body
    print(r.body)
