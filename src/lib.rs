//! invsync: keeps a marketplace's copy of a partner's experience inventory in sync, records every
//! change of allocated capacity as double-entry ledger postings, and serves it over HTTP.
//!
//! Data flows one way: `partner` → `sync` → `storage` + `ledger` → `api`.

pub mod api;
pub mod app;
pub mod bookings;
pub mod cli;
pub mod config;
pub mod domain;
pub mod ledger;
pub mod partner;
pub mod simulator;
pub mod storage;
pub mod sync;
pub mod telemetry;
