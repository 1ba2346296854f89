//! WebSub (W3C Recommendation): the built-in hub that pushes Paddock's own
//! outputs to their subscribers (`hub`), pings to another hub instead
//! (`ping`), and the rule every call to a stranger's URL follows
//! (`safety`).

pub mod hub;
pub mod ping;
pub mod safety;
pub mod subscriber;

pub use hub::Hub;
