//! Item vectors of the soft searches (V_long, V_livelong) from the ranker's embedding
//! table: a history record's vector is its item's row (video or live namespace), the query
//! the target live's row, so the searches rank the user's records by
//! `⟨e_item, e_target⟩` in the table the ranker trains. Items without a row (never seen
//! in training, or evicted) are left out of the search; a target without a row searches
//! nothing. Training searches with a copy of the table taken every
//! `train.soft_refresh_steps` steps offline; online training, serving and evaluation
//! search with the current one.

use crate::embedding::EmbeddingStore;
use crate::features::{KeyKind, key};
use liverank_types::history::{Domain, ItemVectors};

/// [`ItemVectors`] over an embedding table.
#[derive(Clone, Copy, Debug)]
pub struct TableVectors<'a> {
    store: &'a EmbeddingStore,
}

impl<'a> TableVectors<'a> {
    /// Vectors of this table.
    pub fn new(store: &'a EmbeddingStore) -> Self {
        Self { store }
    }

    /// The soft searches' query for a target live: its row, if it has one.
    pub fn query(&self, live: u64) -> Option<&'a [f32]> {
        self.store.row(key(KeyKind::Live, live))
    }
}

impl ItemVectors for TableVectors<'_> {
    fn vector(&self, domain: Domain, item: u64) -> Option<&[f32]> {
        self.store.row(item_key(domain, item))
    }
}

/// The embedding-table key of a history record's item: its video or live row.
pub fn item_key(domain: Domain, item: u64) -> u64 {
    let kind = match domain {
        Domain::Video => KeyKind::Video,
        Domain::Live => KeyKind::Live,
    };
    key(kind, item)
}
