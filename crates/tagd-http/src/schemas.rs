//! The OpenAPI schemas of the strings core parses, built from core's own patterns and limits
//! so the document states each rule once, where the parser is. A field names one with
//! `#[schema(value_type = schemas::Name, inline)]` (or `inline(schemas::Name)` in a path
//! parameter); the document shows it inline, as if written there.

use std::borrow::Cow;
use tagd_core::ids::{EXTERNAL_ID_PATTERN, USER_ID_PATTERN};
use tagd_core::names::{
    name_pattern, padded_name_pattern, MAX_CATEGORY_CHARS, MAX_NAME_CHARS, VARIABLE_NAME_PATTERN,
};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;

/// A string of `pattern`, with optional length bounds.
fn text(pattern: String, max_chars: Option<usize>) -> RefOr<Schema> {
    let builder = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern));
    let builder = match max_chars {
        Some(max) => builder.min_length(Some(1)).max_length(Some(max)),
        None => builder,
    };
    builder.into()
}

macro_rules! text_schema {
    ($(#[$doc:meta])* $name:ident => $schema:expr) => {
        $(#[$doc])*
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                $schema
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    };
}

text_schema!(
    /// A 32-character lowercase hex id: `corp_id`, `entity_id`, `tags_group_id`, `app_id`.
    ExternalId => text(EXTERNAL_ID_PATTERN.to_owned(), None)
);
text_schema!(
    /// A v5 user id.
    UserId => text(USER_ID_PATTERN.to_owned(), None)
);
text_schema!(
    /// A name of 1–255 characters: tag group, label, organization, app.
    Name => text(name_pattern(), Some(MAX_NAME_CHARS))
);
text_schema!(
    /// A category of 1–64 characters.
    Category => text(name_pattern(), Some(MAX_CATEGORY_CHARS))
);
text_schema!(
    /// A label name that tagd trims first: white space around 1–255 characters, or only white
    /// space (which is refused with the name's own error).
    PaddedLabelName => text(padded_name_pattern(MAX_NAME_CHARS), None)
);
text_schema!(
    /// A variable name: a letter or `_`, then up to 63 letters, digits or `_`.
    VariableName => text(VARIABLE_NAME_PATTERN.to_owned(), None)
);
