//! The client for the partner's ("Leap") inventory API: one rate-limited request per
//! (product, date), its response validated into domain types, and every failure classified
//! so the sync engine can decide between retrying, backing off and stopping.

mod client;
mod error;
pub mod wire;

pub use client::{PartnerClient, PartnerClientConfig};
pub use error::{ClientBuildError, PartnerError};
