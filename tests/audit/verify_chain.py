#!/usr/bin/env python3
"""Recompute every tenant's hash chain of a Ducha event store, independently of Ducha.

Usage: python3 verify_chain.py DBFILE [--anchors FILE]          (a SQLite store, opened read-only)
       python3 verify_chain.py --postgres URL [--anchors FILE]  (a PostgreSQL store, read with `psql`)

Standard library only for SHA-256 stores; an SM3 store needs `gmssl` (pip), and `--anchors` needs
`cryptography` (Ed25519) or `gmssl` (SM2). Follows the chain specification in docs/AUDIT.md (and the
doc comment of events/src/chain.rs): per tenant, in tenant_seq order,

    hash = H(prev || canonical(event))

where H is the store's chain hash, SHA-256 or SM3, as recorded in the store (SQLite: table `meta`,
key `chain_hash`; PostgreSQL: `ducha_schema.chain_hash`; absent: SHA-256),

where prev is the 32 raw bytes of the previous event's hash in that tenant (32 zero bytes for the
first) and canonical(event) concatenates, for each field below in order, the field's UTF-8 bytes
preceded by their length as a 4-byte big-endian unsigned integer:

    "DUCHA-CHAIN-1", tenant, tenant_seq (decimal), event_id, stream, stream_version (decimal),
    event_type, schema_version (decimal), occurred_at (as stored), actor_user, actor_role,
    correlation_id, causation_id ("" when NULL), payload (as stored).

Prints {"chain_hash": ..., "tenants": {tenant: {"events": n, "head": hex}}, "ok": true} and exits 0
when every chain verifies; otherwise prints the same summary with "ok": false and "error" naming the
first bad event, and exits 1. Exits 2 when the file cannot be read as a Ducha database.

With --anchors FILE (an export of `ducha anchors export`), every anchor's signature is checked
(docs/AUDIT.md, "Anchors": Ed25519, or SM2 with SM3 and the identifier 1234567812345678, over the
length-prefixed fields "DUCHA-ANCHOR-1", tenant, sequence, head_hash, position, anchored_at,
chain_hash, algorithm, key_id) and then whether each tenant's chain still has, at each anchored
sequence, the hash that was signed. The summary gets "anchors": {"ok", "checked", "error"}; the first
anchor the history contradicts is named ("tenant T sequence N") and the exit code is 1.
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
ANCHOR_TAG = "DUCHA-ANCHOR-1"
GENESIS = bytes(32)


def sm3(data):
    try:
        from gmssl import func, sm3 as gm_sm3
    except ImportError as e:
        raise OSError("an SM3 store needs the `gmssl` package (pip install gmssl)") from e
    return bytes.fromhex(gm_sm3.sm3_hash(func.bytes_to_list(data)))


def hash_function(name):
    if name == "sha256":
        return lambda data: hashlib.sha256(data).digest()
    if name == "sm3":
        return sm3
    raise ValueError("unknown chain hash {!r}".format(name))


def length_prefixed(fields):
    out = bytearray()
    for f in fields:
        b = f.encode("utf-8")
        out += struct.pack(">I", len(b))
        out += b
    return bytes(out)


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
    return length_prefixed(fields)


def describe(row):
    return "event {} (tenant {}, seq {}, position {})".format(
        row["event_id"], row["tenant"], row["tenant_seq"], row["position"]
    )


COLUMNS = (
    "position, tenant, tenant_seq, event_id, stream, stream_version, event_type, schema_version, "
    "occurred_at, actor_user, actor_role, correlation_id, causation_id, payload, prev_hash, hash"
)
INTEGERS = ("position", "tenant_seq", "stream_version", "schema_version")


def chain_hash_sqlite(path):
    conn = sqlite3.connect(pathlib.Path(path).resolve().as_uri() + "?mode=ro", uri=True)
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone() is None:
            return "sha256"
        row = conn.execute("SELECT value FROM meta WHERE key='chain_hash'").fetchone()
        return row[0] if row else "sha256"
    finally:
        conn.close()


def chain_hash_postgres(url):
    out = subprocess.run(
        ["psql", "--no-psqlrc", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d", url, "-c",
         "SELECT coalesce(chain_hash, 'sha256') FROM ducha_schema"],
        capture_output=True,
        check=False,
    )
    if out.returncode != 0:
        # A schema older than the chain_hash column: SHA-256, the only hash then.
        return "sha256"
    return out.stdout.decode("utf-8").strip() or "sha256"


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


def verify(rows, digest, hashes=None):
    """hashes, when given, collects every (tenant, seq) -> hex hash (for --anchors)."""
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
        computed = digest(prev + canonical(row))
        if row["hash"] != computed.hex():
            error = "{}: stored hash does not match its contents".format(describe(row))
            break
        state[tenant] = (next_seq + 1, computed)
        if hashes is not None:
            hashes[(tenant, next_seq)] = computed.hex()
        tenants[tenant] = {"events": next_seq, "head": computed.hex()}
    return tenants, error


def anchor_signature_valid(a):
    message = length_prefixed([
        ANCHOR_TAG, a["tenant"], str(a["sequence"]), a["head_hash"], str(a["position"]), a["anchored_at"],
        a["chain_hash"], a["algorithm"], a["key_id"],
    ])
    return signature_valid(a["algorithm"], a["public_key"], a["key_id"], a["signature"], message)


def signature_valid(algorithm, public_hex, key_id, signature_hex, message):
    """An Ed25519 or SM2 (with SM3 and the standard identifier) signature over `message`, under the
    public key whose id (the first 16 hex digits of its SHA-256) is `key_id`."""
    public = bytes.fromhex(public_hex)
    if hashlib.sha256(public).hexdigest()[:16] != key_id:
        return False
    signature = bytes.fromhex(signature_hex)
    if algorithm == "ed25519":
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        try:
            Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
            return True
        except (InvalidSignature, ValueError):
            return False
    if algorithm == "sm2":
        try:
            from gmssl import sm2
        except ImportError as e:
            raise OSError("SM2 anchors need the `gmssl` package (pip install gmssl)") from e
        if len(public) != 65 or public[0] != 4:
            return False
        crypt = sm2.CryptSM2(private_key=None, public_key=public.hex())
        # gmssl strips a leading "04" with lstrip, which also eats digits of x: set the key ourselves.
        crypt.public_key = public[1:].hex()
        # The identifier is gmssl's fixed default, 1234567812345678: the standard one we sign under.
        return bool(crypt.verify_with_sm3(signature.hex(), message))
    return False


def check_anchors(path, chain_hash, hashes):
    """The anchors' summary: every signature, then every anchored head against the live chain."""
    with open(path, encoding="utf-8") as f:
        export = json.load(f)
    if export.get("format") != "ducha-anchors-1":
        raise ValueError("not an anchors file: format {!r}".format(export.get("format")))
    result = {"ok": True, "checked": 0}
    if export.get("chain_hash") != chain_hash:
        result.update(ok=False, error="the file's chain hash is {}, the store's {}".format(
            export.get("chain_hash"), chain_hash))
        return result
    anchored = {}
    for i, a in enumerate(export["anchors"]):
        if not anchor_signature_valid(a):
            result.update(ok=False, error="anchor #{} (tenant {} sequence {}) has a bad signature".format(
                i + 1, a["tenant"], a["sequence"]))
            return result
        result["checked"] += 1
        anchored.setdefault(a["tenant"], {})[a["sequence"]] = a["head_hash"]
    first = None
    for tenant in sorted(anchored):
        for seq in sorted(anchored[tenant]):
            if hashes.get((tenant, seq)) != anchored[tenant][seq]:
                first = first or (tenant, seq)
                break
    if first is not None:
        result.update(ok=False, error="history differs from the anchors at tenant {} sequence {}".format(*first))
    return result


