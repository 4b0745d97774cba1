//! Tag group attributes and the values assignments hold.

use crate::error::{Error, Result};
use serde::Serialize;

/// Longest `string` tag value, in characters.
pub const MAX_STRING_VALUE_CHARS: usize = 1024;

/// The three kinds of tag group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Attribute {
    /// Yes/no; a v2 label is a `define` group.
    Define,
    Number,
    String,
}

impl Attribute {
    pub fn parse(raw: &str) -> Result<Self> {
        match raw {
            "define" => Ok(Attribute::Define),
            "number" => Ok(Attribute::Number),
            "string" => Ok(Attribute::String),
            _ => Err(Error::invalid(
                "attribute",
                "must be one of define, number, string",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Attribute::Define => "define",
            Attribute::Number => "number",
            Attribute::String => "string",
        }
    }
}

/// The value of one assignment, typed by its group's attribute.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum TagValue {
    Define(bool),
    Number(f64),
    String(String),
}

impl TagValue {
    /// The value as typed JSON, as the API shows values (`true`, `12.5`, `"Pune"`); a number
    /// JSON cannot hold (never stored: values are finite) shows as null.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            TagValue::Define(on) => serde_json::Value::Bool(*on),
            TagValue::Number(n) => serde_json::Number::from_f64(*n)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            TagValue::String(s) => serde_json::Value::String(s.clone()),
        }
    }

    /// Parses the string a client sends in `value` according to the group's attribute.
    pub fn parse(attribute: Attribute, raw: &str) -> Result<Self> {
        match attribute {
            Attribute::Define => match raw.to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(TagValue::Define(true)),
                "false" | "0" => Ok(TagValue::Define(false)),
                _ => Err(Error::InvalidValue(
                    "a define tag takes True or False".into(),
                )),
            },
            Attribute::Number => parse_decimal(raw).map(TagValue::Number),
            Attribute::String => {
                if raw.chars().count() > MAX_STRING_VALUE_CHARS {
                    Err(Error::InvalidValue(format!(
                        "a string tag takes at most {MAX_STRING_VALUE_CHARS} characters"
                    )))
                } else if raw.contains('\0') {
                    Err(Error::InvalidValue(
                        "a string tag must not contain NUL".into(),
                    ))
                } else {
                    Ok(TagValue::String(raw.to_owned()))
                }
            }
        }
    }

    /// The value whose canonical text ([`TagValue::to_text`]) is `text`, as a group of
    /// `attribute` keeps it. Text written when the group had another attribute (it may change
    /// while nothing is assigned) reads as a string: a later entry of the log removed it.
    pub fn from_text(attribute: Attribute, text: &str) -> Self {
        match attribute {
            Attribute::Define if text == "True" || text == "False" => {
                TagValue::Define(text == "True")
            }
            Attribute::Number => match text.parse::<f64>() {
                Ok(n) => TagValue::Number(n),
                Err(_) => TagValue::String(text.to_owned()),
            },
            _ => TagValue::String(text.to_owned()),
        }
    }

    pub fn attribute(&self) -> Attribute {
        match self {
            TagValue::Define(_) => Attribute::Define,
            TagValue::Number(_) => Attribute::Number,
            TagValue::String(_) => Attribute::String,
        }
    }

    /// The canonical text of the value, as kept in the assignment history.
    pub fn to_text(&self) -> String {
        match self {
            TagValue::Define(b) => if *b { "True" } else { "False" }.to_owned(),
            TagValue::Number(n) => n.to_string(),
            TagValue::String(s) => s.clone(),
        }
    }

    pub fn define_value(&self) -> Option<bool> {
        match self {
            TagValue::Define(b) => Some(*b),
            _ => None,
        }
    }

    pub fn number_value(&self) -> Option<f64> {
        match self {
            TagValue::Number(n) => Some(*n),
            _ => None,
        }
    }

    pub fn string_value(&self) -> Option<&str> {
        match self {
            TagValue::String(s) => Some(s),
            _ => None,
        }
    }
}

/// A finite decimal number: optional sign, digits, optional fraction and exponent.
/// `inf`, `NaN`, hex and empty strings are refused, as are numbers that overflow to infinity.
fn parse_decimal(raw: &str) -> Result<f64> {
    let refuse = || Error::InvalidValue("a number tag takes a finite decimal number".into());
    let body = raw.strip_prefix(['-', '+']).unwrap_or(raw);
    let looks_decimal = body.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'));
    if !looks_decimal {
        return Err(refuse());
    }
    match raw.parse::<f64>() {
        Ok(n) if n.is_finite() => Ok(n),
        _ => Err(refuse()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn define_values_accept_true_false_in_any_case_and_one_zero() {
        for (raw, want) in [
            ("True", true),
            ("TRUE", true),
            ("1", true),
            ("false", false),
            ("0", false),
        ] {
            assert_eq!(
                TagValue::parse(Attribute::Define, raw).ok(),
                Some(TagValue::Define(want))
            );
        }
        assert!(TagValue::parse(Attribute::Define, "yes").is_err());
        assert!(TagValue::parse(Attribute::Define, "").is_err());
    }

    #[test]
    fn number_values_must_be_finite_decimals() {
        assert_eq!(
            TagValue::parse(Attribute::Number, "1250.5").ok(),
            Some(TagValue::Number(1250.5))
        );
        assert_eq!(
            TagValue::parse(Attribute::Number, "-3e2").ok(),
            Some(TagValue::Number(-300.0))
        );
        for bad in [
            "",
            "abc",
            "NaN",
            "inf",
            "-infinity",
            "1e999",
            "0x10",
            "1,5",
            " 1",
        ] {
            assert!(
                TagValue::parse(Attribute::Number, bad).is_err(),
                "{bad} was accepted"
            );
        }
    }

    #[test]
    fn string_values_are_limited_to_1024_characters() {
        assert!(TagValue::parse(Attribute::String, &"s".repeat(1024)).is_ok());
        assert!(TagValue::parse(Attribute::String, &"s".repeat(1025)).is_err());
        assert_eq!(
            TagValue::parse(Attribute::String, "Pune").ok(),
            Some(TagValue::String("Pune".into()))
        );
    }

    #[test]
    fn attribute_names_are_exact() {
        assert_eq!(Attribute::parse("number").ok(), Some(Attribute::Number));
        assert!(Attribute::parse("Number").is_err());
        assert!(Attribute::parse("bool").is_err());
    }
}
