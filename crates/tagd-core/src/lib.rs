//! The tagd domain: identifiers and names parsed into types, tag values, the rules shared by
//! both API dialects, the error type, and the [`Store`] trait every storage backend implements.
//!
//! This crate knows nothing of HTTP or SQL: the dialects (`tagd-http`) and the backends
//! (`tagd-sqlite`, `tagd-postgres`) both depend on it, never on each other.
#![forbid(unsafe_code)]

pub mod bulk;
pub mod error;
pub mod idempotency;
pub mod ids;
pub mod labels;
pub mod model;
pub mod names;
pub mod operator;
pub mod secrets;
pub mod store;
pub mod timefmt;
pub mod value;

pub use error::{Error, Result};
pub use ids::{CorpId, ExternalId, OrgId, UserId};
pub use model::*;
pub use names::{Category, Description, GroupName, LabelName, VariableName};
pub use store::{PoolStats, Store};
pub use value::{Attribute, TagValue};
