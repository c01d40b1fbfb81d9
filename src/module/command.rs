//! Command registration and the guard every handler runs inside.
//!
//! Each command is a type implementing [`Command`]; [`register`] creates it with its flags
//! and legacy key range, then attaches the 7.0 command info: key specs (so read-only commands
//! are read-only for ACL `%R~` patterns and Cluster), arity, summary, complexity and
//! argument docs (so `COMMAND DOCS` and redis-cli hints work). A family's definitions are
//! written as data (`<family>/commands/<name>.json`) and generated into `CommandDef`
//! constants by the crate's `build.rs`.

use std::ffi::{CStr, CString};
use std::os::raw::c_int;
use std::ptr;

use redis_module::raw::{self, RedisModuleCtx, RedisModuleString, REDISMODULE_OK};

use super::args::Args;
use super::ctx::Ctx;
use super::error::CmdError;
use super::guard::guarded;

/// Which arguments are keys and how the command uses them.
#[derive(Clone, Copy)]
pub struct KeySpec {
    /// argv index of the first key (for [`KeySpec::keynum`]: of the key count).
    pub first: c_int,
    /// argv index of the last key; negative counts from the end (-1 = last argument).
    /// Unused for [`KeySpec::keynum`].
    pub last: c_int,
    pub step: c_int,
    /// `REDISMODULE_CMD_KEY_*` flags, e.g. [`KeySpec::UPDATE`] or [`KeySpec::READ`].
    pub flags: u32,
    /// The count of keys is the argument at `first` and the keys follow it, as with `EVAL`
    /// (`REDISMODULE_KSPEC_FK_KEYNUM`).
    pub keynum: bool,
}

impl KeySpec {
    /// Reads the value (`RO ACCESS`): read-only for ACL `%R~` patterns.
    pub const READ: u32 = raw::REDISMODULE_CMD_KEY_RO | raw::REDISMODULE_CMD_KEY_ACCESS;
    /// Reads and modifies the value in place (`RW ACCESS UPDATE`).
    pub const UPDATE: u32 = raw::REDISMODULE_CMD_KEY_RW
        | raw::REDISMODULE_CMD_KEY_ACCESS
        | raw::REDISMODULE_CMD_KEY_UPDATE;
    /// Reads the value and may delete the key (`RW ACCESS DELETE`).
    pub const TAKE: u32 = raw::REDISMODULE_CMD_KEY_RW
        | raw::REDISMODULE_CMD_KEY_ACCESS
        | raw::REDISMODULE_CMD_KEY_DELETE;
    /// Modifies without returning data (`RW UPDATE`): the internal effect commands.
    pub const APPLY: u32 = raw::REDISMODULE_CMD_KEY_RW | raw::REDISMODULE_CMD_KEY_UPDATE;
    /// Modifies without returning data and may delete the key (`RW DELETE`).
    pub const REMOVE: u32 = raw::REDISMODULE_CMD_KEY_RW | raw::REDISMODULE_CMD_KEY_DELETE;
    /// Replaces the value whatever it was (`OW UPDATE`).
    pub const OVERWRITE: u32 = raw::REDISMODULE_CMD_KEY_OW | raw::REDISMODULE_CMD_KEY_UPDATE;
    /// Creates the value (`OW INSERT`).
    pub const CREATE: u32 = raw::REDISMODULE_CMD_KEY_OW | raw::REDISMODULE_CMD_KEY_INSERT;

    /// `numkeys key [key ...]` with `numkeys` at argv\[`at`\], like `EVAL`'s: key
    /// positions depend on the arguments, so the legacy (first, last, step) triple cannot
    /// describe them; it is left 0, the server marks the command `movablekeys` and finds
    /// the keys from this spec (`COMMAND GETKEYS`, ACL). Redis 7.0's Cluster routing reads
    /// only the legacy triple or the `getkeys-api`, so such a command is also registered
    /// with `getkeys-api` and the trampoline answers key-position requests from this spec.
    pub const fn numkeys_at(at: c_int, flags: u32) -> Option<Self> {
        Some(KeySpec {
            first: at,
            last: 0,
            step: 1,
            flags,
            keynum: true,
        })
    }

    /// The legacy (first, last, step) of `RedisModule_CreateCommand`.
    fn legacy(&self) -> (c_int, c_int, c_int) {
        if self.keynum {
            (0, 0, 0)
        } else {
            (self.first, self.last, self.step)
        }
    }

