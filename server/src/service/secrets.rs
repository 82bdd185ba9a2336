//! Secrets: virtual keys, session tokens and the admin key. Only SHA-256 hashes are stored;
//! comparisons of secrets are constant-time.

use super::Error;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const ALPHANUMERIC: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER_ALPHANUMERIC: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// Every virtual key starts with this.
pub const KEY_PREFIX: &str = "sk-";
const KEY_ID_LEN: usize = 12;
const KEY_SECRET_LEN: usize = 40;

/// `len` characters drawn uniformly from `alphabet` (rejection sampling, no modulo bias).
pub fn random_string(alphabet: &[u8], len: usize) -> Result<String, getrandom::Error> {
    let limit = 256 - 256 % alphabet.len();
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut buf)?;
        for &byte in &buf {
            if usize::from(byte) < limit && out.len() < len {
                out.push(char::from(alphabet[usize::from(byte) % alphabet.len()]));
            }
        }
    }
    Ok(out)
}

/// A random alphanumeric secret (about 5.95 bits a character).
pub fn random_secret(len: usize) -> Result<String, Error> {
    random_string(ALPHANUMERIC, len).map_err(|err| Error::Internal(format!("random: {err}")))
}

pub fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new virtual key, `sk-<public id>_<secret>`, and what is stored of it.
pub struct NewKey {
    pub key: String,
    pub key_id: String,
    pub key_hash: String,
    pub key_hint: String,
}

pub fn new_virtual_key() -> Result<NewKey, Error> {
    let key_id = random_string(LOWER_ALPHANUMERIC, KEY_ID_LEN)
        .map_err(|err| Error::Internal(format!("random: {err}")))?;
    new_secret_for(key_id)
}

/// A new secret for a key that keeps its public id (a rotation).
pub fn new_secret_for(key_id: String) -> Result<NewKey, Error> {
    let secret = random_secret(KEY_SECRET_LEN)?;
    let key = format!("{KEY_PREFIX}{key_id}_{secret}");
    Ok(NewKey {
        key_hash: sha256_hex(&key),
        key_hint: secret[secret.len() - 4..].to_string(),
        key_id,
        key,
    })
}

/// The form of a key shown after it was issued: its public id and the secret's last four.
pub fn masked_key(key_id: &str, key_hint: &str) -> String {
    format!("{KEY_PREFIX}{key_id}...{key_hint}")
}

/// The public id of a token shaped like a virtual key, `sk-<id>_<secret>`.
pub fn virtual_key_id(token: &str) -> Option<&str> {
    let (id, _) = token.strip_prefix(KEY_PREFIX)?.split_once('_')?;
    (id.len() == KEY_ID_LEN && id.bytes().all(|b| LOWER_ALPHANUMERIC.contains(&b))).then_some(id)
}

/// Whether `candidate` is shaped like a virtual key (as opposed to a key's public id).
pub fn is_virtual_key(candidate: &str) -> bool {
    candidate.starts_with(KEY_PREFIX)
}

/// A SHA-256 digest in hex, as keys are stored (and as LiteLLM names keys).
pub fn is_sha256_hex(candidate: &str) -> bool {
    candidate.len() == 64 && candidate.chars().all(|c| c.is_ascii_hexdigit())
}

/// The admin key, held as a digest so comparisons take the same time whatever the input.
pub struct MasterKey {
    digest: [u8; 32],
}

impl MasterKey {
    pub fn new(key: &str) -> Self {
        Self {
            digest: Sha256::digest(key.as_bytes()).into(),
        }
    }

    pub fn matches(&self, candidate: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(candidate.as_bytes()).into();
        digest.ct_eq(&self.digest).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_keys_are_unique_and_stored_only_as_hashes() {
        let a = new_virtual_key().expect("random");
        let b = new_virtual_key().expect("random");
        assert_ne!(a.key, b.key);
        assert!(a.key.starts_with("sk-"));
        assert_eq!(a.key_hash, sha256_hex(&a.key));
        assert!(!a.key_hash.contains(&a.key[3..]));
        assert!(a.key.ends_with(&a.key_hint));
        assert_eq!(a.key.len(), 3 + KEY_ID_LEN + 1 + KEY_SECRET_LEN);
    }

    #[test]
    fn master_key_matches_only_itself() {
        let master = MasterKey::new("sk-admin-secret");
        assert!(master.matches("sk-admin-secret"));
        assert!(!master.matches("sk-admin-secreT"));
        assert!(!master.matches(""));
    }
}
