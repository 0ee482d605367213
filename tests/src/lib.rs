//! Workspace-level test suites for Lightning DB; the code lives in the test binaries
//! (`e2e/`, ...). This library is empty on purpose: the package exists to hold them.
#![forbid(unsafe_code)]