    /// Keys from argv[`first`] to argv[`last`] (negative: counted from the end), each one.
    pub const fn range(first: c_int, last: c_int, flags: u32) -> Option<Self> {
        Some(KeySpec {
            first,
            last,
            step: 1,
            flags,
            keynum: false,
        })
    }
}

/// Argument kinds for `COMMAND DOCS`.
#[derive(Clone, Copy)]
pub enum ArgKind {
    Key,
    Integer,
    String,
    Token,
    OneOf,
    Block,
}

/// One argument's documentation.
pub struct ArgDoc {
    pub name: &'static CStr,
    pub kind: ArgKind,
    /// The keyword that introduces the argument (`COST` in `COST n`), if any.
    pub token: Option<&'static CStr>,
    pub optional: bool,
    pub multiple: bool,
    pub sub: &'static [ArgDoc],
}

/// Everything the server needs to know about one command.
pub struct CommandDef {
    pub name: &'static CStr,
    /// Redis command flags, e.g. `write deny-oom fast`.
    pub flags: &'static CStr,
    /// Redis arity: N exactly, or -N for at least N (the name counts).
    pub arity: c_int,
    pub keys: Option<KeySpec>,
    pub summary: &'static CStr,
    pub complexity: &'static CStr,
    pub since: &'static CStr,
    pub args: &'static [ArgDoc],
    /// Most arguments (name included) the command takes; 0: no upper bound beyond arity.
    pub max_argc: usize,
    /// Past the minimum, arguments come in groups of this many (2 for `member increment`
    /// pairs); 1: any count.
    pub argc_step: usize,
    /// For key positions a range key spec cannot express (`HACK.TSCOUNT key [key ...] from
    /// to [UNION]`): the argv indexes of the keys. The command then needs the
    /// `getkeys-api` flag, its key spec is marked `VARIABLE_FLAGS` so the server asks the
    /// command (Cluster slot checks, ACL, `COMMAND GETKEYS`), and each key is reported with
    /// the spec's flags.
    pub getkeys: Option<fn(&Args) -> std::ops::Range<usize>>,
}

impl CommandDef {
    /// The defaults of the fields most commands leave alone: `..CommandDef::BASE`.
    pub const BASE: CommandDef = CommandDef {
        name: c"",
        flags: c"",
        arity: 1,
        keys: None,
        summary: c"",
        complexity: c"O(1)",
        since: c"0.1.0",
        args: &[],
        max_argc: 0,
        argc_step: 1,
        getkeys: None,
    };

    /// The argument count the definition allows, checked once by the trampoline for every
    /// command (the server checks `arity` too, but not the upper bound or the grouping).
    pub fn check_arity(&self, argc: usize) -> Result<(), CmdError> {
        let min = self.arity.unsigned_abs() as usize;
        let ok = if self.arity >= 0 {
            argc == min
        } else {
            argc >= min
                && (self.max_argc == 0 || argc <= self.max_argc)
                && argc
                    .saturating_sub(min)
                    .checked_rem(self.argc_step)
                    .is_none_or(|r| r == 0)
        };
        if ok {
            Ok(())
        } else {
            Err(CmdError::arity(&self.name.to_string_lossy()))
        }
    }
}

/// A command: its definition and its handler. The handler sends its own reply on success;
/// an `Err` becomes an error reply. Handlers validate everything before writing anything.
pub trait Command {
    const DEF: CommandDef;
    fn run(ctx: &Ctx, args: &Args) -> Result<(), CmdError>;
}

