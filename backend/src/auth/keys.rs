//! The token signing key. Never a built-in default: an HS256 secret is generated on first start into
//! `jwt.key` in the data directory (owner-only permissions) unless one is configured; EdDSA and RS256
//! take a PEM key pair from configuration.

use crate::config::{Config, JwtAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use std::path::{Path, PathBuf};

pub const GENERATED_KEY_FILE: &str = "jwt.key";
const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("无法读取密钥文件 {path} / cannot read the key file: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("无法生成密钥文件 {path} / cannot create the key file: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("HS256 密钥至少需要 {MIN_SECRET_BYTES} 字节：{0} / the HS256 secret is too short")]
    TooShort(PathBuf),
    #[error("密钥文件不是有效的 PEM 密钥：{path} / not a valid PEM key: {reason}")]
    BadPem { path: PathBuf, reason: String },
    #[error("缺少密钥文件配置 / a key file is not configured: {0}")]
    Missing(&'static str),
    #[error("无法生成随机密钥 / no randomness: {0}")]
    Random(String),
    #[error(
        "共享部署（PostgreSQL）须配置签名密钥，且各副本相同：jwt_secret_file，或 EdDSA/RS256 的密钥文件 / \
         a shared deployment needs a configured signing key, the same on every replica (jwt_secret_file, or the \
         EdDSA/RS256 key files)"
    )]
    SharedNeedsKey,
}

/// What signs and what verifies, and under which single algorithm.
pub struct SigningKeys {
    pub algorithm: Algorithm,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    /// Where the key came from (for the start-up log; never the key itself).
    pub source: String,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeys").field("algorithm", &self.algorithm).field("source", &self.source).finish()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, KeyError> {
    warn_if_readable_by_others(path);
    std::fs::read(path).map_err(|source| KeyError::Read { path: path.to_owned(), source })
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "key file is readable by other users; chmod 600 it");
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_: &Path) {}

/// The secret: the file's content without surrounding whitespace.
fn secret_from(path: &Path) -> Result<Vec<u8>, KeyError> {
    let bytes = read(path)?;
    let text = String::from_utf8_lossy(&bytes);
    let secret = text.trim().as_bytes().to_vec();
    if secret.len() < MIN_SECRET_BYTES {
        return Err(KeyError::TooShort(path.to_owned()));
    }
    Ok(secret)
}

/// Creates `jwt.key` with 64 random bytes (hex) and mode 0600, unless it exists.
fn generate_if_missing(path: &Path) -> Result<bool, KeyError> {
    let mut bytes = [0u8; 64];
    getrandom::fill(&mut bytes).map_err(|e| KeyError::Random(e.to_string()))?;
    crate::datadir::create_owner_only(path, format!("{}\n", hex::encode(bytes)).as_bytes())
        .map_err(|source| KeyError::Write { path: path.to_owned(), source })
}

impl SigningKeys {
    /// Loads (or, for HS256 without a configured secret, generates into `data_dir`) the keys. Without
    /// a data directory (a shared deployment) nothing is generated: every replica must sign with the
    /// same configured key.
    pub fn load(config: &Config, data_dir: Option<&Path>) -> Result<SigningKeys, KeyError> {
        match config.jwt_algorithm {
            JwtAlgorithm::HS256 => {
                let (path, generated) = match &config.jwt_secret_file {
                    Some(p) => (p.clone(), false),
                    None => {
                        let p = data_dir.ok_or(KeyError::SharedNeedsKey)?.join(GENERATED_KEY_FILE);
                        let generated = generate_if_missing(&p)?;
                        (p, generated)
                    }
                };
                let secret = secret_from(&path)?;
                let source = if generated {
                    format!("HS256 secret generated into {}", path.display())
                } else {
                    format!("HS256 secret from {}", path.display())
                };
                Ok(SigningKeys {
                    algorithm: Algorithm::HS256,
                    encoding: EncodingKey::from_secret(&secret),
                    decoding: DecodingKey::from_secret(&secret),
                    source,
                })
            }
            JwtAlgorithm::EdDSA | JwtAlgorithm::RS256 => {
                let private =
                    config.jwt_private_key_file.as_deref().ok_or(KeyError::Missing("jwt_private_key_file"))?;
                let public = config.jwt_public_key_file.as_deref().ok_or(KeyError::Missing("jwt_public_key_file"))?;
                let (private_pem, public_pem) = (read(private)?, read(public)?);
                let bad = |path: &Path| {
                    let path = path.to_owned();
                    move |e: jsonwebtoken::errors::Error| KeyError::BadPem { path, reason: e.to_string() }
                };
                let (algorithm, encoding, decoding) = if config.jwt_algorithm == JwtAlgorithm::EdDSA {
                    (
                        Algorithm::EdDSA,
                        EncodingKey::from_ed_pem(&private_pem).map_err(bad(private))?,
                        DecodingKey::from_ed_pem(&public_pem).map_err(bad(public))?,
                    )
                } else {
                    (
                        Algorithm::RS256,
                        EncodingKey::from_rsa_pem(&private_pem).map_err(bad(private))?,
                        DecodingKey::from_rsa_pem(&public_pem).map_err(bad(public))?,
                    )
                };
                let source = format!("{algorithm:?} key pair {} / {}", private.display(), public.display());
                Ok(SigningKeys { algorithm, encoding, decoding, source })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_generated_once_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::default();
        let a = SigningKeys::load(&config, Some(dir.path())).unwrap();
        assert!(a.source.contains("generated"));
        let path = dir.path().join(GENERATED_KEY_FILE);
        let first = std::fs::read_to_string(&path).unwrap();
        assert_eq!(first.trim().len(), 128);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let b = SigningKeys::load(&config, Some(dir.path())).unwrap();
        assert!(!b.source.contains("generated"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), first);
    }

    #[test]
    fn short_secrets_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, "short\n").unwrap();
        let config = Config { jwt_secret_file: Some(path), ..Config::default() };
        assert!(matches!(SigningKeys::load(&config, Some(dir.path())), Err(KeyError::TooShort(_))));
    }

    #[test]
    fn a_shared_deployment_must_configure_its_key() {
        let config = Config::default();
        let err = SigningKeys::load(&config, None).unwrap_err();
        assert!(matches!(err, KeyError::SharedNeedsKey));
        assert!(err.to_string().contains("共享部署"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "x".repeat(40)).unwrap();
        let configured = Config { jwt_secret_file: Some(path), ..Config::default() };
        assert!(SigningKeys::load(&configured, None).is_ok());
    }
}
