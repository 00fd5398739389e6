//! Authentication through the real binary: login and `/me`, throttling, every token attack (tokens
//! crafted here with the `jsonwebtoken` crate, and by hand for `alg: none`), logout that survives a
//! restart, HS/RS confusion against an RS256-configured server, `ducha admin create`, and a clean
//! exit on SIGTERM.

use ducha_tests::{Response, Server, ducha_bin};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

fn assert_401(r: &Response, code: &str, what: &str) {
    assert_eq!(r.status, 401, "{what}: {}", r.text());
    assert_eq!(r.json()["code"], code, "{what}: {}", r.text());
    assert!(r.header("content-type").is_some_and(|c| c.starts_with("application/problem+json")), "{what}");
    assert!(r.header("www-authenticate").is_some_and(|v| v.starts_with("Bearer")), "{what}: no challenge");
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The claims of a token (its middle part), read without checking anything.
fn claims_of(token: &str) -> Value {
    jsonwebtoken::dangerous::insecure_decode::<Value>(token).expect("a JWT").claims
}

fn b64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn hs256(claims: &Value, secret: &[u8]) -> String {
    encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret)).unwrap()
}

fn me(s: &Server, token: &str) -> Response {
    s.get("/api/v1/me", Some(token))
}

#[test]
fn login_me_wrong_password_and_throttling() {
    let s = Server::demo();
    let token = s.login("xx-admin");
    let r = me(&s, &token);
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["username"], "xx-admin");
    assert_eq!(body["grants"][0]["role"], "subdistrict_admin");
    assert_eq!(body["grants"][0]["role_name"], "街道管理员");
    assert_eq!(body["grants"][0]["scope"]["tenant_id"], "xxjd");
    assert_eq!(body["grants"][0]["scope"]["name"], "XX区 / XX街道");

    let login = |user: &str, password: &str| {
        s.post_json("/api/v1/auth/login", None, &json!({"username": user, "password": password}))
    };
    let r = login("xx-admin", "ducha-demo");
    let answer = r.json();
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["expires_in"], 8 * 3600);
    let claims = claims_of(answer["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], "xx-admin");
    assert_eq!(claims["scope"], "tenant:xxjd");
    assert_eq!(claims["roles"], json!(["subdistrict_admin"]));
    assert_eq!((claims["iss"].as_str(), claims["aud"].as_str()), (Some("ducha"), Some("ducha-api")));
    for c in ["exp", "iat", "nbf", "jti"] {
        assert!(!claims[c].is_null(), "{c} missing: {claims}");
    }

    // Wrong password and unknown user look the same.
    let r = login("xx-admin", "wrong");
    assert_eq!((r.status, r.json()["code"].clone()), (401, json!("invalid_credentials")));
    let r = login("nobody-here", "wrong");
    assert_eq!((r.status, r.json()["code"].clone()), (401, json!("invalid_credentials")));

    // Five failures lock the username: then even the right password gets 429 with Retry-After.
    let started = Instant::now();
    for _ in 0..5 {
        assert_eq!(login("xx-duchazu1", "wrong").status, 401);
    }
    assert!(started.elapsed() >= Duration::from_millis(250), "failures past the third are slowed");
    let r = login("xx-duchazu1", "ducha-demo");
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.json()["code"], "too_many_requests");
    let wait: u64 = r.header("retry-after").expect("Retry-After").parse().unwrap();
    // The default policy's 15 minutes.
    assert!(wait > 300 && wait <= 901, "{wait}");
    // Other users are not affected.
    assert_eq!(login("xx-jiwei", "ducha-demo").status, 200);
}

