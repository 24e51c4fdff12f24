"""What a lead's traits say about where it belongs: country, region, segment, industry,
language, email domain. Pure: the traits as the scorer knows them in, plain attributes out.

Traits arrive as trackers send them, so the same fact comes in many spellings:
``country`` may be ``"DE"``, ``"Germany"`` or ``"deutschland"``; the company size may be
``employees`` (the scorer's default fit trait), ``company_size`` or Segment's nested
``company.employee_count``. Routing compares canonical values:

- ``country``: the ISO 3166-1 alpha-2 code, lower case (``de``). A two-letter value is
  taken as a code; names are looked up in :data:`COUNTRY_NAMES`.
- ``region``: the lead's own ``region`` trait, else derived from the country:
  ``na`` (US, CA), ``latam``, ``emea`` or ``apac`` (see :data:`REGION_OF`).
- ``company_size``: a number of employees; ``segment``: the lead's ``segment`` trait,
  else ``smb`` (< 100 employees), ``mid_market`` (100 to 999) or ``enterprise`` (≥ 1000).
- ``industry``, ``title``, ``company``: lower-cased text.
- ``language``: the ISO 639-1 code (``de`` from ``"de-AT"`` or ``"de_DE"``), from the
  ``language`` or ``locale`` trait.
- ``email_domain``: the domain of the lead's email.
"""

from __future__ import annotations

import math
from typing import Any

from baton_shared.accounts import email_domain

REGIONS = ("na", "latam", "emea", "apac")
SEGMENTS = ("smb", "mid_market", "enterprise")
SEGMENT_BOUNDS = ((100, "smb"), (1000, "mid_market"))  # below the bound → that segment

_REGION_CODES = {
    "na": "us ca",
    "latam": "mx br ar cl co pe uy py bo ec ve cr pa gt hn sv ni do cu pr jm tt",
    "emea": (
        "gb uk ie fr de at ch nl be lu dk se no fi is es pt it mt gr cy pl cz sk hu ro bg si "
        "hr rs ba me mk al ee lv lt ua md by ru tr il ae sa qa kw bh om jo lb eg ma tn dz ng "
        "ke za gh et tz ug sn ci li mc ad sm va"
    ),
    "apac": ("au nz jp kr cn hk tw sg my th vn ph id in pk bd lk np mm kh la mn bn fj pg"),
}
REGION_OF: dict[str, str] = {
    code: region for region, codes in _REGION_CODES.items() for code in codes.split()
}

COUNTRY_NAMES: dict[str, str] = {
    "united states": "us", "united states of america": "us", "usa": "us", "america": "us",
    "canada": "ca", "mexico": "mx", "brazil": "br", "brasil": "br", "argentina": "ar",
    "chile": "cl", "colombia": "co", "peru": "pe", "uruguay": "uy",
    "united kingdom": "gb", "great britain": "gb", "england": "gb", "scotland": "gb",
    "wales": "gb", "ireland": "ie", "france": "fr", "germany": "de", "deutschland": "de",
    "austria": "at", "österreich": "at", "switzerland": "ch", "schweiz": "ch",
    "suisse": "ch", "netherlands": "nl", "the netherlands": "nl", "holland": "nl",
    "belgium": "be", "luxembourg": "lu", "denmark": "dk", "sweden": "se", "norway": "no",
    "finland": "fi", "iceland": "is", "spain": "es", "españa": "es", "portugal": "pt",
    "italy": "it", "italia": "it", "malta": "mt", "greece": "gr", "cyprus": "cy",
    "poland": "pl", "polska": "pl", "czech republic": "cz", "czechia": "cz",
    "slovakia": "sk", "hungary": "hu", "romania": "ro", "bulgaria": "bg", "slovenia": "si",
    "croatia": "hr", "serbia": "rs", "estonia": "ee", "latvia": "lv", "lithuania": "lt",
    "ukraine": "ua", "turkey": "tr", "türkiye": "tr", "israel": "il",
    "united arab emirates": "ae", "uae": "ae", "saudi arabia": "sa", "qatar": "qa",
    "egypt": "eg", "morocco": "ma", "nigeria": "ng", "kenya": "ke", "south africa": "za",
    "australia": "au", "new zealand": "nz", "japan": "jp", "south korea": "kr",
    "korea": "kr", "china": "cn", "hong kong": "hk", "taiwan": "tw", "singapore": "sg",
    "malaysia": "my", "thailand": "th", "vietnam": "vn", "viet nam": "vn",
    "philippines": "ph", "indonesia": "id", "india": "in", "pakistan": "pk",
    "bangladesh": "bd", "sri lanka": "lk",
}  # fmt: skip

