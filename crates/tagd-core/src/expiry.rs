//! Expiry (API.md §11): an assignment may carry the instant it stops counting, given with the
//! write (`expires_at` or `ttl_secs`) or taken from its group's default. Expired is decided at
//! read time (`is_live`), so no read waits for the sweep that later records the expiry.

use crate::error::{Error, Result};
use crate::timefmt::{format_unix, parse_time};

/// The longest `ttl_secs`: ten years of 365 days.
pub const MAX_TTL_SECS: i64 = 10 * 365 * 86_400;
/// The longest relative group default, in days (ten years).
pub const MAX_RELATIVE_DAYS: i64 = 3_650;

/// Whether a value with this expiry still counts at `now`: it is gone from the second it
/// expires (`expires_at <= now`).
pub fn is_live(expires_at: Option<i64>, now: i64) -> bool {
    expires_at.is_none_or(|at| at > now)
}

/// The expiry a write asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestedExpiry {
    /// At this instant (Unix seconds).
    At(i64),
    /// This many seconds after the write.
    AfterSecs(i64),
}

impl RequestedExpiry {
    /// Parses the two optional fields of an assignment (`expires_at` as
    /// `YYYY-MM-DD HH:MM:SS` UTC, `ttl_secs`); at most one may be given, the time must be
    /// after `now`, the ttl within 1 second to 10 years (40008 otherwise).
    pub fn parse(
        expires_at: Option<&str>,
        ttl_secs: Option<i64>,
        now: i64,
    ) -> Result<Option<Self>> {
        match (expires_at, ttl_secs) {
            (None, None) => Ok(None),
            (Some(_), Some(_)) => Err(Error::InvalidExpiry(
                "give either expires_at or ttl_secs, not both".into(),
            )),
            (Some(text), None) => Ok(Some(RequestedExpiry::At(future_time(
                "expires_at",
                text,
                now,
            )?))),
            (None, Some(secs)) if (1..=MAX_TTL_SECS).contains(&secs) => {
                Ok(Some(RequestedExpiry::AfterSecs(secs)))
            }
            (None, Some(secs)) => Err(Error::InvalidExpiry(format!(
                "ttl_secs must be 1 to {MAX_TTL_SECS} (10 years), not {secs}"
            ))),
        }
    }

    /// The instant, for a write made at `now`.
    pub fn at(self, now: i64) -> i64 {
        match self {
            RequestedExpiry::At(at) => at,
            RequestedExpiry::AfterSecs(secs) => now.saturating_add(secs),
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) after `now`, or why not.
fn future_time(field: &str, text: &str, now: i64) -> Result<i64> {
    let at = parse_time(text).ok_or_else(|| {
        Error::InvalidExpiry(format!(
            "{field} must be YYYY-MM-DD HH:MM:SS (UTC), not `{text}`"
        ))
    })?;
    if at <= now {
        return Err(Error::InvalidExpiry(format!(
            "{field} {text} is not in the future (now {})",
            format_unix(now)
        )));
    }
    Ok(at)
}

/// A tag group's default expiry for assignments that bring none of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExpiryPolicy {
    #[default]
    None,
    /// Every assignment expires at this instant.
    FixedDate(i64),
    /// Every assignment expires this many days after it is made.
    Relative { days: i64 },
}

impl ExpiryPolicy {
    /// Parses `{"policy", "date", "days"}` as a client sends it: `fixed_date` needs a future
    /// `date`, `relative` needs `days` of 1 to 3,650; `none` takes neither.
    pub fn parse(policy: &str, date: Option<&str>, days: Option<i64>, now: i64) -> Result<Self> {
        match (policy, date, days) {
            ("none", None, None) => Ok(ExpiryPolicy::None),
            ("fixed_date", Some(date), None) => Ok(ExpiryPolicy::FixedDate(future_time(
                "expiry.date",
                date,
                now,
            )?)),
            ("relative", None, Some(days)) if (1..=MAX_RELATIVE_DAYS).contains(&days) => {
                Ok(ExpiryPolicy::Relative { days })
            }
            ("relative", None, Some(days)) => Err(Error::InvalidExpiry(format!(
                "expiry.days must be 1 to {MAX_RELATIVE_DAYS}, not {days}"
            ))),
            ("none" | "fixed_date" | "relative", _, _) => Err(Error::InvalidExpiry(format!(
                "expiry policy `{policy}` takes {}",
                match policy {
                    "none" => "neither date nor days",
                    "fixed_date" => "a date and no days",
                    _ => "days and no date",
                }
            ))),
            _ => Err(Error::InvalidExpiry(format!(
                "expiry.policy must be none, fixed_date or relative, not `{policy}`"
            ))),
        }
    }

