//! Segment queries (API.md §10): answered from memory when the index holds the organization
//! and is fresh, else from the store. Either way a filter is resolved against the same things
//! (the organization's live tag groups and saved segments) and evaluated by the same rules.

use crate::{read, Index, SegmentAnswer, MIN_VERSION_WAIT};
use std::sync::Arc;
use tagd_core::saved_segments::SavedSegment;
use tagd_core::segments::{self, Filter, Member, TagRef};
use tagd_core::timefmt::now_unix;
use tagd_core::*;

impl Index {
    /// One page of a segment's members and their exact count: from memory when the
    /// organization is loaded and fresh (and has applied `min_version`, waited for up to
    /// [`MIN_VERSION_WAIT`]), otherwise from the store.
    pub async fn segment_page(
        self: &Arc<Self>,
        org: OrgId,
        filter: &Filter,
        after_ref: i64,
        limit: usize,
        min_version: Option<i64>,
    ) -> Result<SegmentAnswer> {
        let now = now_unix();
        let in_memory = match min_version {
            Some(version) => self.caught_up(org, version, MIN_VERSION_WAIT).await,
            None => true,
        };
        if in_memory {
            if let Some(answer) = self.segment_in_memory(org, filter, after_ref, limit, now)? {
                return Ok(answer);
            }
        }
        let version = self.store.log_head(org).await?;
        let node = segments::resolve_in_store(self.store.as_ref(), org, filter, now, None).await?;
        let page = self
            .store
            .segment_page(org, &node, after_ref, limit)
            .await?;
        Ok(SegmentAnswer { page, version })
    }

    /// Members registered after `after_ref`, at most `limit`, without their count: one chunk
    /// of an export. From memory when the organization is loaded and fresh (a walk evaluates
    /// the audience once while nothing changes), else from the store.
    pub async fn segment_members(
        self: &Arc<Self>,
        org: OrgId,
        filter: &Filter,
        after_ref: i64,
        limit: usize,
    ) -> Result<Vec<Member>> {
        let now = now_unix();
        if let Some(answer) = self.segment_in_memory(org, filter, after_ref, limit, now)? {
            return Ok(answer.page.members);
        }
        let node = segments::resolve_in_store(self.store.as_ref(), org, filter, now, None).await?;
        self.store
            .segment_members(org, &node, after_ref, limit)
            .await
    }

    fn segment_in_memory(
        self: &Arc<Self>,
        org: OrgId,
        filter: &Filter,
        after_ref: i64,
        limit: usize,
        now: i64,
    ) -> Result<Option<SegmentAnswer>> {
        let Some(index) = self.ready(org) else {
            return Ok(None);
        };
        let index = read(&index);
        if !index.fresh() {
            return Ok(None);
        }
        let group = |tag: &TagRef| index.group_named(tag);
        let saved = |id: &ExternalId| index.saved_filter(id);
        match segments::resolve(filter, &group, &saved, now) {
            Ok(node) => Ok(Some(SegmentAnswer {
                page: index.segment_page(&node, after_ref, limit),
                version: index.applied(),
            })),
            // A group or segment made on another server a moment ago: the store knows it.
            Err(Error::TagNotFound(_) | Error::SegmentNotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Checks a filter about to be saved as segment `saving` (new when `None`): its tags and
    /// the segments it names exist, and no reference leads back to it. Checked against the
    /// store, the truth for every server.
    pub async fn check_saved_filter(
        self: &Arc<Self>,
        org: OrgId,
        filter: &Filter,
        saving: Option<&ExternalId>,
    ) -> Result<()> {
        let replacing = saving.map(|id| (id, filter));
        segments::resolve_in_store(self.store.as_ref(), org, filter, now_unix(), replacing).await?;
        Ok(())
    }

    /// The saved segments `user_id` is in now, by creation: from the kept members where the
    /// index keeps them, otherwise each tested for this user only.
    pub async fn user_segments(
        self: &Arc<Self>,
        org: OrgId,
        user_id: &UserId,
    ) -> Result<Vec<SavedSegment>> {
        let now = now_unix();
        if let Some(found) = self.user_segments_in_memory(org, user_id, now) {
            return Ok(found);
        }
        let user = self
            .store
            .find_user(org, user_id)
            .await?
            .ok_or(Error::UserNotFound)?;
        let mut found = Vec::new();
        for saved in self.store.all_segments(org).await? {
            let Ok(filter) = saved.parsed_filter() else {
                continue;
            };
            // A segment that no longer resolves (a tag made invalid since) holds for nobody.
            let store = self.store.as_ref();
            let Ok(node) = segments::resolve_in_store(store, org, &filter, now, None).await else {
                continue;
            };
            if self.store.segment_holds(org, &node, user.id).await? {
                found.push(saved);
            }
        }
        Ok(found)
    }

    fn user_segments_in_memory(
        self: &Arc<Self>,
        org: OrgId,
        user_id: &UserId,
        now: i64,
    ) -> Option<Vec<SavedSegment>> {
        let index = self.ready(org)?;
        let index = read(&index);
        if !index.fresh() {
            return None;
        }
        // A user this index does not know may have been registered elsewhere a moment ago.
        let ordinal = index.ordinal_of(user_id)?;
        let group = |tag: &TagRef| index.group_named(tag);
        let saved = |id: &ExternalId| index.saved_filter(id);
        let mut found = Vec::new();
        for segment in index.saved_segments() {
            // Kept current as writes happen: no test at all.
            if let Some(held) = index.kept_membership(segment.id, ordinal) {
                if held {
                    found.push(segment.clone());
                }
                continue;
            }
            let resolved = segment
                .parsed_filter()
                .and_then(|f| segments::resolve(&f, &group, &saved, now));
            match resolved {
                Ok(node) if index.holds_for(&node, ordinal) => found.push(segment.clone()),
                Ok(_) => {}
                // Named something made on another server a moment ago: the store knows it.
                Err(Error::TagNotFound(_) | Error::SegmentNotFound) => return None,
                Err(_) => {}
            }
        }
        Some(found)
    }
}
