//! Names parsed into types ("parse, don't validate"): once a value of one of these types
//! exists it satisfies the limits of API.md §1, so stores and handlers never re-check them.

use crate::error::{Error, Result};
use serde::Serialize;

use unicode_normalization::UnicodeNormalization;

/// Characters that change how text looks without showing themselves: zero-width ones, the
/// bidirectional controls (the "Trojan Source" characters) and the byte order mark. Two names
/// that differ only by these would look the same to a person. Variation selectors stay
/// allowed (an emoji's `U+FE0F` is part of how it is written); the zero-width joiner does not,
/// so emoji joined into one glyph (a family) are refused.
pub fn is_invisible_format_char(c: char) -> bool {
    matches!(c,
        '\u{00AD}'                  // soft hyphen
        | '\u{034F}'                // combining grapheme joiner
        | '\u{061C}'                // Arabic letter mark
        | '\u{115F}' | '\u{1160}'   // Hangul fillers
        | '\u{180E}'                // Mongolian vowel separator (formerly a space)
        | '\u{200B}'..='\u{200F}'   // zero-width space, joiners, LRM, RLM
        | '\u{202A}'..='\u{202E}'   // bidi embeddings and overrides
        | '\u{2060}'..='\u{206F}'   // word joiner, invisible operators, bidi isolates
        | '\u{3164}'                // Hangul filler
        | '\u{FEFF}'                // byte order mark, zero-width no-break space
        | '\u{FFA0}'                // halfwidth Hangul filler
        | '\u{FFF0}'..='\u{FFFF}'   // specials and non-characters
        | '\u{E0000}'..='\u{E007F}' // tag characters
        | '\u{10FFFE}' | '\u{10FFFF}')
}

/// [`is_invisible_format_char`] as a regular-expression character class body, written with
/// `\u` escapes of four hex digits and `\U` escapes of eight (as Python's `re` reads them):
/// some of these characters, written raw, are not allowed in the YAML that OpenAPI tools read
/// the document as.
pub const INVISIBLE_CLASS: &str = r"\u00AD\u034F\u061C\u115F\u1160\u180E\u200B-\u200F\u202A-\u202E\u2060-\u206F\u3164\uFEFF\uFFA0\uFFF0-\uFFFF\U000E0000-\U000E007F\U0010FFFE\U0010FFFF";

/// Characters no name holds: controls (C0, DEL, C1), then [`INVISIBLE_CLASS`].
fn refused_class() -> String {
    format!(r"\x00-\x1f\x7f-\x9f{INVISIBLE_CLASS}")
}

/// What a name (group, label, category, organization, app) is, as a regular expression for API
/// documents: no refused character, and no white space at either end (length is bounded
/// separately, by `minLength`/`maxLength`).
pub fn name_pattern() -> String {
    let refused = refused_class();
    format!(r"^[^\s{refused}]([^{refused}]*[^\s{refused}])?$")
}

/// A name as a client may send it where tagd trims it first: white space around a name of 1 to
/// `max` characters, or only white space.
pub fn padded_name_pattern(max: usize) -> String {
    let refused = refused_class();
    let inner = max - 2;
    format!(r"^\s*([^\s{refused}]([^{refused}]{{0,{inner}}}[^\s{refused}])?)?\s*$")
}

/// What [`VariableName::parse`] accepts, as a regular expression.
pub const VARIABLE_NAME_PATTERN: &str = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$";

/// The NFC form of `raw` with surrounding white space trimmed, refused (naming `field`) when
/// it holds a control, zero-width or bidirectional character: what every name and label of
/// tagd is stored as, so two names that look the same are the same.
pub fn clean_text(field: &str, raw: &str) -> Result<String> {
    let text: String = raw.trim().nfc().collect();
    if text.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    if text.chars().any(is_invisible_format_char) {
        return Err(Error::invalid(
            field,
            "must not contain zero-width, bidirectional or other invisible characters",
        ));
    }
    Ok(text)
}

/// The key a name is searched by: its Unicode lower case, in NFC. Stored beside every tag
/// group's name and compared byte-wise, so "starts with, ignoring case" is a range on an index.
pub fn search_key(name: &str) -> String {
    name.nfc()
        .collect::<String>()
        .to_lowercase()
        .nfc()
        .collect()
}

