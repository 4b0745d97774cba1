//! Request bodies and query strings shared by both dialects: JSON only
//! (`Content-Type: application/json`), parsed with the path of a bad parameter kept, so each
//! dialect can answer "which parameter, and what is wrong with it" in its own shape.

use crate::gate::MAX_BODY_BYTES;
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::header::CONTENT_TYPE;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

/// What was wrong with the request's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyError {
    /// The parameter at fault (`name`, `add[0].labelName`, `body`, `Content-Type`).
    pub field: String,
    pub message: String,
    /// The body is over the size limit (413, not 400).
    pub too_large: bool,
}

impl BodyError {
    fn new(field: &str, message: &str) -> Self {
        BodyError {
            field: field.to_owned(),
            message: message.to_owned(),
            too_large: false,
        }
    }
}

fn from_path_error<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> BodyError {
    let path = e.path().to_string();
    let inner = e.inner().to_string();
    let field = if path == "." {
        // `missing field `name``: the name is between the backticks.
        inner.split('`').nth(1).unwrap_or("body").to_owned()
    } else {
        path
    };
    let message = inner.split(" at line ").next().unwrap_or(&inner).to_owned();
    BodyError {
        field,
        message,
        too_large: false,
    }
}

/// Why a body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadError {
    /// Over [`MAX_BODY_BYTES`].
    TooLarge,
    /// The client stopped sending, or sent garbage framing.
    Broken,
}

/// Most of an oversized body read (and dropped) so the client gets its 413 cleanly instead of
/// a connection reset in the middle of its upload.
const MAX_DRAINED_BYTES: usize = 64 * 1024 * 1024;

/// Reads a body of at most [`MAX_BODY_BYTES`]. Past the limit the rest is drained (up to
/// 64 MiB) and dropped, then the answer is `TooLarge`.
pub async fn read_limited(body: Body) -> Result<Bytes, ReadError> {
    let mut stream = body.into_data_stream();
    let mut kept = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| ReadError::Broken)?;
        seen += chunk.len();
        if seen <= MAX_BODY_BYTES {
            kept.extend_from_slice(&chunk);
        } else if seen > MAX_DRAINED_BYTES {
            break;
        }
    }
    if seen > MAX_BODY_BYTES {
        return Err(ReadError::TooLarge);
    }
    Ok(Bytes::from(kept))
}

/// Reads and parses a JSON body into `T`.
pub async fn read_json<T: DeserializeOwned>(
    request: Request,
    _state: &AppState,
) -> Result<T, BodyError> {
    let is_json = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media_type| media_type.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(BodyError::new("Content-Type", "must be application/json"));
    }
    let bytes = read_limited(request.into_body())
        .await
        .map_err(|e| match e {
            ReadError::TooLarge => BodyError {
                too_large: true,
                ..BodyError::new("body", "is over 1 MiB")
            },
            ReadError::Broken => BodyError::new("body", "could not be read"),
        })?;
    // Every body of both dialects is a JSON object; serde would also take an array for a struct.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(BodyError::new("body", "must be a JSON object"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(from_path_error)?;
    deserializer
        .end()
        .map_err(|_| BodyError::new("body", "trailing characters after the JSON value"))?;
    Ok(value)
}

/// Deserializes an optional integer that JSON may write as `3` or `3.0` (JSON Schema counts
/// both as integers); a fraction or a number out of range is refused.
pub fn optional_integer<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    use serde::de::Error;
    let Some(number) = <Option<serde_json::Number> as serde::Deserialize>::deserialize(d)? else {
        return Ok(None);
    };
    if let Some(n) = number.as_i64() {
        return Ok(Some(n));
    }
    match number.as_f64() {
        Some(f) if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 => {
            Ok(Some(f as i64))
        }
        _ => Err(D::Error::custom(format!(
            "expected an integer, got {number}"
        ))),
    }
}

/// Deserializes an integer that JSON may write as `3` or `3.0` ([`optional_integer`], but
/// `null` is refused).
pub fn integer<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    use serde::de::Error;
    optional_integer(d)?.ok_or_else(|| D::Error::custom("expected an integer, got null"))
}

/// Parses a query string into `T`.
pub fn parse_query<T: DeserializeOwned>(query: Option<&str>) -> Result<T, BodyError> {
    let query = query.unwrap_or_default();
    let deserializer =
        serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(deserializer).map_err(from_path_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Sample {
        name: String,
        step: i64,
        version: Option<i64>,
        items: Option<Vec<String>>,
    }

    fn parse_bytes(bytes: &[u8]) -> Result<Sample, BodyError> {
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize(&mut deserializer).map_err(from_path_error)
    }

    proptest! {
        #[test]
        fn any_body_bytes_parse_or_name_what_is_wrong(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Err(e) = parse_bytes(&bytes) {
                prop_assert!(!e.field.is_empty() && !e.message.is_empty());
            }
        }

        #[test]
        fn any_query_string_parses_or_names_what_is_wrong(query in ".{0,200}") {
            if let Err(e) = parse_query::<Sample>(Some(&query)) {
                prop_assert!(!e.field.is_empty());
            }
        }

        #[test]
        fn a_body_over_the_limit_is_refused_and_one_under_it_kept(extra in 0usize..2048) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
            let size = MAX_BODY_BYTES - 1024 + extra;
            let outcome = runtime.block_on(read_limited(Body::from(vec![b'x'; size])));
            if size <= MAX_BODY_BYTES {
                prop_assert_eq!(outcome.map(|b| b.len()), Ok(size));
            } else {
                prop_assert_eq!(outcome, Err(ReadError::TooLarge));
            }
        }
    }

    #[test]
    fn a_missing_field_is_named() {
        let e = parse_bytes(br#"{"step": 1}"#).expect_err("name is missing");
        assert_eq!(e.field, "name");
        let e = parse_bytes(br#"{"name": 5, "step": 1}"#).expect_err("wrong type");
        assert_eq!(e.field, "name");
    }
}
