//! The second factor: TOTP (RFC 6238: SHA-1, 6 digits, 30-second steps, as every authenticator app
//! expects) with `totp-rs`, the enrolment QR code as SVG with `qrcode`, and one-time recovery codes.
//!
//! A code is accepted for the current step and one step either side (clock drift), and each step only
//! once per user (the shared state remembers the last step used), so a code seen over a shoulder
//! cannot be replayed. Recovery codes are 10 random groups of letters and digits, shown once, stored
//! as SHA-256 (they carry 50 bits of entropy each, so a fast hash is enough).

use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, Builder, Secret, Totp};

/// The issuer shown in authenticator apps.
pub const ISSUER: &str = "Ducha督查";
const DIGITS: u8 = 6;
const STEP_SECONDS: u64 = 30;
const SKEW: u16 = 1;
/// Recovery codes issued at enrolment.
pub const RECOVERY_CODES: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum SecondFactorError {
    #[error("no randomness: {0}")]
    Random(String),
    #[error("the stored second-factor secret is unusable: {0}")]
    BadSecret(String),
}

fn totp(secret_b32: &str, account: &str) -> Result<Totp, SecondFactorError> {
    let secret = Secret::try_from_base32(secret_b32).map_err(|e| SecondFactorError::BadSecret(e.to_string()))?;
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS)
        .with_skew(SKEW)
        .with_step_duration(STEP_SECONDS)
        .with_secret(secret)
        .with_issuer(Some(ISSUER))
        .with_account_name(account.replace(':', "_"))
        .build()
        .map_err(|e| SecondFactorError::BadSecret(e.to_string()))
}

/// A new secret: 20 random bytes, base32 (what the user may also type into an app by hand).
pub fn new_secret() -> Result<String, SecondFactorError> {
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).map_err(|e| SecondFactorError::Random(e.to_string()))?;
    Ok(Secret::from(bytes.to_vec()).to_base32())
}

/// What the enrolment screen shows: the `otpauth://` URI and its QR code as an SVG document.
pub fn enrolment(secret_b32: &str, account: &str) -> Result<(String, String), SecondFactorError> {
    let uri = totp(secret_b32, account)?.to_url().map_err(|e| SecondFactorError::BadSecret(e.to_string()))?;
    let code = qrcode::QrCode::new(uri.as_bytes()).map_err(|e| SecondFactorError::BadSecret(e.to_string()))?;
    let svg = code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).build();
    Ok((uri, svg))
}

/// The time step a six-digit `code` belongs to at `unix_seconds` (within the allowed skew), if any.
pub fn matching_step(
    secret_b32: &str,
    account: &str,
    code: &str,
    unix_seconds: u64,
) -> Result<Option<i64>, SecondFactorError> {
    let code = code.trim();
    if code.len() != usize::from(DIGITS) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let t = totp(secret_b32, account)?;
    let step = unix_seconds / STEP_SECONDS;
    for s in [step, step.saturating_sub(1), step + 1] {
        let at = s * STEP_SECONDS;
        if constant_time_eq(t.generate(at).to_string().as_bytes(), code.as_bytes()) {
            return Ok(Some(i64::try_from(s).unwrap_or(i64::MAX)));
        }
    }
    Ok(None)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Fresh recovery codes (`xxxxx-xxxxx`, lower-case letters and digits without look-alikes).
pub fn new_recovery_codes() -> Result<Vec<String>, SecondFactorError> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut out = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        // Rejection sampling: only bytes below the largest multiple of the alphabet's size, so
        // every character is equally likely.
        let limit = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
        let mut chars = String::with_capacity(10);
        while chars.len() < 10 {
            let mut bytes = [0u8; 16];
            getrandom::fill(&mut bytes).map_err(|e| SecondFactorError::Random(e.to_string()))?;
            for b in bytes.iter().filter(|b| **b < limit) {
                if chars.len() < 10 {
                    chars.push(ALPHABET[*b as usize % ALPHABET.len()] as char);
                }
            }
        }
        out.push(format!("{}-{}", &chars[..5], &chars[5..]));
    }
    Ok(out)
}

/// How a recovery code is stored: SHA-256 of its normalised form (lower case, no spaces).
pub fn recovery_hash(code: &str) -> String {
    let normal: String = code.trim().to_lowercase().chars().filter(|c| !c.is_whitespace()).collect();
    hex::encode(Sha256::digest(normal.as_bytes()))
}

/// Whether what the user typed looks like a recovery code rather than a TOTP code.
pub fn looks_like_recovery_code(code: &str) -> bool {
    let c = code.trim();
    c.len() == 11 && c.as_bytes()[5] == b'-'
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1: the secret "12345678901234567890", 8 digits at T = 59 is
    /// 94287082; our 6-digit codes are its last six digits (RFC 4226 truncation).
    #[test]
    fn codes_follow_rfc_6238() {
        let secret = Secret::from(b"12345678901234567890".to_vec()).to_base32();
        let t = totp(&secret, "u").unwrap();
        assert_eq!(t.generate(59).to_string(), "287082");
        assert_eq!(t.generate(1_111_111_109).to_string(), "081804");
        assert_eq!(matching_step(&secret, "u", "287082", 59).unwrap(), Some(1));
        // One step either side is accepted, two are not.
        assert_eq!(matching_step(&secret, "u", "287082", 59 + 30).unwrap(), Some(1));
        assert_eq!(matching_step(&secret, "u", "287082", 59 + 61).unwrap(), None);
        assert_eq!(matching_step(&secret, "u", "28708", 59).unwrap(), None);
        assert_eq!(matching_step(&secret, "u", "abcdef", 59).unwrap(), None);
    }

    #[test]
    fn enrolment_gives_a_uri_and_a_qr_code() {
        let secret = new_secret().unwrap();
        assert_eq!(secret.len(), 32, "20 bytes in base32");
        let (uri, svg) = enrolment(&secret, "xx-admin").unwrap();
        assert!(uri.starts_with("otpauth://totp/"), "{uri}");
        assert!(uri.contains(&format!("secret={secret}")));
        assert!(svg.contains("<svg") && svg.contains("</svg>"));
    }

    #[test]
    fn recovery_codes_are_distinct_and_hash_normalised() {
        let codes = new_recovery_codes().unwrap();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let unique: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), RECOVERY_CODES);
        assert!(codes.iter().all(|c| looks_like_recovery_code(c)));
        assert_eq!(recovery_hash(&codes[0]), recovery_hash(&format!("  {} ", codes[0].to_uppercase())));
        assert!(!looks_like_recovery_code("123456"));
    }
}
