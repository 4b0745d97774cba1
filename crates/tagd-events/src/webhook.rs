//! Webhook delivery: one worker per endpoint, so a slow or failing receiver delays only
//! itself. A worker holds the endpoint's lease, reads the organization's change feed after
//! the endpoint's position, posts each wanted event in version order, and saves the new
//! position (with the attempts made) after each page or each second; a failed event is
//! retried on the schedule before any later one is sent.

use crate::{guard, lease, next_commit, Context, Rendered};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tagd_core::history::FeedPage;
use tagd_core::timefmt::now_unix;
use tagd_core::webhooks::{DeliveryAttempt, DeliveryCounters, Webhook, WebhookProgress};
use tagd_core::{CorpId, OrgId};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often the list of endpoints is read: a new endpoint starts within this, and a
/// client's change to one (a rotated secret, a replay, a pause, a deletion) reaches its
/// worker within this, by the endpoint's version. (Reading the endpoint before every page
/// instead cost a round trip per page, which on PostgreSQL under load was most of the lag.)
const SUPERVISE_EVERY: Duration = Duration::from_secs(1);
/// How long an idle worker waits for a commit before it looks at the feed anyway.
const IDLE_POLL: Duration = Duration::from_millis(250);
/// Entries read per page of the feed.
const PAGE: usize = 500;
/// The longest a worker delivers before it saves its position (and renews its lease).
const SAVE_EVERY: Duration = Duration::from_millis(250);
/// A worker with nothing to save renews its lease this often.
const RENEW_EVERY: Duration = tagd_core::webhooks::LEASE_RENEW;

struct Worker {
    task: JoinHandle<()>,
    /// The endpoint's version as last listed: a worker holding an older copy reloads.
    version: watch::Sender<i64>,
}

