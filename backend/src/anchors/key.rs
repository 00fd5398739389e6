//! The anchors' signing key: Ed25519 (RFC 8032) by default, or SM2 (GB/T 32918, with the standard's
//! distinguishing identifier `1234567812345678` and SM3). Separate from the token key: a stolen
//! token key lets someone act as a user, a stolen anchor key lets someone vouch for a rewritten
//! history, and the two are kept and rotated apart.
//!
//! The key file is one line, `ed25519:<64 hex digits>` or `sm2:<64 hex digits>` (the private
//! scalar), owner-only. With a SQLite store it is generated as `anchor.key` in the data directory
//! unless configured; a shared store needs it configured (every replica signs with the same key).
//! Where possible keep it outside the data directory: whoever can read it can sign anchors.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The key generated into a SQLite data directory when none is configured.
pub const GENERATED_KEY_FILE: &str = "anchor.key";
/// SM2's distinguishing identifier: the standard's default (GB/T 35276-2017, 5.4.1).
pub const SM2_DISTID: &str = "1234567812345678";

/// The anchors' signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AnchorAlgorithm {
    /// Ed25519 (RFC 8032), the default.
    #[default]
    Ed25519,
    /// SM2 (GB/T 32918) with SM3 and the distinguishing identifier `1234567812345678`.
    Sm2,
}

impl AnchorAlgorithm {
    pub fn code(self) -> &'static str {
        match self {
            AnchorAlgorithm::Ed25519 => "ed25519",
            AnchorAlgorithm::Sm2 => "sm2",
        }
    }
    pub fn parse(s: &str) -> Option<AnchorAlgorithm> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ed25519" => Some(AnchorAlgorithm::Ed25519),
            "sm2" => Some(AnchorAlgorithm::Sm2),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AnchorKeyError {
    #[error("无法读取锚点签名密钥 {path} / cannot read the anchor key: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("无法生成锚点签名密钥 {path} / cannot create the anchor key: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("锚点签名密钥文件格式无效（应为一行 ed25519:十六进制 或 sm2:十六进制）：{0} / not an anchor key")]
    Invalid(PathBuf),
    #[error(
        "锚点签名密钥是 {found}，配置要求 {configured} / the anchor key is {found}, the configuration asks for {configured}"
    )]
    WrongAlgorithm { found: &'static str, configured: &'static str },
    #[error("无法生成随机密钥 / no randomness: {0}")]
    Random(String),
    #[error(
        "共享部署须配置锚点签名密钥 anchor_key_file，且各副本相同 / a shared deployment needs a configured \
         anchor_key_file, the same on every replica"
    )]
    SharedNeedsKey,
}

/// A signing key of either algorithm.
pub enum AnchorKey {
    Ed25519(ed25519_dalek::SigningKey),
    Sm2(sm2::dsa::SigningKey),
}

impl std::fmt::Debug for AnchorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnchorKey").field("public", &self.public_key()).finish_non_exhaustive()
    }
}

/// A public key as published (`GET /api/v1/anchors/public-key`, `docs/AUDIT.md`, exports).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PublicKey {
    /// `ed25519` or `sm2`.
    pub algorithm: AnchorAlgorithm,
    /// The first 16 hex digits of SHA-256 over the public key's bytes.
    pub key_id: String,
    /// Hex: 32 bytes for Ed25519; 65 bytes (SEC1 uncompressed, `04 ‖ x ‖ y`) for SM2.
    pub public_key: String,
    /// SM2 only: the distinguishing identifier signed under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distid: Option<String>,
}

/// The id of a public key: `hex(SHA-256(bytes))[..16]`.
pub fn key_id(public_key: &[u8]) -> String {
    hex::encode(Sha256::digest(public_key))[..16].to_owned()
}