def main(argv):
    args = argv[1:]
    anchors = None
    if len(args) >= 2 and args[-2] == "--anchors":
        anchors, args = args[-1], args[:-2]
    if len(args) == 1:
        source, rows, chain_hash = args[0], rows_sqlite(args[0]), lambda: chain_hash_sqlite(args[0])
    elif len(args) == 2 and args[0] == "--postgres":
        source, rows, chain_hash = "the PostgreSQL store", rows_postgres(args[1]), lambda: chain_hash_postgres(args[1])
    else:
        print("usage: verify_chain.py DBFILE | verify_chain.py --postgres URL  [--anchors FILE]", file=sys.stderr)
        return 2
    hashes = {} if anchors is not None else None
    try:
        name = chain_hash()
        tenants, error = verify(rows, hash_function(name), hashes)
        anchor_result = check_anchors(anchors, name, hashes) if anchors is not None else None
    except (sqlite3.Error, UnicodeDecodeError, OSError, ValueError, KeyError) as e:
        print(json.dumps({"ok": False, "error": "cannot read {}: {}".format(source, e)}, ensure_ascii=False))
        return 2
    summary = {"chain_hash": name, "tenants": tenants, "ok": error is None}
    if error is not None:
        summary["error"] = error
    if anchor_result is not None:
        summary["anchors"] = anchor_result
        summary["ok"] = summary["ok"] and anchor_result["ok"]
    print(json.dumps(summary, ensure_ascii=False, sort_keys=True))
    if error is not None:
        print("chain broken: " + error, file=sys.stderr)
        return 1
    if anchor_result is not None and not anchor_result["ok"]:
        print("anchors: " + anchor_result["error"], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
