//! The engines under test, one file each. To add one: implement
//! [`Engine`](crate::engine::Engine) in a new file here and add it to the round in `main`.

mod lightning_btree;
mod lightning_db;
mod lmdb;
mod redb;
mod sqlite;

pub(crate) use lightning_btree::LightningBtree;
pub(crate) use lightning_db::{LightningDb, pool_hit_ratios};
pub(crate) use lmdb::Lmdb;
pub(crate) use redb::Redb;
pub(crate) use sqlite::Sqlite;
