//! A page's bytes as read from disk: verification must reject or accept, never panic.
#![no_main]
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use lightning_page::{PageBuf, PageId};

fuzz_target!(|data: &[u8]| {
    let id = data.first().map_or(0, |b| u64::from(*b));
    let _ = PageBuf::verify(data, Path::new("fuzz"), PageId::new(id), None);
});
