//! The ciphers personal data is sealed with: SM4-GCM (GB/T 32907 block cipher in GCM, as specified
//! for TLS by RFC 8998) or AES-256-GCM, both through RustCrypto's generic GCM. No cryptography is
//! written here; this module picks the algorithm, the key length and the nonce.

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, AeadInOut, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, AesGcm};

type Sm4Gcm = AesGcm<sm4::Sm4, U12>;

/// The authenticated cipher of personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Cipher {
    /// SM4 (GB/T 32907-2016) in GCM, 128-bit keys: the default, for 商用密码 assessments.
    #[default]
    #[serde(rename = "sm4-gcm")]
    Sm4Gcm,
    /// AES-256 in GCM.
    #[serde(rename = "aes-256-gcm")]
    Aes256Gcm,
}

pub const NONCE_LEN: usize = 12;
/// GCM's authentication tag.
pub const TAG_LEN: usize = 16;

impl Cipher {
    pub const ALL: [Cipher; 2] = [Cipher::Sm4Gcm, Cipher::Aes256Gcm];

    pub fn code(self) -> &'static str {
        match self {
            Cipher::Sm4Gcm => "sm4-gcm",
            Cipher::Aes256Gcm => "aes-256-gcm",
        }
    }

    pub fn parse(s: &str) -> Option<Cipher> {
        Self::ALL.into_iter().find(|c| c.code().eq_ignore_ascii_case(s.trim()))
    }

    pub fn key_len(self) -> usize {
        match self {
            Cipher::Sm4Gcm => 16,
            Cipher::Aes256Gcm => 32,
        }
    }

    /// Encrypts with a fresh random nonce: `(nonce, ciphertext ‖ tag)`.
    pub fn seal(self, key: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<([u8; NONCE_LEN], Vec<u8>), String> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| format!("no randomness: {e}"))?;
        let ct = self.seal_with(key, &nonce, aad, plaintext)?;
        Ok((nonce, ct))
    }

    /// Encrypts with the given nonce (never reuse one under the same key; tests use fixed ones).
    pub fn seal_with(self, key: &[u8], nonce: &[u8; NONCE_LEN], aad: &[u8], msg: &[u8]) -> Result<Vec<u8>, String> {
        let payload = Payload { msg, aad };
        let out = match self {
            Cipher::Sm4Gcm => Sm4Gcm::new_from_slice(key).map_err(|e| e.to_string())?.encrypt(nonce.into(), payload),
            Cipher::Aes256Gcm => {
                Aes256Gcm::new_from_slice(key).map_err(|e| e.to_string())?.encrypt(nonce.into(), payload)
            }
        };
        out.map_err(|_| "encryption failed".to_owned())
    }

    /// Encrypts `buf` in place (for large blobs: no second copy); gives the tag.
    pub fn seal_detached(
        self,
        key: &[u8],
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN], String> {
        let tag = match self {
            Cipher::Sm4Gcm => Sm4Gcm::new_from_slice(key).map_err(|e| e.to_string())?.encrypt_inout_detached(
                nonce.into(),
                aad,
                buf.into(),
            ),
            Cipher::Aes256Gcm => Aes256Gcm::new_from_slice(key).map_err(|e| e.to_string())?.encrypt_inout_detached(
                nonce.into(),
                aad,
                buf.into(),
            ),
        };
        let tag = tag.map_err(|_| "encryption failed".to_owned())?;
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(&tag);
        Ok(out)
    }

    /// Decrypts `buf` in place and checks the tag; `false` (and `buf` not the plaintext) when the
    /// key, nonce, AAD, bytes or tag are not the ones sealed.
    pub fn open_detached(
        self,
        key: &[u8],
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> bool {
        match self {
            Cipher::Sm4Gcm => Sm4Gcm::new_from_slice(key)
                .is_ok_and(|c| c.decrypt_inout_detached(nonce.into(), aad, buf.into(), tag.into()).is_ok()),
            Cipher::Aes256Gcm => Aes256Gcm::new_from_slice(key)
                .is_ok_and(|c| c.decrypt_inout_detached(nonce.into(), aad, buf.into(), tag.into()).is_ok()),
        }
    }

    /// Decrypts and checks the tag; `None` when the key, nonce, AAD or bytes are not the ones sealed.
    pub fn open(self, key: &[u8], nonce: &[u8], aad: &[u8], ct: &[u8]) -> Option<Vec<u8>> {
        let nonce: &[u8; NONCE_LEN] = nonce.try_into().ok()?;
        let payload = Payload { msg: ct, aad };
        match self {
            Cipher::Sm4Gcm => Sm4Gcm::new_from_slice(key).ok()?.decrypt(nonce.into(), payload).ok(),
            Cipher::Aes256Gcm => Aes256Gcm::new_from_slice(key).ok()?.decrypt(nonce.into(), payload).ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// RFC 8998, Appendix A.1 (SM4-GCM test vector).
    #[test]
    fn sm4_gcm_matches_rfc_8998() {
        let key = unhex("0123456789ABCDEFFEDCBA9876543210");
        let nonce: [u8; 12] = unhex("00001234567800000000ABCD").try_into().unwrap();
        let aad = unhex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2");
        let pt = unhex(
            "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDDEEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFF\
             EEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA",
        );
        let expected = unhex(
            "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735D82710CA5C22F0CCFA7CBF93D496AC15\
             A56834CBCF98C397B4024A2691233B8D83DE3541E4C2B58177E065A9BF7B62EC",
        );
        let ct = Cipher::Sm4Gcm.seal_with(&key, &nonce, &aad, &pt).unwrap();
        assert_eq!(ct, expected);
        assert_eq!(Cipher::Sm4Gcm.open(&key, &nonce, &aad, &ct).unwrap(), pt);
    }

    /// The GCM specification's test case 14 (AES-256, zero key, one zero block).
    #[test]
    fn aes_256_gcm_matches_the_gcm_specification() {
        let key = [0u8; 32];
        let nonce = [0u8; 12];
        let ct = Cipher::Aes256Gcm.seal_with(&key, &nonce, b"", &[0u8; 16]).unwrap();
        assert_eq!(ct, unhex("cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919"));
    }

    #[test]
    fn a_wrong_key_aad_or_byte_is_refused() {
        for c in Cipher::ALL {
            let key = vec![7u8; c.key_len()];
            let (nonce, ct) = c.seal(&key, b"kid-1", "张三".as_bytes()).unwrap();
            assert_eq!(c.open(&key, &nonce, b"kid-1", &ct).as_deref(), Some("张三".as_bytes()));
            assert_eq!(c.open(&key, &nonce, b"kid-2", &ct), None);
            assert_eq!(c.open(&vec![8u8; c.key_len()], &nonce, b"kid-1", &ct), None);
            let mut bad = ct.clone();
            bad[0] ^= 1;
            assert_eq!(c.open(&key, &nonce, b"kid-1", &bad), None);
            assert_eq!(c.open(&key, &nonce[..11], b"kid-1", &ct), None);
        }
    }
}