/// The function the server calls. A panic inside the handler is caught here and answered
/// with an error reply: a panic crossing into C would abort redis-server.
///
/// # Safety
/// Only the server calls it (registered by [`register`]), with the live context of the
/// command call and `argc` valid argument strings in `argv`.
unsafe extern "C" fn trampoline<C: Command>(
    ctx: *mut RedisModuleCtx,
    argv: *mut *mut RedisModuleString,
    argc: c_int,
) -> c_int {
    let name = C::DEF.name;
    let ran = guarded(name.to_string_lossy(), || {
        // SAFETY: `ctx` is the live context of this command call; `c` stays in this closure.
        let c = unsafe { Ctx::from_raw(ctx) };
        // SAFETY: the server passes `argc` valid strings in `argv` for this call.
        let args = unsafe { Args::from_raw(argv, argc) };
        // Keys found by a function of the arguments (getkeys) or from a count (keynum)
        // answer the server's key-position requests; the command itself does not run then.
        // (Worked out only when the server asks: the ordinary call pays one check.)
        if C::DEF.getkeys.is_some() || C::DEF.keys.is_some_and(|k| k.keynum) {
            let keys = || match (C::DEF.getkeys, C::DEF.keys) {
                (Some(f), _) => f(&args),
                (None, Some(k)) => keynum_range(&args, k),
                (None, None) => 0..0,
            };
            if report_keys(&c, &C::DEF, keys) {
                return;
            }
        }
        let outcome = match C::DEF.check_arity(args.len()) {
            Ok(()) => C::run(&c, &args),
            Err(e) => Err(e),
        };
        if let Err(e) = outcome {
            c.reply_error(&e);
        }
    });
    if ran.is_none() {
        let msg = format!(
            "ERR internal error in {}; the module caught it and logged it (please report it)",
            name.to_string_lossy()
        );
        // SAFETY: `ctx` is the live context of this command call; the `Ctx` is a temporary.
        unsafe { Ctx::from_raw(ctx) }.reply_error(&CmdError::msg(msg));
    }
    REDISMODULE_OK as c_int
}

/// The keys of a keynum spec (`numkeys key [key ...]` with the count at argv[first]; keynum
/// specs here always have step 1), within the arguments there are: a bad count is the
/// command's own error to report.
fn keynum_range(args: &Args, k: KeySpec) -> std::ops::Range<usize> {
    let at = usize::try_from(k.first).unwrap_or(0);
    let n = args
        .i64_at(at)
        .ok()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0);
    let start = at.saturating_add(1);
    start..start.saturating_add(n).min(args.len())
}

/// Answer a key-position request (the server asking which arguments are keys) with
/// `keys`; false when this call is an ordinary command call.
fn report_keys(c: &Ctx, def: &CommandDef, keys: impl FnOnce() -> std::ops::Range<usize>) -> bool {
    // SAFETY: copies of API-table entries, written once at load (see `ffi::rm!`).
    let (Some(is_request), Some(at_pos)) =
        (unsafe { raw::RedisModule_IsKeysPositionRequest }, unsafe {
            raw::RedisModule_KeyAtPos
        })
    else {
        return false;
    };
    // SAFETY: the live context of this command call.
    if unsafe { is_request(c.raw()) } == 0 {
        return false;
    }
    let flags = def.keys.map_or(0, |k| k.flags) & !raw::REDISMODULE_CMD_KEY_VARIABLE_FLAGS;
    // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
    let with_flags = unsafe { raw::RedisModule_KeyAtPosWithFlags };
    for pos in keys() {
        let Ok(pos) = c_int::try_from(pos) else {
            break;
        };
        match with_flags {
            // SAFETY: live context of a key-position request; `pos` is an argv index.
            Some(f) => unsafe { f(c.raw(), pos, c_int::try_from(flags).unwrap_or(0)) },
            // SAFETY: as above.
            None => unsafe { at_pos(c.raw(), pos) },
        }
    }
    true
}

