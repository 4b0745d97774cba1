//! Bulk import and export of one organization's users and assignments (API.md §8), CSV or
//! NDJSON, streamed in both directions. The rules live in `tagd_core::bulk` and the store;
//! this is the command line over them: files, formats, progress, error report, summary.

pub mod export;
pub mod formats;
pub mod history_export;
pub mod import;
pub mod progress;
pub mod segment_export;
pub mod spreadsheet;
