#!/usr/bin/env python3
"""Token attacks against a live `ducha serve`, with tokens minted by an independent JWT library
(PyJWT). Every forged, expired, premature, foreign or revoked token must get 401; tokens minted with
the configured key and the right claims for a session the server started must be accepted on
GET /api/v1/me (sessions are server-side: a well-signed token for no session is refused).

    jwt_tokens.py genkeys DIR                       write an Ed25519 key pair (PEM) into DIR
    jwt_tokens.py attack BASE_URL HS256 SECRET_FILE run the cases against an HS256 server
    jwt_tokens.py attack BASE_URL EdDSA PRIVATE_PEM PUBLIC_PEM   … against an EdDSA server

Prints one line per case and closes with 'N passed, N failed'; exits non-zero on any failure.
"""

import base64
import json
import sys
import time
import urllib.error
import urllib.request
import uuid

import jwt  # PyJWT
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

ISS, AUD = "ducha", "ducha-api"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def call(base, method, path, token=None, body=None):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)


def login(base, username):
    status, text, _ = call(base, "POST", "/api/v1/auth/login", body={"username": username, "password": "ducha-demo"})
    assert status == 200, f"login {username}: {status} {text}"
    return json.loads(text)["access_token"]


def claims_for(user, **over):
    now = int(time.time())
    c = {
        "sub": user,
        "scope": "tenant:xxjd",
        "roles": ["subdistrict_admin"],
        "iss": ISS,
        "aud": AUD,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": str(uuid.uuid4()),
    }
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def genkeys(folder):
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with open(f"{folder}/jwt-ed25519.pem", "wb") as f:
        f.write(private)
    with open(f"{folder}/jwt-ed25519.pub.pem", "wb") as f:
        f.write(public)


