//! Bench placeholder, replaced below.
fn main() {}