#[test]
fn every_token_attack_gets_401() {
    let s = Server::demo();
    let token = s.login("xx-admin");
    let secret = std::fs::read_to_string(s.data_dir.path().join("jwt.key")).unwrap();
    let secret = secret.trim().as_bytes();
    let good = claims_of(&token);
    let with = |changes: Value| {
        let mut c = good.clone();
        for (k, v) in changes.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    // A token minted here with the real key and sane claims for the login's session is accepted:
    // the refusals below are about the one thing each changes.
    let t = now();
    let fresh = with(json!({"iat": t, "nbf": t, "exp": t + 600}));
    assert_eq!(me(&s, &hs256(&fresh, secret)).status, 200);
    // Sessions are server-side: the real key, but a session no login started, is refused.
    let unknown = with(json!({"iat": t, "nbf": t, "exp": t + 600, "jti": "minted-in-test"}));
    assert_eq!(me(&s, &hs256(&unknown, secret)).status, 401);

    // alg: none.
    let header = b64url(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = b64url(fresh.to_string().as_bytes());
    assert_401(&me(&s, &format!("{header}.{payload}.")), "token_invalid", "alg none");
    assert_401(&me(&s, &format!("{header}.{payload}")), "token_invalid", "alg none without signature part");
    // Wrong key.
    assert_401(&me(&s, &hs256(&fresh, b"another-secret-another-secret-another")), "token_invalid", "wrong key");
    // Another algorithm than the configured one (RS256 with a key of the attacker's).
    let dir = tempfile::tempdir().unwrap();
    let (private, _) = rsa_pair(dir.path());
    let rs = encode(&Header::new(Algorithm::RS256), &fresh, &EncodingKey::from_rsa_pem(&private).unwrap()).unwrap();
    assert_401(&me(&s, &rs), "token_invalid", "RS256 on an HS256 server");
    // Expired, not yet valid.
    let expired = with(json!({"iat": t - 7200, "nbf": t - 7200, "exp": t - 3600}));
    assert_401(&me(&s, &hs256(&expired, secret)), "token_expired", "expired");
    let early = with(json!({"iat": t, "nbf": t + 3600, "exp": t + 7200}));
    assert_401(&me(&s, &hs256(&early, secret)), "token_not_yet_valid", "not yet valid");
    // Wrong audience, wrong issuer, missing claims.
    assert_401(&me(&s, &hs256(&with(json!({"aud": "someone-else"})), secret)), "token_invalid", "aud");
    assert_401(&me(&s, &hs256(&with(json!({"iss": "evil"})), secret)), "token_invalid", "iss");
    let mut no_jti = fresh.clone();
    no_jti.as_object_mut().unwrap().remove("jti");
    assert_401(&me(&s, &hs256(&no_jti, secret)), "token_invalid", "no jti");
    let mut no_exp = fresh.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    assert_401(&me(&s, &hs256(&no_exp, secret)), "token_invalid", "no exp");
    // Tampered claims with the original signature: become the platform admin.
    let parts: Vec<&str> = token.split('.').collect();
    let forged = b64url(with(json!({"sub": "admin", "roles": ["platform_admin"]})).to_string().as_bytes());
    assert_401(&me(&s, &format!("{}.{forged}.{}", parts[0], parts[2])), "token_invalid", "tampered claims");
    // A token for a user that does not exist.
    assert_401(&me(&s, &hs256(&with(json!({"sub": "ghost"})), secret)), "token_invalid", "unknown user");
    // Garbage.
    assert_401(&me(&s, "not.a.jwt"), "token_invalid", "garbage");

    // Logout revokes the token; other tokens of the same user still work.
    let other = s.login("xx-admin");
    let r = s.request("POST", "/api/v1/auth/logout", Some(&token), &[], None);
    assert_eq!(r.status, 204, "{}", r.text());
    assert_401(&me(&s, &token), "token_revoked", "revoked");
    assert_401(&s.request("POST", "/api/v1/auth/logout", Some(&token), &[], None), "token_revoked", "logout twice");
    assert_eq!(me(&s, &other).status, 200);
    assert!(!s.log().contains("panicked"), "{}", s.log());
}

/// An RSA key pair made with OpenSSL: (private PEM, public PEM).
fn rsa_pair(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let private = dir.join("rsa.pem");
    let public = dir.join("rsa.pub.pem");
    let ok = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    ok(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", private.to_str().unwrap()]);
    ok(&["pkey", "-in", private.to_str().unwrap(), "-pubout", "-out", public.to_str().unwrap()]);
    (std::fs::read(private).unwrap(), std::fs::read(public).unwrap())
}

/// A server process in a data directory the test owns (so it can be stopped and started again).
struct Proc {
    child: Child,
    addr: String,
}

fn spawn(dir: &Path, demo: bool, env: &[(&str, &str)]) -> Proc {
    use std::io::BufRead;
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("serve.log")).unwrap();
    let mut cmd = Command::new(ducha_bin());
    cmd.arg("--data-dir").arg(dir.join("data")).args(["--synchronous", "off", "serve", "--listen", "127.0.0.1:0"]);
    if demo {
        cmd.arg("--demo");
    }
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("DUCHA_")) {
        cmd.env_remove(k);
    }
    cmd.env("DUCHA_LOG_LEVEL", "info").envs(env.iter().copied());
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log).spawn().unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("listening on http://").map(str::to_owned))
        .unwrap_or_else(|| panic!("no address: {}", std::fs::read_to_string(dir.join("serve.log")).unwrap()));
    std::thread::spawn(move || lines.for_each(drop));
    Proc { child, addr }
}

