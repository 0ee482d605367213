//! Integration suite of lightning-page: the page file and the allocator through the VFS.
//! One binary (`integration`) so nextest can select the suite by name.

#![cfg(test)] // test-only code throughout: clippy treats helpers like test functions

mod allocator_model;
mod page_file;
