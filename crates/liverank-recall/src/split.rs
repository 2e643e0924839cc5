//! Leave-one-out by time, the standard sequential split (SASRec, BERT4Rec): for each user
//! with at least three interactions, the last one (by timestamp) is the test case, the one
//! before it the validation case and the rest training. Users with fewer interactions
//! contribute all of them to training and are not evaluated.
//!
//! A validation case sees the training prefix as its history; a test case sees the
//! training prefix plus the validation item (everything strictly before the target in the
//! user's sequence). Models are fitted on the training prefixes only, so neither target
//! leaks into what a scorer learns from.

use crate::log::InteractionLog;

/// Which held-out interaction is evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The second-to-last interaction, history = training prefix.
    Validation,
    /// The last interaction, history = training prefix + validation item.
    Test,
}

/// One evaluation case: a user, the history a scorer sees and the held-out target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Case<'a> {
    /// Dense user index.
    pub user: u32,
    /// The items before the target, oldest first.
    pub history: &'a [u32],
    /// The held-out item.
    pub target: u32,
}

/// The split of an [`InteractionLog`].
#[derive(Clone, Debug)]
pub struct Split<'a> {
    log: &'a InteractionLog,
    /// Evaluated users, ascending.
    evaluated: Vec<u32>,
}

impl<'a> Split<'a> {
    /// Splits `log` leave-one-out by time.
    pub fn leave_one_out(log: &'a InteractionLog) -> Self {
        let evaluated = (0..log.num_users() as u32)
            .filter(|&u| log.items_of(u).len() >= 3)
            .collect();
        Self { log, evaluated }
    }

    /// The log it splits.
    pub fn log(&self) -> &InteractionLog {
        self.log
    }

    /// Number of items (the ranking is over all of them).
    pub fn num_items(&self) -> usize {
        self.log.num_items()
    }

    /// Number of users (evaluated or not).
    pub fn num_users(&self) -> usize {
        self.log.num_users()
    }

    /// The evaluated users (≥ 3 interactions), ascending.
    pub fn evaluated_users(&self) -> &[u32] {
        &self.evaluated
    }

    /// The training prefix of `user`, oldest first: all but the last two interactions for
    /// an evaluated user, everything otherwise.
    pub fn train(&self, user: u32) -> &'a [u32] {
        let items = self.log.items_of(user);
        if items.len() >= 3 {
            &items[..items.len() - 2]
        } else {
            items
        }
    }

    /// The case of `user` at `stage` (`None` for a user that is not evaluated).
    pub fn case(&self, user: u32, stage: Stage) -> Option<Case<'a>> {
        let items = self.log.items_of(user);
        if items.len() < 3 {
            return None;
        }
        let target = match stage {
            Stage::Validation => items.len() - 2,
            Stage::Test => items.len() - 1,
        };
        Some(Case {
            user,
            history: &items[..target],
            target: items[target],
        })
    }

    /// Every case of `stage`, by ascending user.
    pub fn cases(&self, stage: Stage) -> impl Iterator<Item = Case<'a>> + '_ {
        self.evaluated
            .iter()
            .filter_map(move |&u| self.case(u, stage))
    }
}
