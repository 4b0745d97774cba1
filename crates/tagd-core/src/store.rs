//! The storage contract. Each backend crate implements [`Store`]; one conformance suite
//! (`tagd-store-tests`) proves every implementation against the same behaviour.
//!
//! Tenant first: every method that touches an organization's data takes its [`OrgId`] as the
//! first argument, and every query behind it is scoped by that id. The only exceptions are the
//! lookups that *discover* the tenant from a credential (`find_app`, `find_token`,
//! `find_basic_credential`, `find_org_by_corp_id`) and `create_org`, which makes one.

use crate::error::Result;
use crate::{
    Assignments, Bulk, ChangeLog, Credentials, IdempotencyKeys, Labels, TagGroups, Tenants,
};
use async_trait::async_trait;

/// Size of one connection pool, for the `/metrics` gauges.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolStats {
    /// `reader`, `writer` or `main`.
    pub pool: &'static str,
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

/// Everything a backend stores, one trait per area (each beside its rules), plus health.
#[async_trait]
pub trait Store:
    Tenants
    + Credentials
    + TagGroups
    + Assignments
    + Labels
    + IdempotencyKeys
    + Bulk
    + ChangeLog
    + crate::segments::Segments
    + crate::saved_segments::SavedSegments
    + crate::history::History
    + crate::expiry::Expiries
    + crate::webhooks::Webhooks
    + crate::saved_segments::AnnouncedMembers
    + 'static
{
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Fails when the database cannot answer a trivial query.
    async fn ping(&self) -> Result<()>;
    fn pool_stats(&self) -> Vec<PoolStats>;
    /// This store over connections of its own (at most `max_connections`, reported as
    /// `pool`), opened by the runtime that first uses them. A task on a runtime of its own
    /// (event delivery) uses it so that its round trips to the database are not driven by
    /// the busy request runtime, nor queued for its connections.
    fn with_own_connections(
        &self,
        pool: &'static str,
        max_connections: u32,
    ) -> std::sync::Arc<dyn Store>;
}
