//! Commands that exist only when the module is loaded with the `TEST-HOOKS` argument, so the
//! integration tests can prove the guard works. Never load it that way in production.

use crate::module::args::Args;
use crate::module::command::{Command, CommandDef};
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;

/// `HACK.TESTPANIC`: panics inside a handler; the guard must answer with an error reply and
/// the server must keep running.
pub struct TestPanic;

impl Command for TestPanic {
    const DEF: CommandDef = CommandDef {
        name: c"HACK.TESTPANIC",
        flags: c"readonly fast",
        arity: 1,
        keys: None,
        summary: c"Test hook: panics inside the handler to exercise the panic guard.",
        complexity: c"O(1)",
        since: c"0.1.0",
        args: &[],
        ..CommandDef::BASE
    };

    #[allow(clippy::panic)]
    fn run(_ctx: &Ctx, args: &Args) -> Result<(), CmdError> {
        // Read past the end of argv through a checked accessor, then panic as a real bug would.
        let _ = args.len();
        panic!("deliberate panic from HACK.TESTPANIC");
    }
}