    /// `none`, `fixed_date` or `relative`, as stored and shown.
    pub fn name(self) -> &'static str {
        match self {
            ExpiryPolicy::None => "none",
            ExpiryPolicy::FixedDate(_) => "fixed_date",
            ExpiryPolicy::Relative { .. } => "relative",
        }
    }

    /// The fixed date, when there is one.
    pub fn date(self) -> Option<i64> {
        match self {
            ExpiryPolicy::FixedDate(at) => Some(at),
            _ => None,
        }
    }

    /// The relative days, when there are some.
    pub fn days(self) -> Option<i64> {
        match self {
            ExpiryPolicy::Relative { days } => Some(days),
            _ => None,
        }
    }

    /// Rebuilds a stored policy (trusted: it was parsed on the way in).
    pub fn from_db(policy: &str, date: Option<i64>, days: Option<i64>) -> Self {
        match (policy, date, days) {
            ("fixed_date", Some(at), _) => ExpiryPolicy::FixedDate(at),
            ("relative", _, Some(days)) => ExpiryPolicy::Relative { days },
            _ => ExpiryPolicy::None,
        }
    }
}

/// The expiry an assignment made at `now` gets: its own when the write asks for one, else its
/// group's default. A group whose fixed date has passed cannot give it (40008): the value
/// would be gone before it was set.
pub fn expiry_of_assignment(
    own: Option<RequestedExpiry>,
    group_default: ExpiryPolicy,
    now: i64,
) -> Result<Option<i64>> {
    if let Some(own) = own {
        return Ok(Some(own.at(now)));
    }
    match group_default {
        ExpiryPolicy::None => Ok(None),
        ExpiryPolicy::Relative { days } => Ok(Some(now.saturating_add(days * 86_400))),
        ExpiryPolicy::FixedDate(at) if at > now => Ok(Some(at)),
        ExpiryPolicy::FixedDate(at) => Err(Error::InvalidExpiry(format!(
            "the tag group's default expiry date {} has passed",
            format_unix(at)
        ))),
    }
}

/// Where a sweep round has got to: the `(expires_at, id)` of the last due assignment it
/// passed. A round goes on after it, so it never reads again what it has just marked (on
/// PostgreSQL those index entries stay until vacuum, and a round that started over each time
/// would read them all again: quadratic in the assignments expiring together).
pub type SweepCursor = (i64, i64);

/// What one sweep step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SweepStep {
    /// Expiries it recorded.
    pub recorded: usize,
    /// Where the next step starts; `None` when no due assignment is left after this one.
    pub next: Option<SweepCursor>,
}

/// The expiry sweep's side of the store.
#[async_trait::async_trait]
pub trait Expiries: Send + Sync {
    /// Records, as `tag.expired` entries executed by `system`, the due assignments (of any
    /// organization: live, expiry at or before `now`) after `after`, at most `limit`, in one
    /// short transaction. An assignment re-assigned or removed first is not touched, and two
    /// servers sweeping at once record each expiry once (the row is marked under its lock,
    /// only while it is still live and expired).
    async fn expire_due(
        &self,
        now: i64,
        after: Option<SweepCursor>,
        limit: usize,
    ) -> Result<SweepStep>;
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_value_is_gone_from_the_second_it_expires() {
        assert!(is_live(None, NOW));
        assert!(is_live(Some(NOW + 1), NOW));
        assert!(!is_live(Some(NOW), NOW));
        assert!(!is_live(Some(NOW - 1), NOW));
    }

