//! WebSub (W3C Recommendation): the built-in hub that pushes Paddock's own
//! outputs to their subscribers (`hub`), and the rule every call to a
//! stranger's URL follows (`safety`).

pub mod hub;
pub mod safety;

pub use hub::Hub;
