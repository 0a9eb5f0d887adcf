//! Business rules, written once against the storage port.

pub mod login;
pub mod members;
pub mod profile;