/// The first string after every string that starts with `prefix` (byte-wise): `prefix` with
/// U+10FFFF appended, a non-character no stored key holds.
pub fn prefix_upper_bound(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

/// Checks a trimmed, non-empty name of at most `max` characters without control characters.
pub(crate) fn bounded_name(field: &str, raw: &str, max: usize) -> Result<String> {
    let trimmed = clean_text(field, raw)?;
    if trimmed.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if trimmed.chars().count() > max {
        return Err(Error::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(trimmed)
}

macro_rules! string_newtype {
    ($name:ident) => {
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Wraps a value read back from the database, which only ever holds parsed names.
            pub fn from_trusted(raw: String) -> Self {
                $name(raw)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_newtype!(GroupName);
string_newtype!(LabelName);
string_newtype!(VariableName);
string_newtype!(Category);
string_newtype!(Description);

/// Longest tag group or label name, in characters.
pub const MAX_NAME_CHARS: usize = 255;
/// Longest category, in characters.
pub const MAX_CATEGORY_CHARS: usize = 64;
/// Longest tag group description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1024;

impl GroupName {
    /// 1–255 characters after trimming surrounding white space.
    pub fn parse(raw: &str) -> Result<Self> {
        bounded_name("name", raw, MAX_NAME_CHARS).map(GroupName)
    }
}

impl LabelName {
    /// A v2 label name: kept as sent but for surrounding white space, compared exactly.
    /// Returns `Ok(None)` for a blank name, which changeLabels skips without a warning.
    pub fn parse_optional(raw: &str) -> Result<Option<Self>> {
        if raw.trim().is_empty() {
            return Ok(None);
        }
        bounded_name("labelName", raw, MAX_NAME_CHARS).map(|n| Some(LabelName(n)))
    }

    pub fn as_group_name(&self) -> GroupName {
        GroupName(self.0.clone())
    }
}

impl VariableName {
    /// `^[A-Za-z_][A-Za-z0-9_]{0,63}$`.
    pub fn parse(raw: &str) -> Result<Self> {
        let mut chars = raw.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if first_ok && rest_ok && raw.len() <= 64 {
            Ok(VariableName(raw.to_owned()))
        } else {
            Err(Error::invalid(
                "variable_name",
                "must match ^[A-Za-z_][A-Za-z0-9_]{0,63}$",
            ))
        }
    }
}

impl Category {
    /// 1–64 characters after trimming.
    pub fn parse(raw: &str) -> Result<Self> {
        bounded_name("category", raw, MAX_CATEGORY_CHARS).map(Category)
    }
}

impl Description {
    /// Present, possibly empty, at most 1,024 characters.
    pub fn parse(field: &str, raw: &str, max: usize) -> Result<Self> {
        if raw.chars().count() > max {
            return Err(Error::invalid(
                field,
                format!("must be at most {max} characters"),
            ));
        }
        if raw.contains('\0') {
            return Err(Error::invalid(field, "must not contain NUL characters"));
        }
        if raw
            .chars()
            .any(|c| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'))
        {
            return Err(Error::invalid(
                field,
                "must not contain bidirectional override characters",
            ));
        }
        Ok(Description(raw.nfc().collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_name_is_trimmed_and_limited_to_255_characters() {
        assert_eq!(
            GroupName::parse("  VIP ").map(|n| n.0).ok(),
            Some("VIP".into())
        );
        assert!(GroupName::parse(&"é".repeat(255)).is_ok());
        assert!(GroupName::parse(&"é".repeat(256)).is_err());
        assert!(GroupName::parse("   ").is_err());
        assert!(GroupName::parse("a\0b").is_err());
    }

    #[test]
    fn the_invisible_class_holds_exactly_the_refused_characters() {
        // The class is `\u` (4 hex digits) and `\U` (8) escapes, single or as `a-b` ranges.
        let mut ranges = Vec::new();
        let mut rest = INVISIBLE_CLASS;
        let escaped = |s: &str| -> (char, usize) {
            let width = if s.starts_with("\\U") { 8 } else { 4 };
            let code = u32::from_str_radix(&s[2..2 + width], 16).expect("hex");
            (char::from_u32(code).expect("a char"), 2 + width)
        };
        while !rest.is_empty() {
            let (first, used) = escaped(rest);
            rest = &rest[used..];
            let last = match rest.strip_prefix('-') {
                Some(after) => {
                    let (last, used) = escaped(after);
                    rest = &after[used..];
                    last
                }
                None => first,
            };
            ranges.push(first..=last);
        }
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let in_class = ranges.iter().any(|r| r.contains(&c));
            assert_eq!(in_class, is_invisible_format_char(c), "{:04X}", c as u32);
        }
    }

    #[test]
    fn names_are_stored_in_nfc_so_two_that_look_alike_are_one() {
        let composed = GroupName::parse("Caf\u{e9}").map(|n| n.0).ok();
        let decomposed = GroupName::parse("Cafe\u{301}").map(|n| n.0).ok();
        assert_eq!(composed, decomposed);
        assert_eq!(composed.as_deref(), Some("Caf\u{e9}"));
    }

    #[test]
    fn zero_width_and_bidi_characters_are_refused_with_the_field_named() {
        for raw in [
            "V\u{200B}IP",
            "VIP\u{202E}",
            "\u{2066}VIP",
            "V\u{FEFF}IP",
            "a\u{200D}b",
        ] {
            let refused = GroupName::parse(raw);
            assert!(
                matches!(&refused, Err(Error::InvalidParameter { field, .. }) if field == "name"),
                "{raw:?} gave {refused:?}"
            );
        }
        assert!(LabelName::parse_optional("VIP\u{200F}").is_err());
        assert!(Description::parse("description", "x\u{202E}y", 1024).is_err());
        assert!(GroupName::parse("Ünïcödé ✓ 北京").is_ok());
    }

    #[test]
    fn the_search_key_ignores_case_and_a_prefix_range_holds_every_name_that_starts_with_it() {
        assert_eq!(search_key("Premium GOLD"), "premium gold");
        assert_eq!(search_key("ÉTÉ"), "été");
        let upper = prefix_upper_bound("prem");
        for name in [
            "prem",
            "premium",
            "premium gold",
            "prem\u{10FFFD}x",
            "prem北",
        ] {
            assert!(name >= "prem" && name < upper.as_str(), "{name}");
        }
        assert!("prel" < "prem" && "pren" >= upper.as_str());
    }

    #[test]
    fn the_seed_label_names_are_valid_and_kept_as_sent() {
        for raw in ["Testing_UAT_@_123", "Old1 Customer1"] {
            let parsed = LabelName::parse_optional(raw).ok().flatten();
            assert_eq!(parsed.map(|n| n.0), Some(raw.to_owned()));
        }
    }

    #[test]
    fn a_blank_label_name_is_skipped_not_refused() {
        assert!(matches!(LabelName::parse_optional(""), Ok(None)));
        assert!(matches!(LabelName::parse_optional("  \t"), Ok(None)));
    }

    #[test]
    fn a_variable_name_follows_the_identifier_pattern() {
        assert!(VariableName::parse("champion_26004").is_ok());
        assert!(VariableName::parse("_x").is_ok());
        assert!(VariableName::parse(&format!("a{}", "b".repeat(63))).is_ok());
        assert!(VariableName::parse(&format!("a{}", "b".repeat(64))).is_err());
        assert!(VariableName::parse("9lives").is_err());
        assert!(VariableName::parse("has-dash").is_err());
        assert!(VariableName::parse("").is_err());
    }

    #[test]
    fn a_description_may_be_empty_but_not_longer_than_its_limit() {
        assert!(Description::parse("description", "", MAX_DESCRIPTION_CHARS).is_ok());
        assert!(Description::parse("description", &"d".repeat(1024), 1024).is_ok());
        assert!(Description::parse("description", &"d".repeat(1025), 1024).is_err());
    }

    #[test]
    fn a_category_is_one_to_64_characters() {
        assert!(Category::parse("follow_up").is_ok());
        assert!(Category::parse("").is_err());
        assert!(Category::parse(&"c".repeat(65)).is_err());
    }
}
