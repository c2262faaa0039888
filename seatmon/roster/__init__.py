"""The roster: which agent sat at which seat when (the site's shift plan).

The units never know agents. A call belongs to the agent the roster puts at
its seat at its first ring; a seat nobody is assigned to is "(unassigned)".
Agent names and e-mails live only here, never in events or roll-ups.

- `model`: assignments and the pure seat-and-time lookup;
- `store`: the roster in InfluxDB, beside the events (`docs/schema.md`).
"""
