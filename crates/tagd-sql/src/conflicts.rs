//! Writes the database rolled back for a conflict with a concurrent one (a deadlock, a
//! serialization failure) run again, a few times, after a short random pause: such a
//! conflict says nothing about the request, and the next attempt usually succeeds.

use std::time::Duration;
use tagd_core::{Error, CONFLICT_RETRIES};

/// Whether a write that failed with `error` runs again: a conflict, with retries left
/// (`conflicts` counts those spent). Waits the pause before answering yes.
pub(crate) async fn retry(error: &Error, conflicts: &mut u32) -> bool {
    if !matches!(error, Error::Conflict(_)) || *conflicts >= CONFLICT_RETRIES {
        return false;
    }
    *conflicts += 1;
    tracing::debug!(cause = %error, attempt = *conflicts, "a write conflict: the write runs again");
    tokio::time::sleep(pause(*conflicts)).await;
    true
}

/// 5, 10, 20 ms times a random factor in [0.5, 1.5), so that writes that collided do not
/// collide again in step.
fn pause(attempt: u32) -> Duration {
    let base_us = 5_000u64 << attempt.saturating_sub(1).min(6);
    let jitter = 0.5 + rand::random::<f64>();
    Duration::from_micros((base_us as f64 * jitter) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_conflict_runs_again_until_the_retries_are_spent() {
        let conflict = Error::Conflict("deadlock detected".into());
        let mut conflicts = 0;
        for _ in 0..CONFLICT_RETRIES {
            assert!(retry(&conflict, &mut conflicts).await);
        }
        assert!(!retry(&conflict, &mut conflicts).await);
        assert_eq!(conflicts, CONFLICT_RETRIES);
    }

    #[tokio::test]
    async fn other_errors_are_answered_at_once() {
        let mut conflicts = 0;
        assert!(!retry(&Error::Busy("down".into()), &mut conflicts).await);
        assert!(!retry(&Error::internal("bug"), &mut conflicts).await);
        assert_eq!(conflicts, 0);
    }
}
