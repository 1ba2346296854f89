//! What the HTTP admin routes ask of the running daemon, as messages: the
//! server sends them, `app` answers them. Defined here, on the asking
//! side, so that `app` depends on `server` and never the other way.

use tokio::sync::{oneshot, watch};

use crate::model::PollReport;

/// What the HTTP admin routes ask of the running daemon.
pub enum Control {
    /// Re-read the config file; answers with the error sentence if it is bad.
    Reload(oneshot::Sender<Result<(), String>>),
    /// Poll one feed now, or join its poll in flight: the channel its
    /// report arrives on, and whether a poll was already in flight.
    Refresh(String, oneshot::Sender<Result<Refreshing, String>>),
}

/// A refresh under way.
pub struct Refreshing {
    /// Where the poll's report arrives.
    pub report: watch::Receiver<Option<PollReport>>,
    /// A poll of the feed was already in flight, and this joined it.
    pub joined: bool,
}
