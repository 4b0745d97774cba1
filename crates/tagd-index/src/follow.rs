//! The follower: reads the log of every loaded organization, at every poll interval or at
//! once when a `min_version` read waits. It brings in what this server did not write itself
//! (other servers over the same PostgreSQL, `tagd import` on the same SQLite file) and moves
//! each organization's cursor, which `min_version` reads wait on. A failure drops that
//! organization (served from the store, loaded again on its next use).

use crate::Index;
use std::sync::Arc;

pub(crate) async fn run(index: Arc<Index>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(index.config.poll_interval) => {}
            _ = index.wake.notified() => {}
        }
        index.follow_once().await;
    }
}
