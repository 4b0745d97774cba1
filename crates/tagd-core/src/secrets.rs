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

/// argon2id hash of a password (any bytes), in PHC string format (salt and parameters
/// included).
pub fn hash_password(password: &[u8]) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password, &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Verifies a password against a PHC string; a malformed stored hash never matches.
pub fn verify_password(password: &[u8], phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|parsed| Argon2::default().verify_password(password, &parsed).is_ok())
        .unwrap_or(false)
}

/// Decodes `Basic <base64(user:password)>` into the user name and the password bytes.
///
/// Forgiving on purpose: padding may be missing or superfluous (the seed's own example carries
/// `==` after a complete quantum) and the password may be any bytes, since clients that
/// already call the v2 API send whatever they were given. The user name must be UTF-8.
pub fn decode_basic_header(header: &str) -> Option<(String, Vec<u8>)> {
    use base64::engine::{
        general_purpose, DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig,
    };
    use base64::Engine;
    const FORGIVING: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::RequireNone)
            .with_decode_allow_trailing_bits(true),
    );
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let encoded = encoded.trim().trim_end_matches('=');
    let decoded = FORGIVING
        .decode(encoded)
        .or_else(|_| general_purpose::STANDARD.decode(encoded))
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_hash_and_nothing_else() {
        let hash = hash_password(b"correct horse").expect("hashing works");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(b"correct horse", &hash));
        assert!(!verify_password(b"correct horsE", &hash));
        assert!(!verify_password(b"correct horse", "not a phc string"));
    }

    #[test]
    fn a_generated_secret_matches_only_its_own_hash() {
        let secret = generate_secret();
        assert_eq!(secret.len(), 64);
        let hash = sha256_hex(&secret);
        assert!(matches_sha256(&secret, &hash));
        assert!(!matches_sha256(&generate_secret(), &hash));
    }

    #[test]
    fn a_basic_header_splits_at_the_first_colon() {
        let header = "Basic c2FudC5wXzEyMzpwYTpzcw=="; // sant.p_123:pa:ss
        let (user, password) = decode_basic_header(header).expect("decodes");
        assert_eq!(
            (user.as_str(), password.as_slice()),
            ("sant.p_123", b"pa:ss".as_slice())
        );
        assert_eq!(decode_basic_header("Bearer abc"), None);
        assert_eq!(decode_basic_header("Basic !!!"), None);
        assert_eq!(decode_basic_header("Basic bm9jb2xvbg=="), None, "no colon");
    }

    #[test]
    fn the_seed_header_decodes_despite_its_superfluous_padding() {
        let header = "Basic c2FudC5wXzEyMzpiMmVhMGFhYWI1ZThmODg5ZzNGE2NjA5NTIwM2FlNw==";
        let (user, password) = decode_basic_header(header).expect("decodes");
        assert_eq!(user, "sant.p_123");
        assert!(password.starts_with(b"b2ea0aaab5e8f889g3F"));
    }
}
