"""Persistence, one module per aggregate; all of mailroom's SQL lives here.

* ``ledger``: the event ledger (one row per event id, its outcome).
* ``challenges``: codes and links, their digests, supersession and single use.
* ``guards``: wrong codes in a row per address and the cool-down they earn.
* ``outbox``: emails, their delivery claims and the rate-limit count.
* ``dead_letters``: what could not be sent or accepted, replay and discard.
* ``apikeys``: the verification API's keys.
* ``retention``: what may be deleted once old, in bounded batches.
* ``tables``: the SQLAlchemy tables; ``sql``: the one dialect helper.

Each function runs a few statements inside the caller's transaction.  State
two workers could race on changes through conditional UPDATEs, so the
database decides who wins.
"""
