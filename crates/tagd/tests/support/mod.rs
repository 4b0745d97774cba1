//! What the test crates of `tagd` share: a `tagd serve` child process ([`process`]) and the
//! HTTP clients every test talks to a server with ([`client`]). Each test crate includes this
//! module with `#[path = "support/mod.rs"]` (or `../support/mod.rs`) and uses part of it.
#![allow(dead_code)]

pub mod client;
pub mod process;
pub mod receiver;