impl PublicKey {
    /// Parses a published key (algorithm and hex); its id is recomputed.
    pub fn from_parts(algorithm: AnchorAlgorithm, public_hex: &str) -> Option<PublicKey> {
        let bytes = hex::decode(public_hex.trim()).ok()?;
        let ok = match algorithm {
            AnchorAlgorithm::Ed25519 => <[u8; 32]>::try_from(bytes.as_slice())
                .ok()
                .and_then(|b| ed25519_dalek::VerifyingKey::from_bytes(&b).ok())
                .is_some(),
            AnchorAlgorithm::Sm2 => sm2::dsa::VerifyingKey::from_sec1_bytes(SM2_DISTID, &bytes).is_ok(),
        };
        ok.then(|| PublicKey {
            algorithm,
            key_id: key_id(&bytes),
            public_key: hex::encode(&bytes),
            distid: (algorithm == AnchorAlgorithm::Sm2).then(|| SM2_DISTID.to_owned()),
        })
    }

    /// Whether `signature` (hex) is this key's signature of `message`. False on any malformed input.
    pub fn verify(&self, message: &[u8], signature_hex: &str) -> bool {
        let (Ok(key), Ok(sig)) = (hex::decode(&self.public_key), hex::decode(signature_hex.trim())) else {
            return false;
        };
        match self.algorithm {
            AnchorAlgorithm::Ed25519 => {
                let Ok(key) = <[u8; 32]>::try_from(key.as_slice()) else { return false };
                let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&key) else { return false };
                let Ok(sig) = ed25519_dalek::Signature::from_slice(&sig) else { return false };
                key.verify_strict(message, &sig).is_ok()
            }
            AnchorAlgorithm::Sm2 => {
                use sm2::dsa::signature::Verifier;
                let Ok(key) = sm2::dsa::VerifyingKey::from_sec1_bytes(SM2_DISTID, &key) else { return false };
                let Ok(sig) = sm2::dsa::Signature::from_slice(&sig) else { return false };
                key.verify(message, &sig).is_ok()
            }
        }
    }
}

impl AnchorKey {
    /// A new random key.
    pub fn generate(algorithm: AnchorAlgorithm) -> Result<AnchorKey, AnchorKeyError> {
        // SM2 scalars must be in [1, n-1]: draw again in the (vanishingly rare) other cases.
        for _ in 0..16 {
            let mut secret = [0u8; 32];
            getrandom::fill(&mut secret).map_err(|e| AnchorKeyError::Random(e.to_string()))?;
            if let Some(key) = AnchorKey::from_secret(algorithm, &secret) {
                return Ok(key);
            }
        }
        Err(AnchorKeyError::Random("no valid SM2 scalar drawn".into()))
    }

