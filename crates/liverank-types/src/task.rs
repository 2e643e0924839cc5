//! The ranker's tasks (labels). Which tasks a model trains is configuration; this is the
//! closed vocabulary they are chosen from.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A prediction task of the multi-task ranker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Entered the room from the exposure.
    Click,
    /// Still in the room a threshold (default 60 s) after entering.
    LongView,
    /// Liked in the session.
    Like,
    /// Commented in the session.
    Comment,
    /// Followed the author in the session.
    Follow,
    /// Sent a gift in the session.
    Gift,
    /// Bought in the session.
    Purchase,
}

impl Task {
    /// Every task, in the canonical order used for label vectors.
    pub const ALL: [Task; 7] = [
        Task::Click,
        Task::LongView,
        Task::Like,
        Task::Comment,
        Task::Follow,
        Task::Gift,
        Task::Purchase,
    ];

    /// Wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Task::Click => "click",
            Task::LongView => "long_view",
            Task::Like => "like",
            Task::Comment => "comment",
            Task::Follow => "follow",
            Task::Gift => "gift",
            Task::Purchase => "purchase",
        }
    }
}

impl FromStr for Task {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Task::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Task::ALL.iter().map(|t| t.as_str()).collect();
                format!("unknown task `{s}`, expected one of {}", names.join(", "))
            })
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_names_round_trip_and_unknown_is_an_error() {
        for t in Task::ALL {
            assert_eq!(t.as_str().parse::<Task>().unwrap(), t);
        }
        assert!(
            "watch"
                .parse::<Task>()
                .unwrap_err()
                .contains("expected one of click")
        );
    }
}
