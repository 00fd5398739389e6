//! The backup manifest's signature: the deployment's anchor key (Ed25519 or SM2, the key that
//! signs the chain-head anchors) over the manifest's exact bytes. The manifest holds the SHA-256 of
//! every other part, so the signature covers the whole archive. Someone who can rewrite the
//! archive and recompute its hashes still cannot sign for the deployment's key; `ducha restore
//! --public-key` pins that key, so a re-signed archive is refused too.

use crate::anchors::{AnchorKey, PublicKey};
use anyhow::bail;
use serde::{Deserialize, Serialize};

/// The archive entry (second, after the manifest) holding the signature.
pub const SIGNATURE: &str = "manifest.sig.json";
pub const SIGNATURE_FORMAT: &str = "ducha-backup-signature/1";
/// Prefixed to the manifest's bytes before signing, so a backup signature can never be taken for
/// an anchor's or a report's signature by the same key (or the other way round).
const DOMAIN: &[u8] = b"ducha-backup-manifest/1\n";

/// `manifest.sig.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestSignature {
    pub format: String,
    /// The key that signed, as published (`ducha anchors public-key`).
    pub signer: PublicKey,
    /// Hex.
    pub signature: String,
}

fn message(manifest: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(DOMAIN.len() + manifest.len());
    m.extend_from_slice(DOMAIN);
    m.extend_from_slice(manifest);
    m
}

/// Signs the manifest's bytes.
pub fn sign(key: &AnchorKey, manifest: &[u8]) -> ManifestSignature {
    ManifestSignature {
        format: SIGNATURE_FORMAT.to_owned(),
        signer: key.public_key(),
        signature: key.sign(&message(manifest)),
    }
}

/// What a restore accepts.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// Only this key's signature (`--public-key`); an unsigned archive is then refused too.
    pub pinned: Option<PublicKey>,
    /// An archive without a signature (made before backups were signed, or with `--unsigned`).
    pub allow_unsigned: bool,
}

/// How the archive's manifest was signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signed {
    /// By this key, which is the pinned one.
    ByPinnedKey(PublicKey),
    /// By this key; no key was pinned, so only the archive's integrity is shown, not who made it.
    By(PublicKey),
    /// Not signed (allowed by [`Trust::allow_unsigned`]).
    Unsigned,
}

