//! PostgreSQL rows seen through the shared decoders of `tagd_core::records`.

use sqlx::postgres::PgRow;
use sqlx::Row;
use tagd_core::records::Columns;
use tagd_core::{Error, Result};

pub(crate) struct Cols<'a>(pub &'a PgRow);

impl Columns for Cols<'_> {
    fn int(&self, column: &str) -> Result<i64> {
        self.0.try_get(column).map_err(Error::internal)
    }
    fn text(&self, column: &str) -> Result<String> {
        self.0.try_get(column).map_err(Error::internal)
    }
    fn flag(&self, column: &str) -> Result<bool> {
        self.0.try_get(column).map_err(Error::internal)
    }
    fn opt_text(&self, column: &str) -> Result<Option<String>> {
        self.0.try_get(column).map_err(Error::internal)
    }
    fn opt_float(&self, column: &str) -> Result<Option<f64>> {
        self.0.try_get(column).map_err(Error::internal)
    }
    fn opt_flag(&self, column: &str) -> Result<Option<bool>> {
        self.0.try_get(column).map_err(Error::internal)
    }
}
