//! Property tests over request parsing and validation: every parser takes any input without
//! panicking, accepts exactly what its rule allows, and gives back what it accepted.
//!
//! CI runs the default 256 cases per property; a longer run:
//! `PROPTEST_CASES=200000 cargo test --release -p tagd-core --test fuzz_parsers`.

use proptest::prelude::*;
use tagd_core::idempotency::parse_key;
use tagd_core::secrets::decode_basic_header;
use tagd_core::*;

proptest! {
    #[test]
    fn no_parser_panics_on_any_string(raw in ".{0,300}") {
        let _ = UserId::parse(&raw);
        let _ = ExternalId::parse("id", &raw);
        let _ = GroupName::parse(&raw);
        let _ = VariableName::parse(&raw);
        let _ = Category::parse(&raw);
        let _ = LabelName::parse_optional(&raw);
        let _ = Description::parse("description", &raw, 1024);
        let _ = Attribute::parse(&raw);
        let _ = parse_key(&raw);
        let _ = decode_basic_header(&raw);
        for attribute in [Attribute::Define, Attribute::Number, Attribute::String] {
            let _ = TagValue::parse(attribute, &raw);
        }
    }

    #[test]
    fn a_user_id_is_accepted_exactly_when_it_follows_the_rule(raw in "[A-Za-z0-9_.:@ -]{0,70}") {
        let ok = !raw.is_empty() && raw.len() <= 64 && !raw.contains(' ');
        prop_assert_eq!(UserId::parse(&raw).is_ok(), ok);
        if ok {
            prop_assert_eq!(UserId::parse(&raw).map(|u| u.to_string()).ok(), Some(raw));
        }
    }

    #[test]
    fn a_variable_name_is_accepted_exactly_when_it_matches_the_pattern(raw in "[A-Za-z0-9_-]{0,70}") {
        let first_ok = raw.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        let ok = first_ok && raw.len() <= 64 && !raw.contains('-');
        prop_assert_eq!(VariableName::parse(&raw).is_ok(), ok);
    }

    #[test]
    fn a_group_name_keeps_its_text_in_nfc_but_for_surrounding_space(core in "[^\\s\\p{Cc}]{1,200}", pad in " {0,3}") {
        use unicode_normalization::UnicodeNormalization;
        let parsed = GroupName::parse(&format!("{pad}{core}{pad}")).map(|n| n.to_string());
        if core.chars().any(tagd_core::names::is_invisible_format_char) {
            prop_assert!(parsed.is_err(), "invisible characters are refused");
        } else {
            prop_assert_eq!(parsed.ok(), Some(core.nfc().collect::<String>()));
        }
    }

    #[test]
    fn every_finite_number_round_trips_and_nothing_else_parses(n in proptest::num::f64::ANY) {
        let parsed = TagValue::parse(Attribute::Number, &n.to_string());
        if n.is_finite() {
            prop_assert_eq!(parsed.ok(), Some(TagValue::Number(n)));
        } else {
            prop_assert!(parsed.is_err());
        }
    }

    #[test]
    fn a_string_value_is_kept_up_to_1024_characters(raw in "[^\\x00]{0,1100}") {
        let parsed = TagValue::parse(Attribute::String, &raw);
        if raw.chars().count() <= 1024 {
            prop_assert_eq!(parsed.ok(), Some(TagValue::String(raw)));
        } else {
            prop_assert!(parsed.is_err());
        }
    }

    #[test]
    fn a_basic_header_round_trips_any_password_bytes(user in "[a-z0-9._]{1,20}", password in proptest::collection::vec(any::<u8>(), 0..64)) {
        use base64::Engine;
        let mut raw = format!("{user}:").into_bytes();
        raw.extend_from_slice(&password);
        let header = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(&raw));
        prop_assert_eq!(decode_basic_header(&header), Some((user, password)));
    }
}
