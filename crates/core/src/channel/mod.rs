//! Placeholder: filled by the ferry-core issue (see the crate docs).
