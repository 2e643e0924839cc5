//! A seeded simulator of a live-streaming platform with known ground truth: the default
//! data source of liverank (SPEC §7).
//!
//! Users with interests over content categories scroll a feed in which about nine in ten
//! exposures are short videos; the rest are live rooms on air, picked by an incumbent
//! recommender. Whether a user enters a room follows an explicit logistic model (interest
//! in the room's category, the streamer's quality, a personal bias, the feed position and
//! whether the room is in a highlight moment), so every live exposure's true click
//! probability is known and written as ground truth. Rooms have timelines: talent
//! performances, game climaxes, PK battles, catches, and in e-commerce rooms products put
//! on sale with a countdown, following a style walk inside one vertical. Inside rooms,
//! viewers like and comment while they watch, gift after they have warmed up (often tens of
//! minutes in) and buy just after sale moments.
//!
//! Main types: [`SimConfig`] (with [`Preset`]s), [`Simulation`] (world + run loop),
//! [`EventSink`] (where events go), `output::write_simulation` (the on-disk layout), and
//! [`realism`] (the statistics that check the simulator behaves like a platform).
//!
//! ```
//! use liverank_sim::{Preset, SimConfig, Simulation, VecSink};
//! let mut config = SimConfig::preset(Preset::Tiny);
//! config.users = 50;
//! let sim = Simulation::new(config).unwrap();
//! let mut sink = VecSink::default();
//! let (truth, summary) = sim.run(&mut sink, |_| {}).unwrap();
//! assert_eq!(summary.events as usize, sink.events.len());
//! assert!(sink.events.windows(2).all(|w| w[0].ts <= w[1].ts));
//! assert_eq!(truth.len() as u64, summary.live_exposures);
//! ```
//!
//! Key decision: the random source is our own (xoshiro256++, seeded per entity with
//! SplitMix64), so the same seed gives byte-identical output across dependency versions,
//! and each user's behaviour does not depend on how many other users exist.

pub mod behavior;
pub mod config;
pub mod output;
pub mod realism;
pub mod rng;
pub mod simulation;
pub mod world;

pub use behavior::{FeedPolicy, FeedSlot, PlatformFeed, TruthExposure};
pub use config::{FaultConfig, Preset, SimConfig};
pub use simulation::{
    CountingSink, EventSink, MalformedKind, MalformedRecord, Progress, SimSummary, Simulation,
    VecSink,
};
pub use world::{HighlightKind, World};
