"""The one notion of account: which company a lead's traits and email name."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from baton_shared.accounts import account_of, company_traits, normalise_domain


@pytest.mark.parametrize(
    ("traits", "email", "account"),
    [
        ({"company_domain": "https://www.Acme.com/about"}, "jo@other.io", "acme.com"),
        ({"website": "acme.com.", "domain": "beta.io"}, None, "beta.io"),  # domain first
        ({"company": {"website": "http://Acme.com:8080/x", "id": "g-1"}}, None, "acme.com"),
        ({"company": {"domain": "acme.de", "id": "g-1"}}, "jo@acme.fr", "acme.de"),
        ({"company": {"id": " g-1 ", "name": "Acme"}}, "jo@acme.fr", "g-1"),  # group id
        ({"company": {"id": 1234}}, None, "1234"),
        ({"company": "Acme"}, "Jo@Acme.FR", "acme.fr"),  # a name alone names no account
        ({}, "jo@acme.fr", "acme.fr"),
        ({"website": "  "}, "jo@gmail.com", None),  # free mail names no account
        ({}, None, None),
        ({"company": {"id": True}}, "not-an-address", None),
    ],
)
def test_the_account_is_the_company_domain_else_group_id_else_work_email_domain(
    traits: dict[str, Any], email: str | None, account: str | None
) -> None:
    assert account_of(traits, email) == account


def test_company_traits_are_the_top_level_ones_under_the_company_object() -> None:
    traits = {"industry": "Retail", "employees": 10, "title": "CTO",
              "company": {"industry": "SaaS", "id": "g-1"}}  # fmt: skip
    assert company_traits(traits) == {"industry": "SaaS", "employees": 10, "id": "g-1"}
    assert company_traits({"company": "Acme"}) == {"name": "Acme"}


@given(st.dictionaries(st.text(max_size=8), st.one_of(st.none(), st.integers(), st.text(),
                                                      st.dictionaries(st.text(max_size=5),
                                                                      st.text(max_size=5))),
                       max_size=6),
       st.one_of(st.none(), st.text(max_size=20)))  # fmt: skip
def test_any_traits_give_an_account_or_none_without_raising(
    traits: dict[str, Any], email: str | None
) -> None:
    account = account_of(traits, email)
    assert account is None or (account.strip() == account and 0 < len(account) <= 256)


def test_normalise_domain_strips_scheme_www_path_port_and_case() -> None:
    assert normalise_domain("HTTPS://www.Acme.com:443/about?x=1") == "acme.com"
