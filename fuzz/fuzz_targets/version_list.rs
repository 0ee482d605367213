//! A version list as stored in a B+tree entry.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lightning_mvcc::VersionList;

fuzz_target!(|data: &[u8]| {
    if let Ok(list) = VersionList::decode(data) {
        // What decodes within the limits encodes again, to the same list.
        let bytes = list.encode().expect("a decoded list is within the limits");
        assert_eq!(VersionList::decode(&bytes).ok(), Some(list));
    }
});