    fn from_secret(algorithm: AnchorAlgorithm, secret: &[u8; 32]) -> Option<AnchorKey> {
        match algorithm {
            AnchorAlgorithm::Ed25519 => Some(AnchorKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(secret))),
            AnchorAlgorithm::Sm2 => sm2::dsa::SigningKey::from_slice(SM2_DISTID, secret).ok().map(AnchorKey::Sm2),
        }
    }

    /// Parses a key file's text (`ed25519:<hex>` or `sm2:<hex>`).
    pub fn from_text(text: &str) -> Option<AnchorKey> {
        let (alg, hex_secret) = text.trim().split_once(':')?;
        let algorithm = AnchorAlgorithm::parse(alg)?;
        let mut secret = [0u8; 32];
        hex::decode_to_slice(hex_secret.trim(), &mut secret).ok()?;
        AnchorKey::from_secret(algorithm, &secret)
    }

    /// The key file's text.
    pub fn to_text(&self) -> String {
        let secret = match self {
            AnchorKey::Ed25519(k) => hex::encode(k.to_bytes()),
            AnchorKey::Sm2(k) => hex::encode(k.to_bytes()),
        };
        format!("{}:{secret}\n", self.algorithm().code())
    }

    pub fn algorithm(&self) -> AnchorAlgorithm {
        match self {
            AnchorKey::Ed25519(_) => AnchorAlgorithm::Ed25519,
            AnchorKey::Sm2(_) => AnchorAlgorithm::Sm2,
        }
    }

    pub fn public_key(&self) -> PublicKey {
        let bytes: Vec<u8> = match self {
            AnchorKey::Ed25519(k) => k.verifying_key().to_bytes().to_vec(),
            AnchorKey::Sm2(k) => k.verifying_key().to_sec1_bytes().to_vec(),
        };
        PublicKey {
            algorithm: self.algorithm(),
            key_id: key_id(&bytes),
            public_key: hex::encode(&bytes),
            distid: (self.algorithm() == AnchorAlgorithm::Sm2).then(|| SM2_DISTID.to_owned()),
        }
    }

    /// The signature of `message`, hex (64 bytes; SM2 as r ‖ s).
    pub fn sign(&self, message: &[u8]) -> String {
        match self {
            AnchorKey::Ed25519(k) => {
                use ed25519_dalek::Signer;
                hex::encode(k.sign(message).to_bytes())
            }
            AnchorKey::Sm2(k) => {
                use sm2::dsa::signature::Signer;
                let sig: sm2::dsa::Signature = k.sign(message);
                hex::encode(sig.to_bytes())
            }
        }
    }

    /// Loads the configured key file, or (no file configured, a data directory given) the data
    /// directory's `anchor.key`, generating it with `algorithm` (default Ed25519) if absent. A key
    /// of another algorithm than a configured `algorithm` is refused.
    pub fn load(
        file: Option<&Path>,
        data_dir: Option<&Path>,
        algorithm: Option<AnchorAlgorithm>,
    ) -> Result<AnchorKey, AnchorKeyError> {
        let path = match file {
            Some(p) => p.to_owned(),
            None => {
                let p = data_dir.ok_or(AnchorKeyError::SharedNeedsKey)?.join(GENERATED_KEY_FILE);
                generate_if_missing(&p, algorithm.unwrap_or_default())?;
                p
            }
        };
        let text =
            std::fs::read_to_string(&path).map_err(|source| AnchorKeyError::Read { path: path.clone(), source })?;
        let key = AnchorKey::from_text(&text).ok_or_else(|| AnchorKeyError::Invalid(path.clone()))?;
        if let Some(configured) = algorithm.filter(|a| *a != key.algorithm()) {
            return Err(AnchorKeyError::WrongAlgorithm {
                found: key.algorithm().code(),
                configured: configured.code(),
            });
        }
        Ok(key)
    }
}