_EMPLOYEE_TRAITS = ("employees", "company_size", "employee_count", "number_of_employees")


def country_code(raw: Any) -> str | None:
    """``"Germany"``, ``"DE"``, ``" de "`` → ``"de"``; unknown names stay lower-cased text
    (so a rule on them still matches exactly); None for anything that is not text."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    text = raw.strip().lower()
    if len(text) == 2 and text.isalpha():
        return "gb" if text == "uk" else text
    return COUNTRY_NAMES.get(text, text)


def is_known_country(raw: str) -> bool:
    """A two-letter code or a name :func:`country_code` knows."""
    text = raw.strip().lower()
    return (len(text) == 2 and text.isalpha()) or text in COUNTRY_NAMES


def language_code(raw: Any) -> str | None:
    """``"de-AT"``, ``"de_DE"``, ``"DE"`` → ``"de"``."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    return raw.strip().lower().replace("_", "-").split("-", 1)[0]


def segment_for(employees: float) -> str:
    for bound, segment in SEGMENT_BOUNDS:
        if employees < bound:
            return segment
    return "enterprise"


def _number(raw: Any) -> float | None:
    """A finite number from a trait (``nan``, ``inf`` and the like are no size at all)."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        value = float(raw)
    elif isinstance(raw, str):
        # "1,200" or "1200"; ranges like "51-200" take their upper end.
        text = raw.replace(",", "").replace("+", "").strip()
        if "-" in text:
            text = text.rsplit("-", 1)[1].strip()
        try:
            value = float(text)
        except ValueError:
            return None
    else:
        return None
    return value if math.isfinite(value) else None


def _text(raw: Any) -> str | None:
    if isinstance(raw, str) and raw.strip():
        return raw.strip().lower()
    return None


def territory(traits: dict[str, Any], email: str | None = None) -> dict[str, Any]:
    """The canonical routing attributes the traits give (absent ones are left out)."""
    company = traits.get("company") if isinstance(traits.get("company"), dict) else {}
    address = traits.get("address") if isinstance(traits.get("address"), dict) else {}
    out: dict[str, Any] = {}
    country = country_code(traits.get("country") or address.get("country"))
    if country:
        out["country"] = country
    region = _text(traits.get("region")) or (REGION_OF.get(country) if country else None)
    if region:
        out["region"] = region
    size = next(
        (n for name in _EMPLOYEE_TRAITS if (n := _number(traits.get(name))) is not None), None
    )
    if size is None:
        size = _number(company.get("employee_count") or company.get("employees"))
    if size is not None:
        out["company_size"] = out["employees"] = size
    segment = _text(traits.get("segment")) or (segment_for(size) if size is not None else None)
    if segment:
        out["segment"] = segment
    industry = _text(traits.get("industry")) or _text(company.get("industry"))
    if industry:
        out["industry"] = industry
    language = language_code(traits.get("language") or traits.get("locale"))
    if language:
        out["language"] = language
    title = _text(traits.get("title"))
    if title:
        out["title"] = title
    name = _text(traits.get("company")) or _text(company.get("name"))
    if name:
        out["company"] = name
    domain = email_domain(email or traits.get("email"))
    if domain:
        out["email_domain"] = domain
    return out