def attack(base, alg, key_files):
    results = []

    def expect(name, token, status_wanted, code=None):
        status, text, headers = call(base, "GET", "/api/v1/me", token)
        ok = status == status_wanted
        if ok and status == 401:
            ctype = headers.get("Content-Type", headers.get("content-type", ""))
            problem = json.loads(text) if text else {}
            ok = "problem+json" in ctype and problem.get("status") == 401 and bool(problem.get("code"))
            if code is not None:
                ok = ok and problem.get("code") == code
        if ok and status == 200:
            ok = json.loads(text).get("username") == "xx-admin"
        results.append(ok)
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {status} {text[:160] if not ok else ''}")

    if alg == "HS256":
        with open(key_files[0], "rb") as f:
            secret = f.read().strip()
        sign_key, algorithm = secret, "HS256"
    else:
        with open(key_files[0], "rb") as f:
            private_pem = f.read()
        with open(key_files[1], "rb") as f:
            public_pem = f.read()
        sign_key, algorithm = serialization.load_pem_private_key(private_pem, None), "EdDSA"

    real = login(base, "xx-admin")
    real_claims = jwt.decode(real, options={"verify_signature": False})
    sub = real_claims["sub"]
    header = jwt.get_unverified_header(real)
    if header.get("alg") != alg:
        results.append(False)
        print(f"FAIL server signs with {header.get('alg')}, configured {alg}")

    def mint(**over):
        return jwt.encode(claims_for(sub, **over), sign_key, algorithm=algorithm)

    # Accepted: minted by PyJWT with the configured key and the right claims, for a session the
    # server started (sessions are server-side: the jti of a login).
    expect(f"PyJWT {algorithm} token with the configured key", mint(jti=real_claims["jti"]), 200)
    # The right key but a jti no login started: no session, refused.
    expect(f"PyJWT {algorithm} token for a session never started", mint(), 401)
    # The server's own token still works.
    expect("the server's own token", real, 200)

    now = int(time.time())
    expect("alg none (unsigned)", f"{b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}."
           f"{b64(json.dumps(claims_for(sub)).encode())}.", 401)
    expect("alg none with the real signature kept", f"{b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}."
           f"{real.split('.')[1]}.{real.split('.')[2]}", 401)
    expect("alg NONE (upper case)", f"{b64(json.dumps({'alg': 'NONE'}).encode())}.{b64(json.dumps(claims_for(sub)).encode())}.",
           401)
    expect("HS256 with a wrong secret", jwt.encode(claims_for(sub), b"x" * 64, algorithm="HS256"), 401)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    expect("RS256 with a foreign RSA key", jwt.encode(claims_for(sub), rsa_key, algorithm="RS256"), 401)
    expect("EdDSA with a foreign Ed25519 key",
           jwt.encode(claims_for(sub), ed25519.Ed25519PrivateKey.generate(), algorithm="EdDSA"), 401)
    if alg == "HS256":
        # An RS/Ed token against an HS server: the server must not use its secret as a public key.
        forged = f"{b64(json.dumps({'alg': 'RS256', 'typ': 'JWT'}).encode())}.{b64(json.dumps(claims_for(sub)).encode())}"
        import hashlib
        import hmac
        sig = hmac.new(secret, forged.encode(), hashlib.sha256).digest()
        expect("RS256 header, HMAC signature with the server's secret", f"{forged}.{b64(sig)}", 401)
        expect("HS384 with the server's secret", jwt.encode(claims_for(sub), secret, algorithm="HS384"), 401)
    else:
        # HS/RS confusion: HS256 signed with the server's *public* key as the HMAC secret.
        forged = f"{b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}.{b64(json.dumps(claims_for(sub)).encode())}"
        import hashlib
        import hmac
        for label, k in [("PEM", public_pem), ("PEM without newline", public_pem.strip())]:
            sig = hmac.new(k, forged.encode(), hashlib.sha256).digest()
            expect(f"HS256 signed with the public key ({label})", f"{forged}.{b64(sig)}", 401)
    expect("expired (exp an hour ago)", mint(iat=now - 7200, nbf=now - 7200, exp=now - 3600), 401, "token_expired")
    expect("not yet valid (nbf in an hour)", mint(nbf=now + 3600), 401, "token_not_yet_valid")
    expect("wrong aud", mint(aud="other-api"), 401)
    expect("aud as a list without ours", mint(aud=["other-api", "x"]), 401)
    expect("wrong iss", mint(iss="evil"), 401)
    expect("missing exp", mint(exp=None), 401)
    expect("missing iss", mint(iss=None), 401)
    expect("missing sub", jwt.encode({k: v for k, v in claims_for(sub).items() if k != "sub"}, sign_key, algorithm=algorithm),
           401)
    expect("unknown user (sub)", mint(sub="no-such-user"), 401)
    # Tampered claims, signature kept.
    h, p, s = real.split(".")
    for label, change in [("roles", {"roles": ["platform_admin"], "scope": "platform"}), ("sub", {"sub": "admin"}),
                          ("exp", {"exp": now + 10 ** 6})]:
        tampered = dict(real_claims, **change)
        expect(f"tampered {label}, signature kept", f"{h}.{b64(json.dumps(tampered).encode())}.{s}", 401)
    expect("signature stripped", f"{h}.{p}.", 401)
    expect("garbage", "not-a-jwt", 401)
    # Revoked: log out, then reuse.
    victim = login(base, "xx-admin")
    expect("before logout", victim, 200)
    status, text, _ = call(base, "POST", "/api/v1/auth/logout", victim)
    results.append(status == 204)
    print(f"{'ok  ' if status == 204 else 'FAIL'} logout: {status} {text[:160]}")
    expect("revoked jti (after logout)", victim, 401, "token_revoked")
    # A PyJWT token with the same jti as a revoked one is refused too.
    expect("PyJWT token reusing the revoked jti",
           mint(jti=jwt.decode(victim, options={"verify_signature": False})["jti"]), 401, "token_revoked")

    passed = sum(1 for r in results if r)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def main(argv):
    if len(argv) >= 2 and argv[1] == "genkeys":
        genkeys(argv[2])
        return 0
    if len(argv) >= 5 and argv[1] == "attack":
        return attack(argv[2], argv[3], argv[4:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
