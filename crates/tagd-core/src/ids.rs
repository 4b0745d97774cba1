//! Identifiers. Every entity has a dense internal integer id (what v2 shows) and, where the
//! spec shows one, a 32-character lowercase hex external id (what v5 shows).

use crate::error::{Error, Result};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Internal id of an organization: the tenant key every store method takes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OrgId(pub i64);

/// Internal id of an app (its row), as tokens and the store refer to it; never shown to
/// clients, who know an app by its external `app_id` ([`ExternalId`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AppRef(pub i64);

/// What [`ExternalId::parse`] accepts, as a regular expression (for API documents).
pub const EXTERNAL_ID_PATTERN: &str = r"^[0-9a-f]{32}$";
/// What [`UserId::parse`] accepts, as a regular expression (for API documents).
pub const USER_ID_PATTERN: &str = r"^[A-Za-z0-9_.:@-]{1,64}$";

/// A 32-character lowercase hex id (a UUID without dashes): `corp_id`, `entity_id`, `app_id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ExternalId(String);

/// An organization's external id, as clients send it in `corp_id`: a 32-hex id of its own
/// type, so it cannot be passed where a group's or an app's id is meant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CorpId(ExternalId);

impl CorpId {
    /// Parses a 32-character lowercase hex string; anything else is refused (naming `field`).
    pub fn parse(field: &str, raw: &str) -> Result<Self> {
        ExternalId::parse(field, raw).map(CorpId)
    }

    /// A fresh id (see [`ExternalId::generate`]).
    pub fn generate() -> Self {
        CorpId(ExternalId::generate())
    }

    /// An id read back from the database, where only valid ones are written.
    pub fn from_trusted(raw: String) -> Self {
        CorpId(ExternalId::from_trusted(raw))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for CorpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl ExternalId {
    /// Parses a 32-character lowercase hex string; anything else is refused.
    pub fn parse(field: &str, raw: &str) -> Result<Self> {
        let ok = raw.len() == 32
            && raw
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if ok {
            Ok(ExternalId(raw.to_owned()))
        } else {
            Err(Error::invalid(field, "must be 32 lowercase hex characters"))
        }
    }

    /// A fresh id: 48 bits of Unix milliseconds, then 80 random bits (the layout of a
    /// UUIDv7, without its version bits). Ids made later sort later, so a new row's id lands
    /// at the end of its index instead of on a random page: with fully random ids, a bulk
    /// import rewrote one random index page per row, most of its disk writes. Ids are never
    /// secrets (every lookup is also scoped by organization), and 80 random bits still make
    /// two ids of one millisecond differ.
    pub fn generate() -> Self {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let mut bytes = [0u8; 16];
        bytes[..6].copy_from_slice(&(millis as u64).to_be_bytes()[2..]);
        rand::thread_rng().fill_bytes(&mut bytes[6..]);
        ExternalId::from_bytes(&bytes)
    }

    /// The id of the assignment of `(user_ref, group_ref)` in `org`, made at `ctime` (Unix
    /// seconds): 48 bits of `ctime` in milliseconds, then 80 bits of a SHA-256 of the pair.
    /// Ids still sort by creation (the point of [`ExternalId::generate`]'s layout), and a
    /// pair has one assignment row for ever (a removal keeps the row), so the id is unique and
    /// can be computed again from what the in-memory index keeps anyway: it need not store 16
    /// bytes per assignment.
    pub fn of_assignment(org: OrgId, user_ref: i64, group_ref: i64, ctime: i64) -> Self {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        hash.update(b"tagd assignment id\0");
        for part in [org.0, user_ref, group_ref] {
            hash.update(part.to_be_bytes());
        }
        let digest = hash.finalize();
        let millis = ctime.max(0).saturating_mul(1000) as u64;
        let mut bytes = [0u8; 16];
        bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
        bytes[6..].copy_from_slice(&digest[..10]);
        ExternalId::from_bytes(&bytes)
    }

    /// The 32 lowercase hex digits of `bytes`. Written by hand: the index computes one per
    /// listed assignment, and `hex::encode` goes through a char iterator.
    fn from_bytes(bytes: &[u8; 16]) -> Self {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut text = String::with_capacity(32);
        for byte in bytes {
            text.push(char::from(DIGITS[usize::from(byte >> 4)]));
            text.push(char::from(DIGITS[usize::from(byte & 15)]));
        }
        ExternalId(text)
    }

    /// Wraps a value read back from the database, which only ever holds parsed ids.
    pub fn from_trusted(raw: String) -> Self {
        ExternalId(raw)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user (v2: customer) id: 1–64 characters from `[A-Za-z0-9_.:@-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    pub fn parse(raw: &str) -> Result<Self> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || "_.:@-".contains(c);
        if raw.is_empty() || raw.len() > 64 {
            return Err(Error::invalid("user_id", "must be 1 to 64 characters"));
        }
        if !raw.chars().all(allowed) {
            return Err(Error::invalid(
                "user_id",
                "may only contain letters, digits and _ . : @ -",
            ));
        }
        Ok(UserId(raw.to_owned()))
    }

    pub fn from_trusted(raw: String) -> Self {
        UserId(raw)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_external_id_must_be_32_lowercase_hex_characters() {
        assert!(ExternalId::parse("corp_id", "7a529dce6d4d41df882a4fcb9ce8277c").is_ok());
        assert!(ExternalId::parse("corp_id", "7A529DCE6D4D41DF882A4FCB9CE8277C").is_err());
        assert!(ExternalId::parse("corp_id", "7a529dce").is_err());
        assert!(ExternalId::parse("corp_id", "7a529dce-6d4d-41df-882a-4fcb9ce8").is_err());
    }

    #[test]
    fn generated_external_ids_sort_by_creation_time() {
        let first = ExternalId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let later = ExternalId::generate();
        assert!(first < later, "{first} then {later}");
    }

    #[test]
    fn generated_external_ids_parse_and_differ() {
        let a = ExternalId::generate();
        let b = ExternalId::generate();
        assert!(ExternalId::parse("x", a.as_str()).is_ok());
        assert_ne!(a, b);
    }

    #[test]
    fn ids_are_spelled_as_hex_encode_spells_them() {
        for seed in [0u8, 1, 0x5a, 0xff] {
            let bytes: [u8; 16] = std::array::from_fn(|i| seed.wrapping_mul(i as u8 + 7));
            assert_eq!(ExternalId::from_bytes(&bytes).as_str(), hex::encode(bytes));
        }
    }

    #[test]
    fn a_user_id_allows_the_documented_characters_only() {
        assert!(UserId::parse("564663098").is_ok());
        assert!(UserId::parse("a.b:c@d-e_f").is_ok());
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse(&"x".repeat(65)).is_err());
        assert!(UserId::parse("has space").is_err());
        assert!(UserId::parse("ünï").is_err());
    }
}
