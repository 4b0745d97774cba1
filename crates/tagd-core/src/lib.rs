//! The tagd domain: identifiers and names parsed into types, tag values, the rules shared by
//! both API dialects, the error type, and the [`Store`] traits every storage backend implements (one per area, beside its rules).
//!
//! This crate knows nothing of HTTP or SQL: the dialects (`tagd-http`) and the backends
//! (`tagd-sqlite`, `tagd-postgres`) both depend on it, never on each other.
#![forbid(unsafe_code)]

pub mod assignments;
pub mod bulk;
pub mod credentials;
pub mod error;
pub mod expiry;
pub mod groups;
pub mod history;
pub mod idempotency;
pub mod ids;
pub mod labels;
pub mod log;
pub mod model;
pub mod names;
pub mod operator;
pub mod saved_segments;
pub mod secrets;
pub mod segments;
pub mod store;
pub mod tenants;
pub mod timefmt;
pub mod value;
pub mod webhooks;

pub use assignments::Assignments;
pub use bulk::Bulk;
pub use credentials::Credentials;
pub use error::{Error, Result, CONFLICT_RETRIES};
pub use groups::TagGroups;
pub use idempotency::IdempotencyKeys;
pub use idempotency::Recorder;
pub use ids::{AppRef, CorpId, ExternalId, OrgId, UserId};
pub use labels::Labels;
pub use log::ChangeLog;
pub use model::*;
pub use names::{Category, Description, GroupName, LabelName, VariableName};
pub use store::{PoolStats, Store};
pub use tenants::Tenants;
pub use value::{Attribute, TagValue};
pub use webhooks::Webhooks;