impl Proc {
    fn get(&self, path: &str, token: Option<&str>) -> Response {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        ducha_tests::http(&self.addr, "GET", path, &headers, None)
    }
    fn login(&self, user: &str, password: &str) -> Response {
        let body = json!({"username": user, "password": password}).to_string();
        ducha_tests::http(
            &self.addr,
            "POST",
            "/api/v1/auth/login",
            &[("Content-Type", "application/json")],
            Some(body.as_bytes()),
        )
    }
    fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers: Vec<(&str, &str)> = vec![("Content-Type", "application/json")];
        headers.extend(auth.iter().map(|a| ("Authorization", a.as_str())));
        ducha_tests::http(&self.addr, "POST", path, &headers, Some(body.to_string().as_bytes()))
    }
    /// SIGTERM, then wait (at most 30 s) for the exit status.
    fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("ducha serve did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn logout_survives_a_restart_and_sigterm_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let p = spawn(dir.path(), true, &[]);
    let r = p.login("xx-admin", "ducha-demo");
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    let kept = p.login("xx-admin", "ducha-demo").json()["access_token"].as_str().unwrap().to_owned();
    let auth = format!("Bearer {token}");
    let r = ducha_tests::http(&p.addr, "POST", "/api/v1/auth/logout", &[("Authorization", &auth)], None);
    assert_eq!(r.status, 204);
    assert_eq!(p.get("/api/v1/me", Some(&token)).status, 401);
    let status = p.terminate();
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert!(log.contains("SIGTERM received") && log.contains("stopped"), "{log}");
    assert!(!log.contains("panicked"), "{log}");

    // Same data directory, new process: the generated key is reused, the logout is remembered.
    let p = spawn(dir.path(), true, &[]);
    assert_401(&p.get("/api/v1/me", Some(&token)), "token_revoked", "revoked before the restart");
    assert_eq!(p.get("/api/v1/me", Some(&kept)).status, 200, "an unrevoked token survives the restart");
    assert_eq!(p.get("/readyz", None).status, 200);
    assert!(p.terminate().success());
}

#[test]
fn an_rs256_server_refuses_hs256_tokens_signed_with_its_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = rsa_pair(dir.path());
    let (priv_path, pub_path) = (dir.path().join("rsa.pem"), dir.path().join("rsa.pub.pem"));
    let p = spawn(
        dir.path(),
        true,
        &[
            ("DUCHA_JWT_ALGORITHM", "RS256"),
            ("DUCHA_JWT_PRIVATE_KEY_FILE", priv_path.to_str().unwrap()),
            ("DUCHA_JWT_PUBLIC_KEY_FILE", pub_path.to_str().unwrap()),
        ],
    );
    assert!(!dir.path().join("data/jwt.key").exists(), "no HS256 secret is generated for RS256");
    let token = p.login("xx-admin", "ducha-demo").json()["access_token"].as_str().unwrap().to_owned();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(p.get("/api/v1/me", Some(&token)).status, 200);

    let claims = claims_of(&token);
    // The classic confusion: HS256 with the public key as the HMAC secret.
    assert_401(&p.get("/api/v1/me", Some(&hs256(&claims, &public))), "token_invalid", "HS/RS confusion");
    // Our own RS256 signature still works when minted with the configured private key…
    let ours = encode(&Header::new(Algorithm::RS256), &claims, &EncodingKey::from_rsa_pem(&private).unwrap()).unwrap();
    assert_eq!(p.get("/api/v1/me", Some(&ours)).status, 200);
    // … and not with another key pair.
    let other = tempfile::tempdir().unwrap();
    let (other_private, _) = rsa_pair(other.path());
    let theirs =
        encode(&Header::new(Algorithm::RS256), &claims, &EncodingKey::from_rsa_pem(&other_private).unwrap()).unwrap();
    assert_401(&p.get("/api/v1/me", Some(&theirs)), "token_invalid", "RS256 with another key");
}

fn admin_create(data: &Path, args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(ducha_bin())
        .arg("--data-dir")
        .arg(data)
        .args(["--synchronous", "off", "admin", "create"])
        .args(args)
        .env_remove("DUCHA_DATA_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn admin_create_bootstraps_a_platform_admin_who_can_log_in() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = admin_create(&data, &["root"], "short\n");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("至少"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = admin_create(&data, &["root"], "\n");
    assert!(!out.status.success());
    // The security policy's rules apply to this password too.
    let out = admin_create(&data, &["root"], "correct horse battery\n");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("至少 3 类"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = admin_create(&data, &["root", "--display-name", "运维 王工"], "Correct horse battery 9\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The same username twice is refused.
    let out = admin_create(&data, &["root"], "Another password 9\n");
    assert!(!out.status.success());

    let p = spawn(dir.path(), false, &[]);
    assert_eq!(p.login("root", "wrong password").status, 401);
    let r = p.login("root", "Correct horse battery 9");
    assert_eq!(r.status, 200, "{}", r.text());
    // A real deployment's policy in full: the first login must change the password first, and the
    // step's token is good for nothing else (the whole path: tests/tests/api_security.rs).
    let answer = r.json();
    assert_eq!(answer["next"], "password_change", "{answer}");
    let step = answer["access_token"].as_str().unwrap().to_owned();
    assert_401(&p.get("/api/v1/me", Some(&step)), "token_wrong_purpose", "a login step's token");
    let changed = p.post_json(
        "/api/v1/auth/password",
        Some(&step),
        &json!({"current_password": "Correct horse battery 9", "new_password": "Ops-2026-new-pass"}),
    );
    assert_eq!(changed.status, 200, "{}", changed.text());
    // Then the second factor the policy requires of a platform administrator.
    assert_eq!(changed.json()["next"], "second_factor_enrol");
}