/// Keeps one worker running per deliverable endpoint; stops those of endpoints deleted,
/// paused or disabled.
pub(crate) async fn supervise(context: Arc<Context>) {
    let client = match guard::client(&context.settings) {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(cause = %e, "webhook delivery cannot start: no HTTP client");
            return;
        }
    };
    let mut workers: HashMap<(OrgId, i64), Worker> = HashMap::new();
    loop {
        match context.store.deliverable_webhooks().await {
            Ok(listed) => {
                let wanted: HashMap<(OrgId, i64), i64> =
                    listed.into_iter().map(|(o, id, v)| ((o, id), v)).collect();
                workers.retain(|key, worker| {
                    let keep = wanted.contains_key(key) && !worker.task.is_finished();
                    if !keep {
                        worker.task.abort();
                    }
                    keep
                });
                for (key, version) in wanted {
                    match workers.get(&key) {
                        Some(worker) => {
                            worker.version.send_if_modified(|v| {
                                let changed = *v != version;
                                *v = version;
                                changed
                            });
                        }
                        None => {
                            let (tx, rx) = watch::channel(version);
                            let task = tokio::spawn(deliver_endpoint(
                                context.clone(),
                                client.clone(),
                                key,
                                rx,
                            ));
                            workers.insert(key, Worker { task, version: tx });
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(cause = %e, "could not list webhook endpoints"),
        }
        tokio::time::sleep(SUPERVISE_EVERY).await;
    }
}

/// Progress made since the last save: saved together, at most every [`SAVE_EVERY`] while
/// deliveries succeed (a crash repeats at most that much, with the same ids), at once after
/// a failure.
#[derive(Default)]
struct Unsaved {
    progress: Option<WebhookProgress>,
    attempts: Vec<DeliveryAttempt>,
}

/// Delivers one endpoint for as long as this server holds its lease.
async fn deliver_endpoint(
    context: Arc<Context>,
    client: reqwest::Client,
    (org, id): (OrgId, i64),
    mut listed_version: watch::Receiver<i64>,
) {
    let store = &context.store;
    let Ok(Some(mut hook)) = store.claim_webhook(org, id, &lease(&context.owner)).await else {
        return; // another server delivers it, or it is gone
    };
    let corp_id = match store.get_org(org).await {
        Ok(found) => found.corp_id,
        Err(e) => {
            tracing::warn!(cause = %e, "webhook delivery: organization not readable");
            return;
        }
    };
    let mut commits = context.commits.clone();
    let mut renewed = Instant::now();
    let mut unsaved = Unsaved::default();
    let mut in_flight: Option<SaveInFlight> = None;
    // The next page, read while this one is delivered.
    let mut prefetched: Option<(i64, JoinHandle<tagd_core::Result<FeedPage>>)> = None;
    loop {
        let stale = *listed_version.borrow_and_update() != hook.version;
        if stale || renewed.elapsed() >= RENEW_EVERY {
            finish_background(&mut in_flight, &mut hook).await;
            if !save(&context, &mut hook, &mut unsaved).await {
                tokio::time::sleep(SUPERVISE_EVERY).await;
                continue;
            }
            match store.claim_webhook(org, id, &lease(&context.owner)).await {
                Ok(Some(fresh)) => hook = fresh,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(cause = %e, "webhook delivery: could not renew the lease");
                    tokio::time::sleep(SUPERVISE_EVERY).await;
                    continue;
                }
            }
            renewed = Instant::now();
        }
        if !hook.enabled {
            return; // disabled by a 410 or by running out of retries
        }
        if let Some(wait) = retry_wait(&hook) {
            tokio::select! {
                () = tokio::time::sleep(wait.min(RENEW_EVERY)) => {}
                _ = listed_version.changed() => {}
            }
            continue;
        }
        let read_started = Instant::now();
        let page = match prefetched.take() {
            Some((after, task)) if after == hook.delivered_version => task.await,
            Some((_, task)) => {
                task.abort();
                Ok(store.change_feed(org, hook.delivered_version, PAGE).await)
            }
            None => Ok(store.change_feed(org, hook.delivered_version, PAGE).await),
        };
        let page = match page {
            Ok(Ok(page)) => page,
            Ok(Err(e)) => {
                tracing::warn!(cause = %e, "webhook delivery: could not read the change feed");
                tokio::time::sleep(SUPERVISE_EVERY).await;
                continue;
            }
            Err(_) => continue, // the read task was cancelled
        };
        let Some(last) = page.entries.last().map(|e| e.version) else {
            finish_background(&mut in_flight, &mut hook).await;
            if unsaved.progress.is_some() && save(&context, &mut hook, &mut unsaved).await {
                renewed = Instant::now();
            }
            tokio::select! {
                () = next_commit(&mut commits, IDLE_POLL) => {}
                _ = listed_version.changed() => {}
            }
            continue;
        };
        if page.entries.len() == PAGE {
            let store = context.store.clone();
            let task = tokio::spawn(async move { store.change_feed(org, last, PAGE).await });
            prefetched = Some((last, task));
        }
        let read_took = read_started.elapsed();
        let post_started = Instant::now();
        let (progress, attempts) = deliver_page(&context, &client, &hook, &corp_id, &page).await;
        // Where a worker's time goes (TAGD_LOG=tagd_events=debug): reading the feed or
        // posting one event at a time (docs/BENCHMARKS.md, W10).
        tracing::debug!(
            webhook = %hook.webhook_id,
            events = page.entries.len(),
            read_ms = read_took.as_secs_f64() * 1000.0,
            post_ms = post_started.elapsed().as_secs_f64() * 1000.0,
            "webhook page delivered"
        );
        let failed = progress.failures > 0 || progress.disabled_reason.is_some();
        hook.delivered_version = progress.delivered_version;
        hook.failures = progress.failures;
        hook.next_attempt_ms = progress.next_attempt_ms;
        hook.enabled = progress.disabled_reason.is_none();
        unsaved.attempts.extend(attempts);
        unsaved.progress = Some(progress);
        if failed {
            finish_background(&mut in_flight, &mut hook).await;
            if save(&context, &mut hook, &mut unsaved).await {
                renewed = Instant::now();
            }
            if let Some(reason) = &hook.disabled_reason {
                DeliveryCounters::add(&context.counters.webhook_disabled, 1);
                tracing::warn!(webhook = %hook.webhook_id, reason, "webhook endpoint disabled");
            }
        } else if unsaved_for(&unsaved, renewed)
            && in_flight.as_ref().is_none_or(JoinHandle::is_finished)
        {
            // Saved while the next events go out: a save waits for a commit, which under
            // load on PostgreSQL took tens of milliseconds of delivery each time.
            finish_background(&mut in_flight, &mut hook).await;
            in_flight = save_in_background(&context, &hook, &mut unsaved);
            renewed = Instant::now();
        }
    }
}

/// A save of progress that runs while deliveries go on.
type SaveInFlight = JoinHandle<tagd_core::Result<bool>>;

/// Starts saving what was delivered since the last save (deliveries all succeeded).
fn save_in_background(
    context: &Arc<Context>,
    hook: &Webhook,
    unsaved: &mut Unsaved,
) -> Option<SaveInFlight> {
    let progress = unsaved.progress.take()?;
    let attempts = std::mem::take(&mut unsaved.attempts);
    let context = context.clone();
    let (org, id, replays) = (hook.org_id, hook.id, hook.replays);
    Some(tokio::spawn(async move {
        let lease = lease(&context.owner);
        context
            .store
            .save_webhook_progress(org, id, (&lease, replays), &progress, &attempts)
            .await
    }))
}

/// Waits for the save in flight, if any, so that saves stay in order; one refused (a client
/// changed the endpoint, or another worker holds it) makes the worker reload.
async fn finish_background(in_flight: &mut Option<SaveInFlight>, hook: &mut Webhook) {
    let Some(task) = in_flight.take() else {
        return;
    };
    match task.await {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => hook.version = -1,
        Ok(Err(e)) => tracing::warn!(cause = %e, "webhook delivery: could not save progress"),
        Err(_) => {}
    }
}

/// Whether progress has waited long enough for a save (the last save renewed the lease).
fn unsaved_for(unsaved: &Unsaved, last_save: Instant) -> bool {
    unsaved.progress.is_some() && last_save.elapsed() >= SAVE_EVERY
}

/// Saves what was delivered since the last save. `false` when it could not be saved: the
/// database failed (those events go again, same ids: at least once), or a client changed
/// the endpoint or another worker holds it (the caller reloads).
async fn save(context: &Context, hook: &mut Webhook, unsaved: &mut Unsaved) -> bool {
    let Some(progress) = unsaved.progress.take() else {
        return true;
    };
    let attempts = std::mem::take(&mut unsaved.attempts);
    let lease = lease(&context.owner);
    let saved = context
        .store
        .save_webhook_progress(
            hook.org_id,
            hook.id,
            (&lease, hook.replays),
            &progress,
            &attempts,
        )
        .await;
    match saved {
        Ok(true) => {
            hook.disabled_reason = progress.disabled_reason;
            true
        }
        Ok(false) => {
            // Reload at once: the next round claims the endpoint afresh.
            hook.version = -1;
            false
        }
        Err(e) => {
            tracing::warn!(cause = %e, "webhook delivery: could not save progress");
            false
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// How long until the failed event is due again, if it is not yet.
fn retry_wait(hook: &Webhook) -> Option<Duration> {
    let due = hook.next_attempt_ms?;
    let wait = due - now_ms();
    (wait > 0).then(|| Duration::from_millis(wait as u64))
}

/// Posts the page's wanted events in order until one fails or [`SAVE_EVERY`] has passed.
async fn deliver_page(
    context: &Context,
    client: &reqwest::Client,
    hook: &Webhook,
    corp_id: &CorpId,
    page: &FeedPage,
) -> (WebhookProgress, Vec<DeliveryAttempt>) {
    let started = Instant::now();
    let mut progress = WebhookProgress {
        delivered_version: hook.delivered_version,
        failures: hook.failures,
        next_attempt_ms: None,
        disabled_reason: None,
    };
    let mut attempts = Vec::new();
    for entry in &page.entries {
        if started.elapsed() >= SAVE_EVERY {
            break;
        }
        let event = (context.render)(corp_id, entry, page);
        if !hook.wants(event.kind) {
            progress.delivered_version = entry.version;
            continue;
        }
        let attempt = post(
            context,
            client,
            hook,
            &event,
            entry.version,
            progress.failures + 1,
        )
        .await;
        let delivered = attempt.error.is_none();
        let gone = attempt.status == Some(410);
        let counters = &context.counters;
        DeliveryCounters::add(
            if delivered {
                &counters.webhook_delivered
            } else {
                &counters.webhook_failed
            },
            1,
        );
        attempts.push(attempt);
        if delivered {
            progress.delivered_version = entry.version;
            progress.failures = 0;
            continue;
        }
        progress.failures += 1;
        let schedule = &context.settings.retry_schedule;
        if gone {
            progress.disabled_reason = Some(format!(
                "the endpoint answered 410 Gone to the event of version {}",
                entry.version
            ));
        } else if let Some(wait) = schedule.get(progress.failures as usize - 1) {
            progress.next_attempt_ms = Some(now_ms() + wait.as_millis() as i64);
        } else {
            progress.disabled_reason = Some(format!(
                "the event of version {} failed {} times; replay from that version to resume",
                entry.version, progress.failures
            ));
        }
        break;
    }
    (progress, attempts)
}

/// One attempt at one event: signed with every valid secret, 2xx is success.
async fn post(
    context: &Context,
    client: &reqwest::Client,
    hook: &Webhook,
    event: &Rendered,
    version: i64,
    attempt: i64,
) -> DeliveryAttempt {
    let now = now_unix();
    let started = Instant::now();
    let mut record = DeliveryAttempt {
        event_id: event.id.clone(),
        event_type: event.kind.to_owned(),
        version,
        attempt,
        status: None,
        duration_ms: 0,
        error: None,
        at: now,
    };
    if let Some(refused) = guard::literal_refused(hook.url.as_str(), context.settings.allow_private)
    {
        record.error = Some(refused);
        return record;
    }
    let signature = crate::signature::sign(&hook.signing_secrets(now), &event.id, now, &event.body);
    let sent = client
        .post(hook.url.as_str())
        .header("content-type", "application/json")
        .header("webhook-id", &event.id)
        .header("webhook-timestamp", now.to_string())
        .header("webhook-signature", signature)
        .body(event.body.clone())
        .send()
        .await;
    record.duration_ms = started.elapsed().as_millis() as i64;
    match sent {
        Ok(response) => {
            let status = response.status();
            record.status = Some(i64::from(status.as_u16()));
            if !status.is_success() {
                record.error = Some(format!("the endpoint answered {status}"));
            }
        }
        Err(e) => record.error = Some(describe(&e)),
    }
    record
}

/// Why a request failed, in words (with the cause chain: reqwest's own message is terse).
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
