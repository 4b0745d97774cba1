//! HTTP-level tests: a real server on port 0 over a real database, run once on SQLite and once
//! on PostgreSQL (when `TAGD_TEST_POSTGRES_URL` is set; CI sets it).

#[path = "../support/mod.rs"]
mod support;

mod helpers;

mod admin;
mod hardening;
mod operator;
mod ops;
mod servers;
mod v2;
mod v5;
mod versions;