/// Checks the signature (if any) of `manifest` under `trust`; an error says why it is refused.
pub fn check(manifest: &[u8], signature: Option<&ManifestSignature>, trust: &Trust) -> anyhow::Result<Signed> {
    let Some(sig) = signature else {
        if let Some(p) = &trust.pinned {
            bail!(
                "备份清单没有签名，无法用指定公钥 {} 核对，拒绝恢复 / the manifest is not signed, so it cannot be checked \
                 against the pinned key {}",
                p.key_id,
                p.key_id
            );
        }
        if !trust.allow_unsigned {
            bail!(
                "备份清单没有签名，拒绝恢复（确认来源可信后可加 --allow-unsigned） / the manifest is not signed; \
                 refused (add --allow-unsigned once you trust where it came from)"
            );
        }
        return Ok(Signed::Unsigned);
    };
    if sig.format != SIGNATURE_FORMAT {
        bail!("备份签名格式 {:?} 无法识别 / unknown backup signature format", sig.format);
    }
    // The id and the key are recomputed from the bytes: nothing the file says about itself is taken.
    let Some(signer) = PublicKey::from_parts(sig.signer.algorithm, &sig.signer.public_key) else {
        bail!("备份签名中的公钥无效 / the signature's public key is not valid");
    };
    if !signer.verify(&message(manifest), &sig.signature) {
        bail!(
            "备份清单的签名无效（清单被改动或签名损坏），拒绝恢复 / the manifest's signature does not verify (the \
             manifest was changed or the signature is damaged); refused"
        );
    }
    match &trust.pinned {
        Some(p) if p.algorithm != signer.algorithm || p.public_key != signer.public_key => bail!(
            "备份由密钥 {} 签名，不是指定的公钥 {}，拒绝恢复 / the backup was signed by key {}, not by the pinned key {}; \
             refused",
            signer.key_id,
            p.key_id,
            signer.key_id,
            p.key_id
        ),
        Some(_) => Ok(Signed::ByPinnedKey(signer)),
        None => Ok(Signed::By(signer)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anchors::AnchorAlgorithm;

    fn trust(pinned: Option<PublicKey>, allow_unsigned: bool) -> Trust {
        Trust { pinned, allow_unsigned }
    }

    #[test]
    fn both_algorithms_sign_and_a_changed_byte_or_another_key_is_refused() {
        for alg in [AnchorAlgorithm::Ed25519, AnchorAlgorithm::Sm2] {
            let key = AnchorKey::generate(alg).unwrap();
            let other = AnchorKey::generate(alg).unwrap();
            let manifest = br#"{"format":"ducha-backup/1","head_position":42}"#;
            let sig = sign(&key, manifest);
            assert_eq!(sig.signer, key.public_key());
            let pinned = trust(Some(key.public_key()), false);
            assert_eq!(check(manifest, Some(&sig), &pinned).unwrap(), Signed::ByPinnedKey(key.public_key()));
            assert_eq!(check(manifest, Some(&sig), &Trust::default()).unwrap(), Signed::By(key.public_key()));

            let mut changed = manifest.to_vec();
            changed[40] ^= 1;
            let err = check(&changed, Some(&sig), &Trust::default()).unwrap_err().to_string();
            assert!(err.contains("does not verify"), "{err}");

            // Re-signed by someone else: self-consistent, but not the pinned key.
            let forged = sign(&other, &changed);
            assert!(check(&changed, Some(&forged), &Trust::default()).is_ok());
            let err = check(&changed, Some(&forged), &pinned).unwrap_err().to_string();
            assert!(err.contains("not by the pinned key"), "{err}");

            // The signer field swapped for the pinned key: the signature no longer verifies.
            let mut swapped = forged.clone();
            swapped.signer = key.public_key();
            assert!(check(&changed, Some(&swapped), &pinned).unwrap_err().to_string().contains("does not verify"));
        }
    }

    #[test]
    fn a_signature_of_another_domain_does_not_pass() {
        let key = AnchorKey::generate(AnchorAlgorithm::Ed25519).unwrap();
        let manifest = b"{}";
        let raw = ManifestSignature {
            format: SIGNATURE_FORMAT.into(),
            signer: key.public_key(),
            signature: key.sign(manifest),
        };
        assert!(check(manifest, Some(&raw), &Trust::default()).is_err());
    }

    #[test]
    fn unsigned_is_refused_unless_allowed_and_never_with_a_pinned_key() {
        let key = AnchorKey::generate(AnchorAlgorithm::Ed25519).unwrap();
        assert!(check(b"{}", None, &Trust::default()).unwrap_err().to_string().contains("--allow-unsigned"));
        assert_eq!(check(b"{}", None, &trust(None, true)).unwrap(), Signed::Unsigned);
        let err = check(b"{}", None, &trust(Some(key.public_key()), true)).unwrap_err().to_string();
        assert!(err.contains("not signed"), "{err}");
    }

    #[test]
    fn a_malformed_signature_is_refused_without_panic() {
        let key = AnchorKey::generate(AnchorAlgorithm::Sm2).unwrap();
        let mut sig = sign(&key, b"{}");
        sig.signature = "zz".into();
        assert!(check(b"{}", Some(&sig), &Trust::default()).is_err());
        sig.signer.public_key = "00".into();
        assert!(check(b"{}", Some(&sig), &Trust::default()).is_err());
        sig.format = "other".into();
        assert!(check(b"{}", Some(&sig), &Trust::default()).is_err());
    }
}