/// Register one command. Errors are logged by the caller, which fails the module load.
pub fn register<C: Command>(ctx: &Ctx) -> Result<(), String> {
    let ctx = ctx.raw();
    let def = &C::DEF;
    let name = def.name.to_string_lossy().into_owned();
    // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
    let create = unsafe { raw::RedisModule_CreateCommand }.ok_or("no RedisModule_CreateCommand")?;
    let (first, last, step) = match def.keys {
        Some(k) => k.legacy(),
        None => (0, 0, 0),
    };
    // Keys found from a count (keynum) also answer the server's key-position requests.
    let flags = if def.keys.is_some_and(|k| k.keynum) {
        CString::new(format!("{} getkeys-api", def.flags.to_string_lossy()))
            .map_err(|_| format!("bad flags for {name}"))?
    } else {
        CString::from(def.flags)
    };
    // SAFETY: `ctx` is the load context (commands can only be created in `OnLoad`); name and
    // flags are C strings that outlive the call (the server parses the flags, keeping
    // nothing), and `trampoline::<C>` has the signature the server calls.
    let status = unsafe {
        create(
            ctx,
            def.name.as_ptr(),
            Some(trampoline::<C>),
            flags.as_ptr(),
            first,
            last,
            step,
        )
    };
    if status != REDISMODULE_OK as c_int {
        return Err(format!("could not create command {name}"));
    }
    // Command info (key specs, docs) exists from Redis 7.0; older servers just skip it.
    // SAFETY: copies of API-table entries, written once at load (see `ffi::rm!`).
    let (Some(get), Some(set_info)) = (unsafe { raw::RedisModule_GetCommand }, unsafe {
        raw::RedisModule_SetCommandInfo
    }) else {
        return Ok(());
    };
    // SAFETY: the load context and a static C string (the name just created).
    let cmd = unsafe { get(ctx, def.name.as_ptr()) };
    if cmd.is_null() {
        return Err(format!("could not look up command {name}"));
    }
    let version = raw::RedisModuleCommandInfoVersion {
        version: 1,
        sizeof_historyentry: std::mem::size_of::<raw::RedisModuleCommandHistoryEntry>(),
        sizeof_keyspec: std::mem::size_of::<raw::RedisModuleCommandKeySpec>(),
        sizeof_arg: std::mem::size_of::<raw::RedisModuleCommandArg>(),
    };
    // Key specs: one spec, plus the all-zero terminator.
    let mut specs: Vec<raw::RedisModuleCommandKeySpec> = Vec::new();
    if let Some(k) = def.keys {
        let mut spec = key_spec(k);
        if def.getkeys.is_some() {
            spec.flags |= u64::from(raw::REDISMODULE_CMD_KEY_VARIABLE_FLAGS);
        }
        specs.push(spec);
    }
    // SAFETY: plain C data (pointers, integers, unions of integers): all-zero is valid, and
    // is the terminator the server looks for.
    specs.push(unsafe { std::mem::zeroed() });
    // Argument docs: the server copies everything during SetCommandInfo, so these buffers
    // only need to live until the call returns.
    let mut arena: Vec<Vec<raw::RedisModuleCommandArg>> = Vec::new();
    let args_ptr = build_args(def.args, &mut arena);
    let info = raw::RedisModuleCommandInfo {
        version: &version,
        summary: def.summary.as_ptr(),
        complexity: def.complexity.as_ptr(),
        since: def.since.as_ptr(),
        history: ptr::null_mut(),
        tips: ptr::null(),
        arity: def.arity,
        key_specs: specs.as_mut_ptr(),
        args: args_ptr,
    };
    // SAFETY: `cmd` is the non-null handle of our command; `info` and everything it points
    // to (`version`, `specs`, `arena`, static C strings) live until after the call, and the
    // server copies what it keeps.
    if unsafe { set_info(cmd, &info) } != REDISMODULE_OK as c_int {
        return Err(format!("could not set command info for {name}"));
    }
    set_acl_categories(ctx, cmd, def, &name);
    Ok(())
}

/// Whether the `@hacks` ACL category exists (added at load on Redis 7.4+).
pub static HACKS_CATEGORY: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// ACL categories from the command's flags (`@write`/`@read`, `@fast`, and `@hacks` where the
/// server has it), on servers that support categories for module commands (Redis 7.2+). On
/// 7.0 the API is absent and nothing happens; a refusal is logged, never fatal: key specs
/// and flags already protect the command.
fn set_acl_categories(
    ctx: *mut RedisModuleCtx,
    cmd: *mut raw::RedisModuleCommand,
    def: &CommandDef,
    name: &str,
) {
    // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
    let Some(set) = (unsafe { raw::RedisModule_SetCommandACLCategories }) else {
        return;
    };
    let flags = def.flags.to_string_lossy();
    let mut cats: Vec<&str> = Vec::new();
    for (flag, cat) in [("write", "write"), ("readonly", "read"), ("fast", "fast")] {
        if flags.split_whitespace().any(|f| f == flag) {
            cats.push(cat);
        }
    }
    if HACKS_CATEGORY.load(std::sync::atomic::Ordering::Relaxed) {
        cats.push("hacks");
    }
    let Ok(list) = CString::new(cats.join(" ")) else {
        return;
    };
    // SAFETY: `cmd` is the non-null handle `register` got from `GetCommand`; `list` is a
    // NUL-terminated string that outlives the call.
    if unsafe { set(cmd, list.as_ptr()) } != REDISMODULE_OK as c_int {
        log(
            // SAFETY: `ctx` is the load context `register` was called with.
            Some(&unsafe { Ctx::from_raw(ctx) }),
            c"warning",
            &format!(
                "hacks: could not set ACL categories '{}' on {name}",
                cats.join(" ")
            ),
        );
    }
}

