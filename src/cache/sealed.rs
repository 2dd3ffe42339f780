//! Tokens as they are kept in a store: serialized, then encrypted and authenticated.
//!
//! `version (1) ‖ nonce (12) ‖ ChaCha20-Poly1305(payload)`, the key name as associated data so
//! that a value copied under another key does not open. The key comes from HKDF-SHA256 over
//! the client secret (or a key the user gave), with the key name as context.

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const SALT: &[u8] = b"tower-client-credentials/store/v1";

/// What a store holds for one token.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub(crate) struct StoredToken {
    pub(crate) access_token: String,
    pub(crate) token_type: String,
    pub(crate) scope: Option<String>,
    /// The lifetime the token was given, for the refresh window.
    pub(crate) lifetime_ms: u64,
    /// When it expires, in milliseconds since the UNIX epoch.
    pub(crate) expires_at_ms: u64,
    /// When the server said to refresh it (`refresh_in`), in milliseconds since the UNIX
    /// epoch; absent in values written without one, or by a replica of an older version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) refresh_at_ms: Option<u64>,
}

/// Seals and opens the values of one key.
pub(crate) struct Sealer {
    cipher: ChaCha20Poly1305,
    key_name: String,
}

impl Sealer {
    pub(crate) fn new(key_material: &[u8], key_name: &str) -> Self {
        let mut key = Key::default();
        Hkdf::<Sha256>::new(Some(SALT), key_material)
            .expand(key_name.as_bytes(), &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Self { cipher: ChaCha20Poly1305::new(&key), key_name: key_name.to_owned() }
    }

    pub(crate) fn seal(&self, token: &StoredToken) -> Vec<u8> {
        let plaintext = serde_json::to_vec(token).expect("a StoredToken always serializes");
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let payload = Payload { msg: &plaintext, aad: self.key_name.as_bytes() };
        let ciphertext = self.cipher.encrypt(&nonce, payload).expect("encryption does not fail");
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        sealed.push(VERSION);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    /// The token in `sealed`, or `None` if it was not sealed by this key for this key name.
    pub(crate) fn open(&self, sealed: &[u8]) -> Option<StoredToken> {
        let (&version, rest) = sealed.split_first()?;
        if version != VERSION || rest.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let payload = Payload { msg: ciphertext, aad: self.key_name.as_bytes() };
        let plaintext = self.cipher.decrypt(Nonce::from_slice(nonce), payload).ok()?;
        serde_json::from_slice(&plaintext).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> StoredToken {
        StoredToken {
            access_token: "the-token".into(),
            token_type: "Bearer".into(),
            scope: Some("read".into()),
            lifetime_ms: 3_600_000,
            expires_at_ms: 1_800_000_000_000,
            refresh_at_ms: Some(1_799_998_200_000),
        }
    }

    #[test]
    fn a_sealed_token_opens_with_the_same_key_and_name_only() {
        let sealer = Sealer::new(b"secret", "key-a");
        let sealed = sealer.seal(&token());
        assert_eq!(sealer.open(&sealed), Some(token()));
        assert_eq!(Sealer::new(b"other secret", "key-a").open(&sealed), None);
        assert_eq!(Sealer::new(b"secret", "key-b").open(&sealed), None);
    }

    #[test]
    fn tampered_truncated_or_garbage_values_do_not_open() {
        let sealer = Sealer::new(b"secret", "key");
        let sealed = sealer.seal(&token());
        for i in 0..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[i] ^= 0x01;
            assert_eq!(sealer.open(&tampered), None, "byte {i}");
        }
        assert_eq!(sealer.open(&sealed[..sealed.len() - 1]), None);
        assert_eq!(sealer.open(&[]), None);
        assert_eq!(sealer.open(b"\x01garbage"), None);
    }

    #[test]
    fn a_value_without_a_refresh_time_opens_without_one() {
        let old = r#"{"access_token":"t","token_type":"Bearer","scope":null,"lifetime_ms":1,"expires_at_ms":2}"#;
        let token: StoredToken = serde_json::from_str(old).unwrap();
        assert_eq!(token.refresh_at_ms, None);
    }

    #[test]
    fn the_sealed_value_shows_neither_token_nor_secret() {
        let sealed = Sealer::new(b"hunter2", "key").seal(&token());
        let text = String::from_utf8_lossy(&sealed);
        assert!(!text.contains("the-token") && !text.contains("hunter2"));
    }
}
