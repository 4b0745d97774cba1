//! Saved segments (API.md §10): a named filter of an organization, evaluated whenever asked.
//! Saved filters are validated when saved (tags exist, references exist and form no cycle);
//! the rules of the filter itself live in `segments.rs`.

use crate::segments::{self, Filter};
use crate::{Description, ExternalId, OrgId, Recorder, Result};
use async_trait::async_trait;

/// Saved segments one organization may keep.
pub const MAX_SAVED_SEGMENTS: i64 = 1000;
/// A segment's name: 1–255 characters after trimming.
pub const MAX_SEGMENT_NAME_CHARS: usize = 255;

#[derive(Debug, Clone, PartialEq)]
pub struct SavedSegment {
    pub org_id: OrgId,
    /// Internal id.
    pub id: i64,
    pub entity_id: ExternalId,
    pub name: String,
    pub description: Description,
    /// The filter as saved (valid JSON of the filter language).
    pub filter: serde_json::Value,
    pub version: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub is_deleted: bool,
}

impl SavedSegment {
    /// The saved filter, parsed (it was valid when saved).
    pub fn parsed_filter(&self) -> Result<Filter> {
        segments::parse(&self.filter, "filter")
    }

    /// The saved segments this one's filter names.
    pub fn references(&self) -> Vec<ExternalId> {
        let mut found = Vec::new();
        if let Ok(filter) = self.parsed_filter() {
            collect_references(&filter, &mut found);
        }
        found
    }
}

fn collect_references(filter: &Filter, found: &mut Vec<ExternalId>) {
    match filter {
        Filter::All(children) | Filter::Any(children) => {
            children.iter().for_each(|c| collect_references(c, found))
        }
        Filter::Not(child) => collect_references(child, found),
        Filter::Segment { id, .. } => found.push(id.clone()),
        Filter::Leaf(_) => {}
    }
}

/// What a client sets on a saved segment.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentFields {
    pub name: String,
    pub description: Description,
    pub filter: serde_json::Value,
}

impl SegmentFields {
    /// Checks the name and description, and the filter's shape and limits (its tags and
    /// references are checked against the organization by the caller, see [`segments::resolve`]).
    pub fn parse(name: &str, description: &str, filter: serde_json::Value) -> Result<Self> {
        let name = crate::names::bounded_name("name", name, MAX_SEGMENT_NAME_CHARS)?;
        let description = Description::parse(
            "description",
            description,
            crate::names::MAX_DESCRIPTION_CHARS,
        )?;
        segments::parse(&filter, "filter")?;
        Ok(SegmentFields {
            name,
            description,
            filter,
        })
    }
}

/// A new segment fits beside the organization's `live` ones (`SegmentLimit` past the cap).
pub fn check_room(live: i64) -> Result<()> {
    if live >= MAX_SAVED_SEGMENTS {
        return Err(crate::Error::SegmentLimit {
            max: MAX_SAVED_SEGMENTS,
        });
    }
    Ok(())
}

/// An edit applies to the version the client read, when it says which (`StaleVersion`).
pub fn check_edit(current: &SavedSegment, expected_version: Option<i64>) -> Result<()> {
    if expected_version.is_some_and(|v| v != current.version) {
        return Err(crate::Error::StaleVersion);
    }
    Ok(())
}

/// A segment may be deleted while no other live segment names it (`SegmentInUse`, naming
/// the first that does).
pub fn check_unreferenced(current: &SavedSegment, live: &[SavedSegment]) -> Result<()> {
    match live
        .iter()
        .find(|s| s.id != current.id && s.references().contains(&current.entity_id))
    {
        Some(user) => Err(crate::Error::SegmentInUse(user.entity_id.to_string())),
        None => Ok(()),
    }
}

/// Saved segments in the store; every write is logged (`segment.saved`, `segment.deleted`).
#[async_trait]
pub trait SavedSegments {
    /// Saves a new segment. `Duplicate("name")` when a live segment has the name;
    /// `SegmentLimit` past [`MAX_SAVED_SEGMENTS`].
    async fn create_segment(
        &self,
        org: OrgId,
        fields: &SegmentFields,
        record: &Recorder<SavedSegment>,
    ) -> Result<SavedSegment>;

    /// Replaces a segment's fields; `StaleVersion` when `expected_version` is given and not
    /// the current one.
    async fn update_segment(
        &self,
        org: OrgId,
        id: &ExternalId,
        fields: &SegmentFields,
        expected_version: Option<i64>,
        record: &Recorder<SavedSegment>,
    ) -> Result<SavedSegment>;

    /// Deletes a segment; `SegmentInUse` while another live segment names it.
    async fn delete_segment(
        &self,
        org: OrgId,
        id: &ExternalId,
        record: &Recorder<SavedSegment>,
    ) -> Result<SavedSegment>;

    /// A live segment.
    async fn find_segment(&self, org: OrgId, id: &ExternalId) -> Result<Option<SavedSegment>>;

    /// Live segments by creation, `step` from `start`, with the total.
    async fn list_segments(
        &self,
        org: OrgId,
        start: i64,
        step: i64,
    ) -> Result<(i64, Vec<SavedSegment>)>;

    /// Every live segment (resolution, the index's load).
    async fn all_segments(&self, org: OrgId) -> Result<Vec<SavedSegment>>;
}

/// A user moved into or out of a saved segment, as the announcer records it.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberMove {
    pub segment: SavedSegment,
    pub user_ref: i64,
    pub user_id: crate::UserId,
    pub entered: bool,
    /// Logged as `segment.entered` / `segment.exited`; `false` records the membership
    /// silently (a new segment's first members).
    pub announce: bool,
}

/// What one page of the announcer changes.
#[derive(Debug, Clone, Copy, Default)]
pub struct MemberChanges<'a> {
    pub moves: &'a [MemberMove],
    pub started: &'a [i64],
    pub forget: &'a [i64],
}

/// The saved-segment memberships last announced (`segment.entered` / `segment.exited`),
/// kept so that after a restart only real moves are announced, each once.
#[async_trait]
pub trait AnnouncedMembers {
    /// The (segment, user) pairs among `user_refs` last announced as members.
    async fn announced_memberships(&self, org: OrgId, user_refs: &[i64])
        -> Result<Vec<(i64, i64)>>;
    /// The users last announced as members of `segment_ref`.
    async fn announced_members(&self, org: OrgId, segment_ref: i64) -> Result<Vec<i64>>;
    /// The saved segments whose members are followed (started, not forgotten).
    async fn announced_segments(&self, org: OrgId) -> Result<Vec<i64>>;
    /// In one transaction, if the lease on the organization's position in sink
    /// `segments` is still held: records `moves` (logging those announced), starts
    /// following the segments in `started`, forgets the segments in `forget` and every
    /// membership of them, and moves the position to `position`.
    async fn record_member_moves(
        &self,
        org: OrgId,
        lease: &crate::webhooks::Lease<'_>,
        changes: &MemberChanges<'_>,
        position: i64,
    ) -> Result<bool>;
}
