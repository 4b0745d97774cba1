//! A small map of recent successful credential checks, each kept for a fixed time, so a
//! steady stream of requests does not pay an argon2 verification or a database lookup each.
//! Only successes are stored; the key is an HMAC of the credential under a key drawn at
//! start ([`CacheKeyer`]), never the secret, so a memory dump of the map cannot be tested
//! offline against guessed passwords. Each organization may hold at most
//! [`MAX_PER_PARTITION`] entries, so one tenant cycling credentials evicts only its own.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most entries kept; past that, expired ones are dropped, and if none are, nothing new is
/// remembered until some expire (it is a cache: a miss only costs a verification).
const MAX_ENTRIES: usize = 100_000;
/// Most entries one organization may hold; past that its own expired entries are dropped,
/// and if none are, all of its own.
pub const MAX_PER_PARTITION: usize = 1_000;

/// HMAC-SHA-256 of a credential under a key drawn when the process starts.
pub struct CacheKeyer {
    key: [u8; 32],
}

impl CacheKeyer {
    pub fn random() -> Self {
        CacheKeyer {
            key: rand::random(),
        }
    }

    pub fn key(&self, credential: &[u8]) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(&self.key) else {
            // Any key length is valid for HMAC; this cannot happen.
            return [0; 32];
        };
        mac.update(credential);
        mac.finalize().into_bytes().into()
    }
}

/// Takes a key's flight lock out of the map when the last one waiting on it leaves.
struct Leave<'a> {
    flights: &'a Mutex<HashMap<[u8; 32], Arc<tokio::sync::Mutex<()>>>>,
    flight: Arc<tokio::sync::Mutex<()>>,
    key: [u8; 32],
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        if let Ok(mut flights) = self.flights.lock() {
            // Ours and the map's: nobody else waits on this key.
            if Arc::strong_count(&self.flight) <= 2 {
                flights.remove(&self.key);
            }
        }
    }
}

/// What a cached value belongs to (its organization), for the per-partition bound.
pub trait Partitioned {
    fn partition(&self) -> i64;
}

struct Entries<V> {
    map: HashMap<[u8; 32], (V, Instant)>,
    per_partition: HashMap<i64, usize>,
    /// Bumped by every forget: a value looked up before a forget (a password read before it
    /// was changed) must not be stored after it.
    generation: u64,
}

impl<V: Partitioned> Entries<V> {
    fn remove_where(&mut self, mut doomed: impl FnMut(&V, &Instant) -> bool) {
        let per_partition = &mut self.per_partition;
        self.map.retain(|_, (value, at)| {
            let remove = doomed(value, at);
            if remove {
                if let Some(n) = per_partition.get_mut(&value.partition()) {
                    *n = n.saturating_sub(1);
                }
            }
            !remove
        });
        self.per_partition.retain(|_, n| *n > 0);
    }
}

pub struct TtlCache<V> {
    ttl: Duration,
    entries: Mutex<Entries<V>>,
    /// One lock per key being computed, so concurrent misses of one key wait for the first
    /// computation instead of each paying for their own (64 clients starting at once with
    /// one Basic credential would otherwise run 64 argon2 verifications).
    flights: Mutex<HashMap<[u8; 32], Arc<tokio::sync::Mutex<()>>>>,
}

impl<V: Clone + Partitioned> TtlCache<V> {
    /// A zero `ttl` disables the cache.
    pub fn new(ttl: Duration) -> Self {
        TtlCache {
            ttl,
            entries: Mutex::new(Entries {
                map: HashMap::new(),
                per_partition: HashMap::new(),
                generation: 0,
            }),
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
        // Leaves the map on every path out, a dropped request's included.
        let leave = Leave {
            flights: &self.flights,
            flight,
            key,
        };
        let turn = leave.flight.lock().await;
        let seen = self.generation();
        let result = match self.get(&key) {
            Some(value) => Ok(value),
            None => make().await,
        };
        if let Ok(value) = &result {
            self.put_unless_forgotten(key, value.clone(), seen);
        }
        drop(turn);
        result
    }

    /// The current generation, to read before a lookup whose result [`Self::put_unless_forgotten`]
    /// stores.
    pub fn generation(&self) -> u64 {
        self.entries.lock().map_or(0, |e| e.generation)
    }

    /// The value stored under `key` less than `ttl` ago.
    pub fn get(&self, key: &[u8; 32]) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        let (value, at) = entries.map.get(key)?;
        (at.elapsed() < self.ttl).then(|| value.clone())
    }

