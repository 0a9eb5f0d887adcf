//! Business rules, written once against the storage port.

pub mod identity;
pub mod login;
pub mod members;
pub mod profile;
pub mod verification;