fn key_spec(k: KeySpec) -> raw::RedisModuleCommandKeySpec {
    // SAFETY: the struct is plain data; zero is the documented "absent" value of each field.
    let mut s: raw::RedisModuleCommandKeySpec = unsafe { std::mem::zeroed() };
    s.flags = u64::from(k.flags);
    s.begin_search_type = raw::RedisModuleKeySpecBeginSearchType_REDISMODULE_KSPEC_BS_INDEX;
    s.bs.index.pos = k.first;
    if k.keynum {
        s.find_keys_type = raw::RedisModuleKeySpecFindKeysType_REDISMODULE_KSPEC_FK_KEYNUM;
        // The count is at `first` itself (offset 0), the first key right after it.
        s.fk.keynum.keynumidx = 0;
        s.fk.keynum.firstkey = 1;
        s.fk.keynum.keystep = k.step;
        return s;
    }
    s.find_keys_type = raw::RedisModuleKeySpecFindKeysType_REDISMODULE_KSPEC_FK_RANGE;
    // Both are small constants from a command definition.
    s.fk.range.lastkey = if k.last < 0 {
        k.last
    } else {
        k.last.saturating_sub(k.first)
    };
    s.fk.range.keystep = k.step;
    s.fk.range.limit = 0;
    s
}

/// Lay out `docs` as a NULL-name-terminated array (recursively for sub-arguments), keeping
/// every array alive in `arena`. Returns null for no arguments.
fn build_args(
    docs: &'static [ArgDoc],
    arena: &mut Vec<Vec<raw::RedisModuleCommandArg>>,
) -> *mut raw::RedisModuleCommandArg {
    if docs.is_empty() {
        return ptr::null_mut();
    }
    let mut out: Vec<raw::RedisModuleCommandArg> = Vec::with_capacity(docs.len().saturating_add(1));
    for d in docs {
        // SAFETY: plain C data (pointers and integers): all-zero is valid (null / absent).
        let mut a: raw::RedisModuleCommandArg = unsafe { std::mem::zeroed() };
        a.name = d.name.as_ptr();
        a.type_ = match d.kind {
            ArgKind::Key => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_KEY,
            ArgKind::Integer => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_INTEGER,
            ArgKind::String => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_STRING,
            ArgKind::Token => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_PURE_TOKEN,
            ArgKind::OneOf => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_ONEOF,
            ArgKind::Block => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_BLOCK,
        };
        a.key_spec_index = if matches!(d.kind, ArgKind::Key) {
            0
        } else {
            -1
        };
        a.token = d.token.map_or(ptr::null(), CStr::as_ptr);
        let mut flags = 0u32;
        if d.optional {
            flags |= raw::REDISMODULE_CMD_ARG_OPTIONAL;
        }
        if d.multiple {
            flags |= raw::REDISMODULE_CMD_ARG_MULTIPLE;
        }
        a.flags = flags as c_int;
        a.subargs = build_args(d.sub, arena);
        out.push(a);
    }
    // SAFETY: as above; the all-zero entry (null name) terminates the array.
    out.push(unsafe { std::mem::zeroed() });
    let p = out.as_mut_ptr();
    // Moving the Vec into the arena does not move its heap buffer, so `p` stays valid.
    arena.push(out);
    p
}

/// Log a line to the server log at `level` ("warning", "notice", ...), safely: the text is
/// passed as a `%s` argument, never as a format string. Without a context the line is
/// attributed to "module".
pub fn log(ctx: Option<&Ctx>, level: &CStr, text: &str) {
    let ctx = ctx.map_or(ptr::null_mut(), Ctx::raw);
    // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
    let Some(f) = (unsafe { raw::RedisModule_Log }) else {
        return;
    };
    let text = CString::new(text.replace('\0', "\\0")).unwrap_or_default();
    // SAFETY: `ctx` is null (allowed: the line is attributed to "module") or a live context;
    // level, format and text are NUL-terminated, and the one `%s` consumes `text`.
    unsafe { f(ctx, level.as_ptr(), c"%s".as_ptr(), text.as_ptr()) };
}
