#!/usr/bin/env python3
"""Checks an issued 督查报告 against its signed issue record, without Ducha's code.

    verify_report.py REPORT_FILE ISSUED.json [--public-key ed25519:HEX|sm2:HEX]

ISSUED.json is the record as `POST …/report/issue` answers it (or as the inspection's
`issued_reports` lists it): `tenant`, `inspection_id`, `sha256`, `log_position`, `format`, and its
`signature` object (`algorithm`, `key_id`, `public_key`, `signature`). The check: the file's SHA-256
is the recorded one, and the signature (Ed25519, or SM2 with SM3 and the identifier
1234567812345678) over

    len‖"DUCHA-REPORT-1" len‖tenant len‖inspection_id len‖sha256 len‖log_position len‖format
    len‖algorithm len‖key_id            (len: 4-byte big-endian byte length of the UTF-8 field)

verifies under the public key — pinned with --public-key (the one published for the deployment);
without it, the key in the record is only checked against its id. Prints a JSON summary; exit 0
when good, 1 when not, 2 on unreadable input.
"""
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from verify_chain import length_prefixed, signature_valid  # noqa: E402

REPORT_TAG = "DUCHA-REPORT-1"


def main(argv):
    args = argv[1:]
    pinned = None
    if len(args) == 4 and args[2] == "--public-key":
        pinned, args = args[3], args[:2]
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        with open(args[0], "rb") as f:
            data = f.read()
        with open(args[1], encoding="utf-8") as f:
            issued = json.load(f)
        sig = issued["signature"]
        message = length_prefixed([
            REPORT_TAG, issued["tenant"], issued["inspection_id"], issued["sha256"], str(issued["log_position"]),
            issued["format"], sig["algorithm"], sig["key_id"],
        ])
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(json.dumps({"ok": False, "error": "cannot read: {}".format(e)}))
        return 2
    result = {"sha256_matches": hashlib.sha256(data).hexdigest() == issued["sha256"]}
    key_ok = pinned is None or pinned == "{}:{}".format(sig["algorithm"], sig["public_key"])
    result["key_pinned"] = pinned is not None
    result["signature_valid"] = key_ok and signature_valid(
        sig["algorithm"], sig["public_key"], sig["key_id"], sig["signature"], message)
    result["ok"] = result["sha256_matches"] and result["signature_valid"]
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
