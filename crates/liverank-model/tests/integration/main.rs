//! The crate's integration tests, one module per area, in one test binary: each test
//! binary links the whole dependency tree, so one binary instead of many keeps the
//! build's disk and link time down (CI once ran out of disk linking them).

mod dien;
mod embedding_store;
mod esu;
mod foresight;
mod foresight_inputs;
mod gradients;
mod publish;
mod support;
mod test_then_train;
mod trainer;
mod two_tower;