/// Creates the key file with a new key and mode 0600, unless it exists.
fn generate_if_missing(path: &Path, algorithm: AnchorAlgorithm) -> Result<(), AnchorKeyError> {
    if path.exists() {
        return Ok(());
    }
    let key = AnchorKey::generate(algorithm)?;
    crate::datadir::create_owner_only(path, key.to_text().as_bytes())
        .map(drop)
        .map_err(|source| AnchorKeyError::Write { path: path.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made with OpenSSL 3.0 (`openssl pkeyutl -sign -rawin -digest sm3 -pkeyopt
    /// distid:1234567812345678`) over the message below: an independent SM2 implementation, with the
    /// standard distinguishing identifier.
    const SM2_SECRET: &str = "9377d027134f7000f6f1f233e508ac11dbf1e10ac4986cc078cefd307e2d1089";
    const SM2_PUBLIC: &str = "04aefa0bfe674a8019142035494f6fbb235cc0d4be07037db301d5f6d9fbd1fa61\
         2b30acc0d9def946774be74c52ceb77730696186ddf786f3a2c4e0818785a896";
    const SM2_MESSAGE: &[u8] = b"DUCHA anchor test";
    const SM2_SIGNATURE: &str = "9ad79771f90037eb3053d4389a2bfa7c4804d4a1be4f5994d290d52ba6881b86\
                                 5e8cc806c42fba91ff369f26a33eda63f1834e9112b4c9aeb59d9a894211f094";

    #[test]
    fn sm2_verifies_openssls_signature_with_the_standard_identifier_and_signs_its_own() {
        let public = PublicKey::from_parts(AnchorAlgorithm::Sm2, SM2_PUBLIC).expect("valid SM2 point");
        assert_eq!(public.distid.as_deref(), Some("1234567812345678"));
        assert!(public.verify(SM2_MESSAGE, SM2_SIGNATURE));
        assert!(!public.verify(b"DUCHA anchor tesT", SM2_SIGNATURE), "another message");
        let mut flipped = SM2_SIGNATURE.to_owned();
        flipped.replace_range(0..2, "9b");
        assert!(!public.verify(SM2_MESSAGE, &flipped), "another signature");
        // The same private key, loaded from a key file, has that public key and signs verifiably.
        let key = AnchorKey::from_text(&format!("sm2:{SM2_SECRET}")).expect("key");
        assert_eq!(key.public_key(), public);
        let sig = key.sign(SM2_MESSAGE);
        assert_eq!(sig.len(), 128);
        assert!(public.verify(SM2_MESSAGE, &sig));
        // Under another identifier the signature does not verify (the identifier is part of ZA).
        use sm2::dsa::signature::Verifier;
        let other =
            sm2::dsa::VerifyingKey::from_sec1_bytes("ALICE123@YAHOO.COM", &hex::decode(SM2_PUBLIC).unwrap()).unwrap();
        let sig = sm2::dsa::Signature::from_slice(&hex::decode(SM2_SIGNATURE).unwrap()).unwrap();
        assert!(other.verify(SM2_MESSAGE, &sig).is_err());
    }

    #[test]
    fn ed25519_passes_rfc8032_test_1() {
        // RFC 8032, 7.1, TEST 1 (the empty message).
        let key = AnchorKey::from_text("ed25519:9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .expect("key");
        let public = key.public_key();
        assert_eq!(public.public_key, "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
        assert_eq!(
            key.sign(b""),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
        assert!(public.verify(b"", &key.sign(b"")));
        assert!(!public.verify(b"x", &key.sign(b"")));
        assert!(!public.verify(b"", "not hex"));
        assert_eq!(public.key_id.len(), 16);
    }

    #[test]
    fn key_files_are_generated_once_owner_only_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let a = AnchorKey::load(None, Some(dir.path()), None).unwrap();
        assert_eq!(a.algorithm(), AnchorAlgorithm::Ed25519);
        let b = AnchorKey::load(None, Some(dir.path()), None).unwrap();
        assert_eq!(a.public_key(), b.public_key(), "the generated key is kept");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(GENERATED_KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(
            AnchorKey::load(None, Some(dir.path()), Some(AnchorAlgorithm::Sm2)),
            Err(AnchorKeyError::WrongAlgorithm { .. })
        ));
        assert!(matches!(AnchorKey::load(None, None, None), Err(AnchorKeyError::SharedNeedsKey)));
        let sm2_dir = tempfile::tempdir().unwrap();
        let s = AnchorKey::load(None, Some(sm2_dir.path()), Some(AnchorAlgorithm::Sm2)).unwrap();
        assert_eq!(s.algorithm(), AnchorAlgorithm::Sm2);
        assert!(s.public_key().verify(b"m", &s.sign(b"m")));
        let bad = dir.path().join("bad.key");
        std::fs::write(&bad, "rsa:00").unwrap();
        assert!(matches!(AnchorKey::load(Some(&bad), None, None), Err(AnchorKeyError::Invalid(_))));
        assert!(matches!(
            AnchorKey::load(Some(&dir.path().join("missing")), None, None),
            Err(AnchorKeyError::Read { .. })
        ));
    }
}
