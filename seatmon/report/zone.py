"""The report's zone from the data: the site's IANA time zone, which each
desk unit announces in its birth message (`status` field `tz`, from its
provisioned config; docs/protocol.md) and the collector stores with the
status point (docs/schema.md)."""

from __future__ import annotations

from collections.abc import Iterable

from collector.influx import InfluxV1
from seatmon.report.query import ReportError, parse_zone, run, tag_literal


def stored_zone(db: InfluxV1, sites: Iterable[str] = ()) -> str | None:
    """The zone the units of `sites` (every site when empty) last announced,
    one query; None when none announced one. Sites that announced different
    zones, or a zone this host does not know: ReportError asking for --tz."""
    sites = tuple(sites)
    where = " WHERE " + " OR ".join(f"site = {tag_literal(s)}" for s in sites) if sites else ""
    zones = {}
    for tags, row in run(db, [f"SELECT last(tz) FROM status{where} GROUP BY site"])[0]:
        if row.get("last"):
            zones[tags.get("site")] = row["last"]
    if len(set(zones.values())) > 1:
        said = ", ".join(f"{site} {zone}" for site, zone in sorted(zones.items()))
        raise ReportError(f"the sites' units announced different time zones ({said}): "
                          "pass --tz Area/City, or --site for one site")
    if not zones:
        return None
    site, name = next(iter(zones.items()))
    try:
        return parse_zone(name)
    except ReportError:
        raise ReportError(f"the units of site {site} announced the time zone {name!r}, which this host does not "
                          "know: pass --tz Area/City (or update the host's tzdata)") from None
