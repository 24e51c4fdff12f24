"""Which account (company) a lead belongs to: the one notion of account. Pure.

The scorer rolls leads up to accounts with it and the router matches account owners
with it, so both always agree on a lead's account. :func:`account_of` reads the lead's
traits and email, first match wins:

1. a domain trait: ``company_domain``, ``domain`` or ``website``;
2. Segment's ``company`` object (where ingest puts a ``group`` call's traits):
   ``company.domain`` or ``company.website``;
3. the group id: ``company.id`` (a ``group`` call's ``groupId``);
4. the email's domain, unless it is a free-mail provider (:data:`FREE_MAIL_DOMAINS`).

Domains are normalised (``https://www.Acme.com/about`` → ``acme.com``); a group id is
kept as given (trimmed). :func:`company_traits` is what a lead says about its company.
"""

from __future__ import annotations

from typing import Any

DOMAIN_TRAITS = ("company_domain", "domain", "website")
COMPANY_DOMAIN_FIELDS = ("domain", "website")
# Top-level traits that describe the lead's company (B2B trackers often send them on an
# identify); Segment's ``company`` object overrides them.
COMPANY_TRAITS = ("industry", "employees", "company_size", "plan")
MAX_ACCOUNT_ID_LENGTH = 256

# Providers whose addresses say nothing about an employer: their domain is no account.
FREE_MAIL_DOMAINS = frozenset(
    """
    gmail.com googlemail.com yahoo.com yahoo.co.uk yahoo.fr ymail.com hotmail.com
    hotmail.co.uk hotmail.fr live.com msn.com outlook.com aol.com icloud.com me.com mac.com
    proton.me protonmail.com pm.me gmx.com gmx.de gmx.net web.de mail.com mail.ru yandex.ru
    yandex.com zoho.com qq.com 163.com 126.com naver.com t-online.de orange.fr free.fr
    laposte.net libero.it fastmail.com hey.com tutanota.com
    """.split()
)


def normalise_domain(raw: str) -> str:
    """``https://www.Acme.com/about`` → ``acme.com``."""
    host = raw.strip().lower().split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
    return host.removeprefix("www.").rstrip(".")


def email_domain(email: Any) -> str | None:
    """The domain of an email address, lower case (None: not an address)."""
    if not isinstance(email, str) or "@" not in email:
        return None
    domain = email.rsplit("@", 1)[1].strip().lower().rstrip(".")
    return domain or None


def _domain(raw: Any) -> str | None:
    if not isinstance(raw, str) or not raw.strip():
        return None
    return normalise_domain(raw) or None


def account_of(traits: dict[str, Any], email: str | None) -> str | None:
    """The lead's account id (see the module doc), or None when nothing names one."""
    for name in DOMAIN_TRAITS:
        if (domain := _domain(traits.get(name))) is not None:
            return domain
    company = traits.get("company")
    if isinstance(company, dict):
        for name in COMPANY_DOMAIN_FIELDS:
            if (domain := _domain(company.get(name))) is not None:
                return domain
        group_id = company.get("id")
        if isinstance(group_id, int) and not isinstance(group_id, bool):
            group_id = str(group_id)
        if isinstance(group_id, str) and group_id.strip():
            return group_id.strip()[:MAX_ACCOUNT_ID_LENGTH]
    domain = email_domain(email)
    if domain is None or domain in FREE_MAIL_DOMAINS:
        return None
    return domain


def company_traits(traits: dict[str, Any]) -> dict[str, Any]:
    """What a lead's traits say about its company: the top-level company traits
    (:data:`COMPANY_TRAITS`), overridden by Segment's ``company`` object."""
    out = {name: traits[name] for name in COMPANY_TRAITS if name in traits}
    company = traits.get("company")
    if isinstance(company, dict):
        out.update(company)
    elif isinstance(company, str) and company.strip():
        out["name"] = company
    return out
