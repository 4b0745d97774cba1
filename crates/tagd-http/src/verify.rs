//! Password verification on threads of its own. One argon2 verification costs about 19 MiB
//! and 50 ms of CPU; run on tokio's blocking pool, a flood of them would queue ahead of
//! SQLite's COMMIT, which runs there too, and stall every organization's writes. Here a fixed
//! number of threads verify, behind a short queue: when the queue is full the attempt is
//! refused at once (429) instead of waiting.

use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Mutex;
use tagd_core::secrets::verify_password;
use tokio::sync::oneshot;

struct Job {
    password: Vec<u8>,
    hash: String,
    answer: oneshot::Sender<bool>,
}

/// Why a verification did not run.
#[derive(Debug, PartialEq, Eq)]
pub enum VerifyError {
    /// Every verifier is busy and the queue is full.
    Saturated,
}

pub struct Verifier {
    jobs: Mutex<SyncSender<Job>>,
}

impl Verifier {
    /// `threads` verifiers (at least one) and room for `queue` waiting verifications.
    pub fn new(threads: usize, queue: usize) -> Self {
        let (jobs, receiver) = sync_channel::<Job>(queue);
        let receiver = std::sync::Arc::new(Mutex::new(receiver));
        for n in 0..threads.max(1) {
            let receiver = receiver.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("tagd-verify-{n}"))
                .spawn(move || loop {
                    let job = match receiver.lock() {
                        Ok(receiver) => receiver.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else {
                        return; // the Verifier is gone
                    };
                    let _ = job.answer.send(verify_password(&job.password, &job.hash));
                });
            if let Err(e) = spawned {
                tracing::error!(cause = %e, "could not start a password verifier thread");
            }
        }
        Verifier {
            jobs: Mutex::new(jobs),
        }
    }

    /// Whether `password` matches the argon2 `hash`, verified on a verifier thread.
    pub async fn verify(&self, password: Vec<u8>, hash: String) -> Result<bool, VerifyError> {
        let (answer, answered) = oneshot::channel();
        let job = Job {
            password,
            hash,
            answer,
        };
        let sent = match self.jobs.lock() {
            Ok(jobs) => jobs.try_send(job),
            Err(_) => return Err(VerifyError::Saturated),
        };
        match sent {
            Ok(()) => Ok(answered.await.unwrap_or(false)),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                Err(VerifyError::Saturated)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tagd_core::secrets::hash_password;

    #[tokio::test]
    async fn a_verifier_answers_true_only_for_the_right_password() {
        let verifier = Verifier::new(1, 4);
        let hash = hash_password(b"right").expect("hash");
        assert_eq!(
            verifier.verify(b"right".to_vec(), hash.clone()).await,
            Ok(true)
        );
        assert_eq!(verifier.verify(b"wrong".to_vec(), hash).await, Ok(false));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_refuses_at_once_instead_of_waiting() {
        let verifier = std::sync::Arc::new(Verifier::new(1, 1));
        let hash = hash_password(b"pw").expect("hash");
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (verifier, hash) = (verifier.clone(), hash.clone());
                tokio::spawn(async move { verifier.verify(b"pw".to_vec(), hash).await })
            })
            .collect();
        let mut refused = 0;
        for task in tasks {
            if task.await.expect("task") == Err(VerifyError::Saturated) {
                refused += 1;
            }
        }
        assert!(
            refused >= 1,
            "one thread and one queued place cannot take eight at once"
        );
    }
}
