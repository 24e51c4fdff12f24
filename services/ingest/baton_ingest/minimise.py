"""Personal data cut at the door: what an event says about the visitor's device.

Pure: an event record in, the record Baton keeps out. With ``truncate_ip`` an IP
address keeps its network only (IPv4 ``/24``: ``203.0.113.77`` → ``203.0.113.0``;
IPv6 ``/48``), and a value that is not an address is dropped; with
``drop_user_agent`` the user agent is dropped. Both apply wherever a record carries
them: its ``ip`` and ``user_agent``, the Segment ``context`` it keeps (``ip``,
``userAgent``) and an email provider's event properties (``ip``, ``useragent``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from baton_ingest.records import EventRecord

IPV4_PREFIX = 24
IPV6_PREFIX = 48
#: Where else a record carries them: (field, its IP key, its user agent key).
NESTED = (("context", "ip", "userAgent"), ("properties", "ip", "useragent"))


@dataclass(frozen=True)
class Minimisation:
    truncate_ip: bool
    drop_user_agent: bool

    @property
    def active(self) -> bool:
        return self.truncate_ip or self.drop_user_agent


def truncated_ip(value: Any) -> str | None:
    """The network of an address (``/24``, ``/48``) as an address; None for a non-address."""
    try:
        address = ipaddress.ip_address(str(value).strip())
    except ValueError:
        return None
    prefix = IPV4_PREFIX if address.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


def minimised(record: EventRecord, how: Minimisation) -> EventRecord:
    """``record`` with its IP addresses truncated and user agents dropped, as ``how`` says."""
    if not how.active:
        return record
    kept = record.copy()
    if how.truncate_ip and kept["ip"] is not None:
        kept["ip"] = truncated_ip(kept["ip"])
    if how.drop_user_agent:
        kept["user_agent"] = None
    for part, ip_key, agent_key in NESTED:
        if isinstance(record.get(part), dict):
            fields = dict(record[part])  # type: ignore[literal-required]
            if how.truncate_ip and ip_key in fields:
                fields[ip_key] = truncated_ip(fields[ip_key])
            if how.drop_user_agent:
                fields.pop(agent_key, None)
            kept[part] = fields  # type: ignore[literal-required]
    return kept
