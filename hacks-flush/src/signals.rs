//! SIGTERM/SIGINT set a flag that the worker checks between steps; sleeps are cut into short
//! slices so a stop request is seen within ~20 ms.
//!
//! The signals are blocked in every thread and taken by one thread with `sigwait`, not by a
//! handler: a handler interrupts whichever thread it runs on, and a socket read with a
//! timeout (the Redis client sets one) then fails with EINTR even under SA_RESTART. That
//! would drop the connection in the middle of a HACK.DRAIN whose batch the server has
//! already leased out, leaving it stranded until its lease ends.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static STOP: AtomicBool = AtomicBool::new(false);

/// Must run before any other thread is started (threads inherit the signal mask).
pub fn install() -> Result<(), String> {
    // SAFETY: plain libc calls on a local, zero-initialised sigset_t.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(rc).to_string());
        }
        set
    };
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            let mut sig: libc::c_int = 0;
            // SAFETY: `set` is a valid, initialised signal set; `sig` is a valid out pointer.
            if unsafe { libc::sigwait(&set, &mut sig) } == 0 {
                STOP.store(true, Ordering::SeqCst);
            }
        })
        .map(|_| ())
        .map_err(|e| e.to_string())
}

pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Sleeps for `d` unless a stop is requested first. Returns false when stopped.
pub fn sleep(d: Duration) -> bool {
    let end = Instant::now() + d;
    loop {
        if stop_requested() {
            return false;
        }
        let now = Instant::now();
        if now >= end {
            return true;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(20)));
    }
}
