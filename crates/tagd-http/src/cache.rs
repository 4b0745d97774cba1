//! A small map of recent successful credential checks, each kept for a fixed time, so a
//! steady stream of requests does not pay an argon2 verification or a database lookup each.
//! Only successes are stored; the key is a SHA-256 of the credential, never the secret.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most entries kept; past that, expired ones are dropped, and if none are, all of them.
const MAX_ENTRIES: usize = 10_000;

pub struct TtlCache<V> {
    ttl: Duration,
    entries: Mutex<HashMap<[u8; 32], (V, Instant)>>,
    /// One lock per key being computed, so concurrent misses of one key wait for the first
    /// computation instead of each paying for their own (64 clients starting at once with
    /// one Basic credential would otherwise run 64 argon2 verifications).
    flights: Mutex<HashMap<[u8; 32], Arc<tokio::sync::Mutex<()>>>>,
}

impl<V: Clone> TtlCache<V> {
    /// A zero `ttl` disables the cache.
    pub fn new(ttl: Duration) -> Self {
        TtlCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
            flights: Mutex::new(HashMap::new()),
        }
    }

    /// The value under `key`, or the one `make` computes, stored when it succeeds. Callers
    /// missing the same key at once run `make` one at a time, each first looking again, so
    /// one success serves all of them; a failure is not stored.
    pub async fn get_or_try_insert<E, F, Fut>(&self, key: [u8; 32], make: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        if let Some(value) = self.get(&key) {
            return Ok(value);
        }
        let flight = match self.flights.lock() {
            Ok(mut flights) if !self.ttl.is_zero() => Some(flights.entry(key).or_default().clone()),
            _ => None,
        };
        let Some(flight) = flight else {
            return make().await;
        };
        let turn = flight.lock().await;
        let result = match self.get(&key) {
            Some(value) => Ok(value),
            None => make().await,
        };
        if let Ok(value) = &result {
            self.put(key, value.clone());
        }
        drop(turn);
        if let Ok(mut flights) = self.flights.lock() {
            // Ours and the map's: nobody else waits on this key.
            if Arc::strong_count(&flight) <= 2 {
                flights.remove(&key);
            }
        }
        result
    }

    /// The value stored under `key` less than `ttl` ago.
    pub fn get(&self, key: &[u8; 32]) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        let (value, at) = entries.get(key)?;
        (at.elapsed() < self.ttl).then(|| value.clone())
    }

    /// Forgets every entry.
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }

    pub fn put(&self, key: [u8; 32], value: V) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                let ttl = self.ttl;
                entries.retain(|_, (_, at)| at.elapsed() < ttl);
                if entries.len() >= MAX_ENTRIES {
                    entries.clear();
                }
            }
            entries.insert(key, (value, Instant::now()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn concurrent_misses_of_one_key_compute_it_once() {
        let cache = Arc::new(TtlCache::new(Duration::from_secs(30)));
        let runs = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (cache, runs) = (cache.clone(), runs.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_try_insert([7; 32], || async {
                            runs.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Ok::<_, ()>("verified")
                        })
                        .await
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.expect("task"), Ok("verified"));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(
            cache.flights.lock().expect("lock").is_empty(),
            "no lock left behind"
        );
    }

    #[tokio::test]
    async fn a_failure_is_not_stored_and_the_next_caller_tries_again() {
        let cache = TtlCache::new(Duration::from_secs(30));
        let failed = cache
            .get_or_try_insert([1; 32], || async { Err::<&str, _>("bad") })
            .await;
        assert_eq!(failed, Err("bad"));
        let next = cache
            .get_or_try_insert([1; 32], || async { Ok::<_, &str>("good") })
            .await;
        assert_eq!(next, Ok("good"));
    }

    #[test]
    fn an_entry_lives_for_its_ttl_only() {
        let cache = TtlCache::new(Duration::from_millis(50));
        cache.put([1; 32], "v");
        assert_eq!(cache.get(&[1; 32]), Some("v"));
        assert_eq!(cache.get(&[2; 32]), None);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get(&[1; 32]), None, "expired");
    }
}
