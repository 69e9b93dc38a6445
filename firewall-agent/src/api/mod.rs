//! The catalogue of operations: the one place an action's name is spelled, with its typed
//! request and response ([`types`]), whether it mutates the state, whether it takes our
//! `FlushFlows` member, and its handler ([`catalogue`]). Every front end (the JSON socket, the
//! CLI, later EC2 Query/XML, the console and CNI) translates to and from these types only.

pub mod call;
pub mod catalogue;
pub mod error;
pub mod explain;
mod ours;
pub mod types;

pub use call::{Call, Scope};
pub use catalogue::{
    ACTIONS, Action, DataplaneView, Handler, Operation, Service, StateOperation, find,
};
pub use error::{ApiError, ApiResult};

use crate::model::regions;
