//! A version list as stored in a B+tree entry.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lightning_mvcc::VersionList;

fuzz_target!(|data: &[u8]| {
    if let Ok(list) = VersionList::decode(data) {
        assert_eq!(VersionList::decode(&list.encode()).ok(), Some(list));
    }
});
