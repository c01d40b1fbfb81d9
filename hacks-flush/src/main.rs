//! `hacks-flush`: drains redis-hacks write buffers (`HACK.DRAIN` / `HACK.ACK`) into SQL
//! tables (SQLite or PostgreSQL) with exactly-once effects across worker crashes.

// As in the module: every `unsafe` block says why it is sound.
#![deny(clippy::undocumented_unsafe_blocks)]

#[macro_use]
mod log;
mod args;
mod backoff;
mod batch;
mod member;
mod signals;
mod sink;
mod source;
mod worker;

use std::io::Write;

fn main() {
    std::process::exit(real_main());
}

fn real_main() -> i32 {
    let config = match args::parse(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(args::ArgsError::Help) => {
            let _ = std::io::stdout().write_all(args::USAGE.as_bytes());
            return 0;
        }
        Err(args::ArgsError::Bad(msg)) => {
            let _ = write!(std::io::stderr(), "hacks-flush: {msg}\n\n{}", args::USAGE);
            return worker::EXIT_CONFIG;
        }
    };
    if let Err(e) = signals::install() {
        log!("error: cannot install signal handlers: {e}");
        return 1;
    }
    worker::run(&config)
}
