//! The compact in-memory interaction log: users and items re-indexed densely (in order of
//! first appearance in the input, so the same file gives the same indexes), each user's
//! interactions sorted by timestamp, equal timestamps kept in input order.

use std::collections::HashMap;

/// One user's interactions and all users' in CSR form; built by [`LogBuilder`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InteractionLog {
    users: Vec<String>,
    items: Vec<String>,
    offsets: Vec<usize>,
    sequence: Vec<u32>,
    timestamps: Vec<i64>,
}

impl InteractionLog {
    /// Number of distinct users.
    pub fn num_users(&self) -> usize {
        self.users.len()
    }

    /// Number of distinct items.
    pub fn num_items(&self) -> usize {
        self.items.len()
    }

    /// Number of interactions.
    pub fn num_interactions(&self) -> usize {
        self.sequence.len()
    }

    /// The original key of dense user `user`.
    pub fn user_key(&self, user: u32) -> Option<&str> {
        self.users.get(user as usize).map(String::as_str)
    }

    /// The original key of dense item `item`.
    pub fn item_key(&self, item: u32) -> Option<&str> {
        self.items.get(item as usize).map(String::as_str)
    }

    /// The items of `user` oldest first (empty for an unknown user).
    pub fn items_of(&self, user: u32) -> &[u32] {
        self.range(user).map_or(&[], |r| &self.sequence[r])
    }

    /// The timestamps matching [`Self::items_of`].
    pub fn timestamps_of(&self, user: u32) -> &[i64] {
        self.range(user).map_or(&[], |r| &self.timestamps[r])
    }

    fn range(&self, user: u32) -> Option<std::ops::Range<usize>> {
        let user = user as usize;
        (user < self.users.len()).then(|| self.offsets[user]..self.offsets[user + 1])
    }
}

/// Collects (user, item, timestamp) records in any order and builds the log.
#[derive(Debug, Default)]
pub struct LogBuilder {
    user_index: HashMap<String, u32>,
    item_index: HashMap<String, u32>,
    users: Vec<String>,
    items: Vec<String>,
    /// (user, timestamp, item) in input order.
    rows: Vec<(u32, i64, u32)>,
}

impl LogBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one interaction.
    pub fn push(&mut self, user: &str, item: &str, timestamp: i64) {
        let user = intern(&mut self.user_index, &mut self.users, user);
        let item = intern(&mut self.item_index, &mut self.items, item);
        self.rows.push((user, timestamp, item));
    }

    /// Interactions pushed so far.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Sorts by (user, timestamp), stable, and packs the log.
    pub fn finish(mut self) -> InteractionLog {
        self.rows.sort_by_key(|&(user, ts, _)| (user, ts));
        let mut offsets = vec![0usize; self.users.len() + 1];
        for &(user, _, _) in &self.rows {
            offsets[user as usize + 1] += 1;
        }
        for u in 0..self.users.len() {
            offsets[u + 1] += offsets[u];
        }
        InteractionLog {
            users: self.users,
            items: self.items,
            offsets,
            sequence: self.rows.iter().map(|r| r.2).collect(),
            timestamps: self.rows.iter().map(|r| r.1).collect(),
        }
    }
}

fn intern(index: &mut HashMap<String, u32>, keys: &mut Vec<String>, key: &str) -> u32 {
    if let Some(&id) = index.get(key) {
        return id;
    }
    let id = keys.len() as u32;
    keys.push(key.to_owned());
    index.insert(key.to_owned(), id);
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_reindexes_by_first_appearance_and_sorts_each_user_by_time() {
        let mut builder = LogBuilder::new();
        for (user, item, ts) in [
            ("bob", "x", 5),
            ("amy", "y", 3),
            ("bob", "y", 1),
            ("bob", "z", 5),
            ("amy", "x", 1),
        ] {
            builder.push(user, item, ts);
        }
        let log = builder.finish();
        assert_eq!(
            (log.num_users(), log.num_items(), log.num_interactions()),
            (2, 3, 5)
        );
        assert_eq!(log.user_key(0), Some("bob"));
        assert_eq!(log.item_key(2), Some("z"));
        // bob: y@1, then x@5 and z@5 in input order.
        assert_eq!(log.items_of(0), &[1, 0, 2]);
        assert_eq!(log.timestamps_of(0), &[1, 5, 5]);
        assert_eq!(log.items_of(1), &[0, 1]);
        assert!(log.items_of(7).is_empty());
    }
}
