//! Secrets are stored only as hashes (API.md §2): SHA-256 for the high-entropy secrets and
//! tokens the server generates, argon2 for passwords people choose. Comparisons are constant time.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, SaltString};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Hex SHA-256 of a high-entropy secret: enough for values with 256 bits of randomness.
pub fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Constant-time equality of two strings (length may leak; content does not).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Does `secret` hash to `stored_hash`?
pub fn matches_sha256(secret: &str, stored_hash: &str) -> bool {
    constant_time_eq(&sha256_hex(secret), stored_hash)
}

/// A new random secret: 32 bytes as 64 hex characters.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// argon2id hash of a password, in PHC string format (salt and parameters included).
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Verifies a password against a PHC string; a malformed stored hash never matches.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_hash_and_nothing_else() {
        let hash = hash_password("correct horse").expect("hashing works");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("correct horsE", &hash));
        assert!(!verify_password("correct horse", "not a phc string"));
    }

    #[test]
    fn a_generated_secret_matches_only_its_own_hash() {
        let secret = generate_secret();
        assert_eq!(secret.len(), 64);
        let hash = sha256_hex(&secret);
        assert!(matches_sha256(&secret, &hash));
        assert!(!matches_sha256(&generate_secret(), &hash));
    }
}
