//! The expiry fields of v5 requests and answers (API.md §11): `expires_at` / `ttl_secs` on an
//! assignment, `expiry` on a tag group. The rules are core's (`tagd_core::expiry`); this file
//! only reads and shows the JSON.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tagd_core::expiry::{ExpiryPolicy, RequestedExpiry};
use tagd_core::timefmt::{format_unix, now_unix};
use tagd_core::Error;
use utoipa::ToSchema;

/// A whole number given as a JSON number or as a string of digits (v5 sends most values as
/// strings); anything else is not a valid expiry (40008).
fn whole_number(field: &str, raw: &Value) -> Result<i64, Error> {
    let parsed = match raw {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| Error::InvalidExpiry(format!("{field} must be a whole number, not {raw}")))
}

/// The expiry an assignment asks for, from its two optional fields.
pub(super) fn requested(
    expires_at: Option<&str>,
    ttl_secs: Option<&Value>,
) -> Result<Option<RequestedExpiry>, Error> {
    let ttl = ttl_secs
        .filter(|v| !v.is_null())
        .map(|raw| whole_number("ttl_secs", raw))
        .transpose()?;
    RequestedExpiry::parse(expires_at, ttl, now_unix())
}

/// A tag group's default expiry as a client sends it.
#[derive(Deserialize, ToSchema)]
pub struct ExpiryBody {
    /// `none`, `fixed_date` or `relative`.
    #[schema(pattern = "^(none|fixed_date|relative)$")]
    policy: String,
    /// For `fixed_date`: `YYYY-MM-DD HH:MM:SS` (UTC), in the future.
    #[schema(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$")]
    date: Option<String>,
    /// For `relative`: 1 to 3,650 days after each assignment.
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 3650)]
    days: Option<Value>,
}

impl ExpiryBody {
    pub(super) fn policy(&self) -> Result<ExpiryPolicy, Error> {
        let days = self
            .days
            .as_ref()
            .filter(|v| !v.is_null())
            .map(|raw| whole_number("expiry.days", raw))
            .transpose()?;
        ExpiryPolicy::parse(&self.policy, self.date.as_deref(), days, now_unix())
    }
}

/// A tag group's default expiry as answers show it.
#[derive(Serialize, ToSchema)]
pub struct ExpiryView {
    /// `none`, `fixed_date` or `relative`.
    policy: &'static str,
    /// The fixed date (`YYYY-MM-DD HH:MM:SS`, UTC), or null.
    date: Option<String>,
    /// The relative days, or null.
    days: Option<i64>,
}

impl From<ExpiryPolicy> for ExpiryView {
    fn from(policy: ExpiryPolicy) -> Self {
        ExpiryView {
            policy: policy.name(),
            date: policy.date().map(format_unix),
            days: policy.days(),
        }
    }
}

/// An expiry instant as answers show it: `YYYY-MM-DD HH:MM:SS` (UTC) or null.
pub(super) fn shown(expires_at: Option<i64>) -> Option<String> {
    expires_at.map(format_unix)
}
