#!/usr/bin/env python3
"""Recompute every tenant's hash chain of a Ducha event store, independently of Ducha.

Usage: python3 verify_chain.py DBFILE                (a SQLite store, opened read-only)
       python3 verify_chain.py --postgres URL        (a PostgreSQL store, read with `psql`)

Standard library only. Follows the chain specification in docs/AUDIT.md (and the doc comment of
events/src/chain.rs): per tenant, in tenant_seq order,

    hash = SHA-256(prev || canonical(event))

where prev is the 32 raw bytes of the previous event's hash in that tenant (32 zero bytes for the
first) and canonical(event) concatenates, for each field below in order, the field's UTF-8 bytes
preceded by their length as a 4-byte big-endian unsigned integer:

    "DUCHA-CHAIN-1", tenant, tenant_seq (decimal), event_id, stream, stream_version (decimal),
    event_type, schema_version (decimal), occurred_at (as stored), actor_user, actor_role,
    correlation_id, causation_id ("" when NULL), payload (as stored).

Prints {"tenants": {tenant: {"events": n, "head": hex}}, "ok": true} and exits 0 when every chain
verifies; otherwise prints the same summary with "ok": false and "error" naming the first bad event,
and exits 1. Exits 2 when the file cannot be read as a Ducha database.
"""

import csv
import hashlib
import io
import json
import os
import pathlib
import sqlite3
import struct
import subprocess
import sys

FORMAT_TAG = "DUCHA-CHAIN-1"
GENESIS = bytes(32)


def canonical(row):
    fields = [
        FORMAT_TAG,
        row["tenant"],
        str(row["tenant_seq"]),
        row["event_id"],
        row["stream"],
        str(row["stream_version"]),
        row["event_type"],
        str(row["schema_version"]),
        row["occurred_at"],
        row["actor_user"],
        row["actor_role"],
        row["correlation_id"],
        row["causation_id"] if row["causation_id"] is not None else "",
        row["payload"],
    ]
    out = bytearray()
    for f in fields:
        b = f.encode("utf-8")
        out += struct.pack(">I", len(b))
        out += b
    return bytes(out)


def describe(row):
    return "event {} (tenant {}, seq {}, position {})".format(
        row["event_id"], row["tenant"], row["tenant_seq"], row["position"]
    )


COLUMNS = (
    "position, tenant, tenant_seq, event_id, stream, stream_version, event_type, schema_version, "
    "occurred_at, actor_user, actor_role, correlation_id, causation_id, payload, prev_hash, hash"
)
INTEGERS = ("position", "tenant_seq", "stream_version", "schema_version")


def rows_sqlite(path):
    # Read-only, so an auditor's run can never change the evidence.
    conn = sqlite3.connect(pathlib.Path(path).resolve().as_uri() + "?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    # Payloads are stored as UTF-8 TEXT; take the exact bytes and decode them ourselves.
    conn.text_factory = bytes
    try:
        for raw in conn.execute("SELECT " + COLUMNS + " FROM events ORDER BY tenant, tenant_seq"):
            yield {k: (raw[k].decode("utf-8") if isinstance(raw[k], bytes) else raw[k]) for k in raw.keys()}
    finally:
        conn.close()


def rows_postgres(url):
    # psql's CSV cannot tell NULL from "": the chain hashes a missing causation id as "" anyway.
    query = (
        "COPY (SELECT " + COLUMNS.replace("causation_id", "coalesce(causation_id, '') AS causation_id")
        + " FROM events ORDER BY tenant COLLATE \"C\", tenant_seq) TO STDOUT WITH (FORMAT csv, HEADER true)"
    )
    env = dict(os.environ, PGCLIENTENCODING="UTF8")
    out = subprocess.run(
        ["psql", "--no-psqlrc", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", query],
        capture_output=True,
        env=env,
        check=False,
    )
    if out.returncode != 0:
        raise OSError(out.stderr.decode("utf-8", "replace").strip())
    for row in csv.DictReader(io.StringIO(out.stdout.decode("utf-8"), newline="")):
        for k in INTEGERS:
            row[k] = int(row[k])
        yield row


def verify(rows):
    tenants = {}
    state = {}  # tenant -> (next expected seq, prev hash bytes)
    error = None
    for row in rows:
        tenant = row["tenant"]
        next_seq, prev = state.get(tenant, (1, GENESIS))
        if row["tenant_seq"] != next_seq:
            error = "{}: tenant_seq expected {}".format(describe(row), next_seq)
            break
        if row["prev_hash"] != prev.hex():
            error = "{}: prev_hash does not match the previous event's hash".format(describe(row))
            break
        computed = hashlib.sha256(prev + canonical(row)).digest()
        if row["hash"] != computed.hex():
            error = "{}: stored hash does not match its contents".format(describe(row))
            break
        state[tenant] = (next_seq + 1, computed)
        tenants[tenant] = {"events": next_seq, "head": computed.hex()}
    return tenants, error


def main(argv):
    if len(argv) == 2:
        source, rows = argv[1], rows_sqlite(argv[1])
    elif len(argv) == 3 and argv[1] == "--postgres":
        source, rows = "the PostgreSQL store", rows_postgres(argv[2])
    else:
        print("usage: verify_chain.py DBFILE | verify_chain.py --postgres URL", file=sys.stderr)
        return 2
    try:
        tenants, error = verify(rows)
    except (sqlite3.Error, UnicodeDecodeError, OSError, ValueError, KeyError) as e:
        print(json.dumps({"ok": False, "error": "cannot read {}: {}".format(source, e)}, ensure_ascii=False))
        return 2
    summary = {"tenants": tenants, "ok": error is None}
    if error is not None:
        summary["error"] = error
    print(json.dumps(summary, ensure_ascii=False, sort_keys=True))
    if error is not None:
        print("chain broken: " + error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
