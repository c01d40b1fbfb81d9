//! The module's integration tests: one binary (the module is built and the harness linked
//! once per run), a folder per family, real redis-server processes from
//! `hacks-test-support`. `HACKS_REDIS_SERVER` picks the server build (scripts/test runs the
//! suite once per supported server).

use hacks_test_support as common;

mod buffer;
mod docs;
mod lock;
mod module;
mod ratelimit;
mod timeseries;
