//! The EC2 Query front end: form-encoded requests (`form`, with EC2's member names from
//! `names`), XML answers and errors (`xml`), SigV4 verification (`sigv4`) against the keys of a
//! shared-credentials file (`credentials`, reloaded while the agent runs: `keys`), on an HTTP listener of its own (`handler`).

pub mod credentials;
pub mod form;
pub mod handler;
pub mod keys;
pub mod names;
pub mod sigv4;
pub mod xml;
