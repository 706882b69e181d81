//! Test support lives in `e2e/util.rs`; this library is intentionally empty.
