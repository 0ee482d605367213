//! The engines under test, one file each. To add one (`SQLite` through `rusqlite` with
//! `bundled`): implement [`Engine`](crate::engine::Engine) in a new file here and add it to
//! the round in `main`.

mod lightning_btree;
mod lightning_db;
mod lmdb;
mod redb;

pub(crate) use lightning_btree::LightningBtree;
pub(crate) use lightning_db::LightningDb;
pub(crate) use lmdb::Lmdb;
pub(crate) use redb::Redb;
