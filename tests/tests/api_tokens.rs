//! Token attacks with an independent JWT library: `tests/api/jwt_tokens.py` (PyJWT) forges, expires,
//! tampers with and revokes tokens against the real server, once configured with the generated HS256
//! secret and once with an Ed25519 key pair; every attack gets 401 and PyJWT's own tokens with the
//! configured key are accepted.

use ducha_tests::{Server, repo_root};
use std::process::Command;

fn script(args: &[&str]) {
    let out = Command::new("python3")
        .arg(repo_root().join("tests/api/jwt_tokens.py"))
        .args(args)
        .output()
        .expect("run python3 tests/api/jwt_tokens.py (pip install PyJWT cryptography)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert!(
        out.status.success(),
        "jwt_tokens.py {:?} failed:\n{stdout}\n{}",
        args,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn attacks_on_an_hs256_server_get_401_and_pyjwt_tokens_with_its_secret_are_accepted() {
    let server = Server::demo();
    let secret = server.data_dir.path().join("jwt.key");
    assert!(secret.exists(), "the server generated no jwt.key");
    script(&["attack", &server.base_url(), "HS256", &secret.display().to_string()]);
}

#[test]
fn attacks_on_an_ed25519_server_get_401_and_pyjwt_tokens_with_its_key_are_accepted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = tempfile::tempdir().expect("key dir");
    script(&["genkeys", &keys.path().display().to_string()]);
    let private = keys.path().join("jwt-ed25519.pem").display().to_string();
    let public = keys.path().join("jwt-ed25519.pub.pem").display().to_string();
    let server = Server::start_in(
        dir,
        true,
        &[
            ("DUCHA_JWT_ALGORITHM", "EdDSA"),
            ("DUCHA_JWT_PRIVATE_KEY_FILE", &private),
            ("DUCHA_JWT_PUBLIC_KEY_FILE", &public),
        ],
    );
    script(&["attack", &server.base_url(), "EdDSA", &private, &public]);
}
