//! Access to the server's module API without `unwrap`.
//!
//! Every `RedisModule_*` entry point is an `Option<fn>` filled in when the module loads; an
//! entry the running server lacks stays `None`. `rm!(Name)` yields the function or returns an
//! internal error from the enclosing function, so a missing API can never panic a handler.

/// Fetch `raw::RedisModule_<name>` or return `Err(CmdError::missing_api(..))`.
macro_rules! rm {
    ($name:ident) => {
        match unsafe { ::redis_module::raw::$name } {
            Some(f) => f,
            None => {
                return Err($crate::module::error::CmdError::missing_api(stringify!(
                    $name
                )))
            }
        }
    };
}
pub(crate) use rm;

/// Whether the running server offers an optional API.
macro_rules! has_api {
    ($name:ident) => {
        unsafe { ::redis_module::raw::$name }.is_some()
    };
}
pub(crate) use has_api;
