//! Rate limiting: `HACK.RATEHIT`.
//!
//! - `request.rs` parses and validates the arguments;
//! - `fixed.rs`, `sliding.rs`, `gcra.rs` are the algorithms, pure functions of
//!   (clock, parameters, stored state) returning a [`verdict::Outcome`];
//! - `codec.rs` is the stored string format of each algorithm's state;
//! - `command.rs` is the server glue: read the key, decide, write, replicate the effect.

pub mod codec;
pub mod command;
pub mod fixed;
pub mod gcra;
pub mod request;
pub mod sliding;
pub mod stats;
pub mod verdict;