    #[test]
    fn a_write_asks_for_one_expiry_in_the_future_at_most() {
        let later = format_unix(NOW + 60);
        assert_eq!(
            RequestedExpiry::parse(Some(&later), None, NOW),
            Ok(Some(RequestedExpiry::At(NOW + 60)))
        );
        assert_eq!(
            RequestedExpiry::parse(None, Some(30), NOW).map(|e| e.map(|e| e.at(NOW))),
            Ok(Some(NOW + 30))
        );
        assert_eq!(RequestedExpiry::parse(None, None, NOW), Ok(None));
        let refused = [
            RequestedExpiry::parse(Some(&later), Some(30), NOW),
            RequestedExpiry::parse(Some(&format_unix(NOW)), None, NOW),
            RequestedExpiry::parse(Some("2030-02-30 00:00:00"), None, NOW),
            RequestedExpiry::parse(Some("tomorrow"), None, NOW),
            RequestedExpiry::parse(None, Some(0), NOW),
            RequestedExpiry::parse(None, Some(-5), NOW),
            RequestedExpiry::parse(None, Some(MAX_TTL_SECS + 1), NOW),
        ];
        for outcome in refused {
            assert!(
                matches!(outcome, Err(Error::InvalidExpiry(_))),
                "{outcome:?}"
            );
        }
        assert!(RequestedExpiry::parse(None, Some(MAX_TTL_SECS), NOW).is_ok());
    }

    #[test]
    fn a_group_default_applies_only_when_the_write_brings_none() {
        let relative = ExpiryPolicy::Relative { days: 2 };
        assert_eq!(
            expiry_of_assignment(None, relative, NOW),
            Ok(Some(NOW + 2 * 86_400))
        );
        let own = Some(RequestedExpiry::AfterSecs(10));
        assert_eq!(expiry_of_assignment(own, relative, NOW), Ok(Some(NOW + 10)));
        assert_eq!(
            expiry_of_assignment(None, ExpiryPolicy::None, NOW),
            Ok(None)
        );
        let fixed = ExpiryPolicy::FixedDate(NOW + 5);
        assert_eq!(expiry_of_assignment(None, fixed, NOW), Ok(Some(NOW + 5)));
        assert!(matches!(
            expiry_of_assignment(None, fixed, NOW + 5),
            Err(Error::InvalidExpiry(_))
        ));
    }

    #[test]
    fn a_group_policy_takes_exactly_the_fields_it_needs() {
        let date = format_unix(NOW + 86_400);
        assert_eq!(
            ExpiryPolicy::parse("fixed_date", Some(&date), None, NOW),
            Ok(ExpiryPolicy::FixedDate(NOW + 86_400))
        );
        assert_eq!(
            ExpiryPolicy::parse("relative", None, Some(30), NOW),
            Ok(ExpiryPolicy::Relative { days: 30 })
        );
        assert_eq!(
            ExpiryPolicy::parse("none", None, None, NOW),
            Ok(ExpiryPolicy::None)
        );
        for (policy, date, days) in [
            ("fixed_date", None, None),
            ("fixed_date", Some(format_unix(NOW - 1)), None),
            ("relative", None, Some(0)),
            ("relative", None, Some(MAX_RELATIVE_DAYS + 1)),
            ("relative", Some(date.clone()), Some(3)),
            ("none", None, Some(3)),
            ("forever", None, None),
        ] {
            let outcome = ExpiryPolicy::parse(policy, date.as_deref(), days, NOW);
            assert!(
                matches!(outcome, Err(Error::InvalidExpiry(_))),
                "{outcome:?}"
            );
        }
        for policy in [
            ExpiryPolicy::None,
            ExpiryPolicy::FixedDate(NOW),
            ExpiryPolicy::Relative { days: 7 },
        ] {
            assert_eq!(
                ExpiryPolicy::from_db(policy.name(), policy.date(), policy.days()),
                policy
            );
        }
    }
}
