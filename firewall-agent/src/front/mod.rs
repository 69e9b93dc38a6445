//! Front ends: they translate their wire to and from the catalogue of typed operations, and
//! nothing else.

pub mod console;
pub mod ec2;
pub mod json;
pub mod limits;
pub mod metrics;
