//! Events to NATS JetStream (`--nats-url`): stream `TAGD` (created if missing, subjects
//! `tagd.>`), subject `tagd.<corp_id>.<type>`, header `Nats-Msg-Id` = the event id so that
//! JetStream drops a repeat within its duplicate window. Each organization's position is
//! kept in the database (sink `nats`) and moved only after JetStream acknowledged every
//! event up to it.

use crate::{lease, next_commit, Context};
use async_nats::jetstream::{self, stream};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tagd_core::log::Backlog;
use tagd_core::webhooks::{DeliveryCounters, LEASE_RENEW};
use tagd_core::{CorpId, OrgId};

/// The stream every event goes to.
pub const STREAM: &str = "TAGD";
/// The position of each organization is kept under this sink name.
const SINK: &str = "nats";
/// Entries published per page (all in flight at once, then acknowledged).
const PAGE: usize = 500;
/// How long to wait after a failure (NATS down, the database busy) before trying again.
const BACKOFF: Duration = Duration::from_secs(1);
/// How long the publisher waits for a commit before it looks at the logs anyway.
const IDLE_POLL: Duration = Duration::from_millis(250);

/// The subject of an event: `tagd.<corp_id>.<type>`.
pub fn subject(corp_id: &CorpId, kind: &str) -> String {
    format!("tagd.{corp_id}.{kind}")
}

/// Publishes every organization's events, forever; reconnects and resumes after failures.
pub(crate) async fn publish(context: Arc<Context>, url: String) {
    let client = loop {
        match async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect(url.as_str())
            .await
        {
            Ok(client) => break client,
            Err(e) => {
                tracing::warn!(cause = %e, url, "NATS: cannot connect; retrying");
                tokio::time::sleep(BACKOFF).await;
            }
        }
    };
    let js = jetstream::new(client);
    loop {
        let config = stream::Config {
            name: STREAM.to_owned(),
            subjects: vec!["tagd.>".to_owned()],
            ..Default::default()
        };
        match js.get_or_create_stream(config).await {
            Ok(_) => break,
            Err(e) => {
                tracing::warn!(cause = %e, "NATS: cannot create stream {STREAM}; retrying");
                tokio::time::sleep(BACKOFF).await;
            }
        }
    }
    tracing::info!(url, "publishing events to NATS JetStream stream {STREAM}");
    let mut publisher = Publisher {
        context: context.clone(),
        js,
        positions: HashMap::new(),
        corp_ids: HashMap::new(),
    };
    let mut commits = context.commits.clone();
    let mut backlog = Backlog::default();
    loop {
        match backlog.due(context.store.as_ref()).await {
            Ok(due) => {
                for (org, head) in due {
                    let published = |p: &Publisher| p.positions.get(&org).map(|(at, _)| *at);
                    if let Some(position) = published(&publisher).filter(|p| *p >= head) {
                        backlog.reached(org, position);
                        continue;
                    }
                    match publisher.catch_up(org).await {
                        Ok(()) => match published(&publisher) {
                            Some(position) => backlog.reached(org, position),
                            None => backlog.later(org, LEASE_RENEW), // held elsewhere
                        },
                        Err(e) => {
                            DeliveryCounters::add(&context.counters.nats_failures, 1);
                            tracing::warn!(cause = %e, org = org.0, "NATS: publishing stopped; retrying");
                            publisher.positions.remove(&org);
                            backlog.later(org, BACKOFF);
                            tokio::time::sleep(BACKOFF).await;
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(cause = %e, "NATS: cannot read the log heads");
                tokio::time::sleep(BACKOFF).await;
            }
        }
        next_commit(&mut commits, IDLE_POLL).await;
    }
}

struct Publisher {
    context: Arc<Context>,
    js: jetstream::Context,
    /// Each organization's position as last claimed or saved by this server, and when its
    /// lease was last taken or renewed.
    positions: HashMap<OrgId, (i64, Instant)>,
    corp_ids: HashMap<OrgId, CorpId>,
}

impl Publisher {
    /// Publishes the organization's events after its saved position, page by page, if this
    /// server holds (or takes) its lease.
    async fn catch_up(&mut self, org: OrgId) -> Result<(), String> {
        let store = &self.context.store;
        let owner = self.context.owner.as_str();
        let mut position = match self.positions.get(&org) {
            Some((position, renewed)) if renewed.elapsed() < LEASE_RENEW => *position,
            _ => match store
                .claim_sink(org, SINK, &lease(owner))
                .await
                .map_err(|e| e.to_string())?
            {
                Some(position) => {
                    self.positions.insert(org, (position, Instant::now()));
                    position
                }
                None => {
                    self.positions.remove(&org);
                    return Ok(()); // another server publishes this organization
                }
            },
        };
        let corp_id = match self.corp_ids.get(&org) {
            Some(found) => found.clone(),
            None => {
                let found = store.get_org(org).await.map_err(|e| e.to_string())?.corp_id;
                self.corp_ids.insert(org, found.clone());
                found
            }
        };
        loop {
            let page = store
                .change_feed(org, position, PAGE)
                .await
                .map_err(|e| e.to_string())?;
            let Some(last) = page.entries.last().map(|e| e.version) else {
                break;
            };
            let mut acks = Vec::with_capacity(page.entries.len());
            for entry in &page.entries {
                let event = (self.context.render)(&corp_id, entry, &page);
                let mut headers = async_nats::HeaderMap::new();
                headers.insert(async_nats::header::NATS_MESSAGE_ID, event.id.as_str());
                let ack = self
                    .js
                    .publish_with_headers(subject(&corp_id, event.kind), headers, event.body)
                    .await
                    .map_err(|e| e.to_string())?;
                acks.push(ack);
            }
            let published = acks.len() as u64;
            for ack in acks {
                ack.await.map_err(|e| e.to_string())?;
            }
            DeliveryCounters::add(&self.context.counters.nats_published, published);
            let saved = store
                .save_sink(org, SINK, &lease(owner), last)
                .await
                .map_err(|e| e.to_string())?;
            if !saved {
                self.positions.remove(&org);
                return Ok(()); // the lease went to another server
            }
            position = last;
            self.positions.insert(org, (position, Instant::now()));
        }
        Ok(())
    }
}
