//! The EC2 Query front end: the key store and AWS Signature Version 4 verification.

pub mod credentials;
pub mod sigv4;
