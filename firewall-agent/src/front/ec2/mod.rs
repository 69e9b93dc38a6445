//! The EC2 Query front end: form-encoded requests (`form`, with EC2's member names from
//! `names`), XML answers and errors (`xml`), on an HTTP listener of its own (`handler`).

pub mod form;
pub mod handler;
pub mod names;
pub mod xml;