    /// Forgets every entry.
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.map.clear();
            entries.per_partition.clear();
            entries.generation += 1;
        }
    }

    /// Forgets the entries of one partition (organization).
    pub fn forget_partition(&self, partition: i64) {
        self.forget_where(|value| value.partition() == partition);
    }

    /// Forgets the entries `doomed` picks, and anything being looked up meanwhile.
    pub fn forget_where(&self, doomed: impl Fn(&V) -> bool) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove_where(|value, _| doomed(value));
            entries.generation += 1;
        }
    }

    pub fn put(&self, key: [u8; 32], value: V) {
        let seen = self.generation();
        self.put_unless_forgotten(key, value, seen);
    }

    /// Stores `value` unless something was forgotten since generation `seen` was read: the
    /// value may be what was just revoked.
    pub fn put_unless_forgotten(&self, key: [u8; 32], value: V, seen: u64) {
        if self.ttl.is_zero() {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.generation != seen {
            return;
        }
        let ttl = self.ttl;
        let partition = value.partition();
        if entries.per_partition.get(&partition).copied().unwrap_or(0) >= MAX_PER_PARTITION {
            entries.remove_where(|v, at| v.partition() == partition && at.elapsed() >= ttl);
            if entries.per_partition.get(&partition).copied().unwrap_or(0) >= MAX_PER_PARTITION {
                entries.remove_where(|v, _| v.partition() == partition);
            }
        }
        if entries.map.len() >= MAX_ENTRIES {
            entries.remove_where(|_, at| at.elapsed() >= ttl);
            if entries.map.len() >= MAX_ENTRIES {
                return;
            }
        }
        if let Some((old, _)) = entries.map.insert(key, (value, Instant::now())) {
            if let Some(n) = entries.per_partition.get_mut(&old.partition()) {
                *n = n.saturating_sub(1);
            }
        }
        *entries.per_partition.entry(partition).or_insert(0) += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    impl Partitioned for &str {
        fn partition(&self) -> i64 {
            i64::from(self.as_bytes().first().copied().unwrap_or(0))
        }
    }

    #[test]
    fn one_partition_over_its_bound_evicts_only_its_own_entries() {
        let cache = TtlCache::new(Duration::from_secs(30));
        cache.put([0; 32], "b-other-tenant");
        for i in 0..=MAX_PER_PARTITION {
            let mut key = [1; 32];
            key[..8].copy_from_slice(&(i as u64).to_le_bytes());
            cache.put(key, "a-flooding-tenant");
        }
        assert_eq!(cache.get(&[0; 32]), Some("b-other-tenant"));
    }

    #[tokio::test]
    async fn a_value_looked_up_before_a_forget_is_not_stored_after_it() {
        let cache = Arc::new(TtlCache::new(Duration::from_secs(30)));
        let (started, finish) = (
            Arc::new(tokio::sync::Notify::new()),
            Arc::new(tokio::sync::Notify::new()),
        );
        let lookup = {
            let (cache, started, finish) = (cache.clone(), started.clone(), finish.clone());
            tokio::spawn(async move {
                cache
                    .get_or_try_insert([3; 32], || async move {
                        started.notify_one();
                        finish.notified().await; // the old password, read before the change
                        Ok::<_, ()>("a-old")
                    })
                    .await
            })
        };
        started.notified().await;
        cache.forget_partition(i64::from(b'a'));
        finish.notify_one();
        assert_eq!(lookup.await.expect("task"), Ok("a-old"));
        assert_eq!(cache.get(&[3; 32]), None, "not remembered past the forget");
        assert!(cache.flights.lock().expect("lock").is_empty());
    }

    #[tokio::test]
    async fn a_dropped_lookup_leaves_no_flight_behind() {
        let cache = TtlCache::new(Duration::from_secs(30));
        let lookup = cache.get_or_try_insert([4; 32], || async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok::<_, ()>("never")
        });
        assert!(tokio::time::timeout(Duration::from_millis(20), lookup)
            .await
            .is_err());
        assert!(cache.flights.lock().expect("lock").is_empty());
    }

    #[test]
    fn cache_keys_are_keyed_per_process() {
        let (one, two) = (CacheKeyer::random(), CacheKeyer::random());
        assert_eq!(one.key(b"Basic abc"), one.key(b"Basic abc"));
        assert_ne!(one.key(b"Basic abc"), two.key(b"Basic abc"));
        assert_ne!(one.key(b"Basic abc"), one.key(b"Basic abd"));
    }

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
