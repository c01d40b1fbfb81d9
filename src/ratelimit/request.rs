//! Parsing and validating `HACK.RATEHIT key limit period_ms [COST n] [ALGO ...] [BURST n]
//! [OFFSET ms] [PEEK] [WAIT timeout_ms]` and the arguments of `HACK.QUOTA` after its keys
//! (`limit period_ms [ALGO ...] [BURST n] [OFFSET ms]` once per key, then `[COST n]
//! [PARTIAL] [PEEK] [WAIT timeout_ms]`) — pure, so every error case is unit-tested without
//! a server.

use crate::module::args::{is_keyword, missing_value, repeated_option, unknown_option};
use crate::module::error::{printable, CmdError};
use crate::module::num::parse_i64;

use super::math::{MAX_AMOUNT, MAX_HORIZON_MS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algo {
    Fixed,
    Sliding,
    Gcra,
}

impl Algo {
    pub fn name(self) -> &'static str {
        match self {
            Algo::Fixed => "FIXED",
            Algo::Sliding => "SLIDING",
            Algo::Gcra => "GCRA",
        }
    }
}

/// One limit: what a key is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub limit: i64,
    pub period_ms: i64,
    pub algo: Algo,
    /// Burst capacity (GCRA only; equals `limit` unless BURST is given).
    pub burst: i64,
    /// FIXED/SLIDING windows start at multiples of `period_ms` plus this (`0..period_ms`).
    pub offset_ms: i64,
}

impl Limit {
    /// A placeholder for fixed-size arrays (never used as a real limit).
    pub const NONE: Limit = Limit {
        limit: 1,
        period_ms: 1,
        algo: Algo::Fixed,
        burst: 1,
        offset_ms: 0,
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub lim: Limit,
    pub cost: i64,
    pub peek: bool,
    /// `WAIT timeout_ms` (0 = do not wait).
    pub wait_ms: i64,
}

/// Most words after the key: limit, period and six options (one with no value).
pub const MAX_WORDS: usize = 13;
/// Longest accepted WAIT (a day, as a sanity bound: a blocked client is no job queue).
pub const MAX_WAIT_MS: i64 = 86_400_000;

fn int(word: &[u8], what: &str, min: i64, max: i64) -> Result<i64, CmdError> {
    match parse_i64(word) {
        Some(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(CmdError::msg(format!(
            "ERR {what} must be an integer from {min} to {max}, got '{}'",
            printable(word)
        ))),
    }
}

fn parse_algo(value: &[u8]) -> Result<Algo, CmdError> {
    if is_keyword(value, "FIXED") {
        Ok(Algo::Fixed)
    } else if is_keyword(value, "SLIDING") {
        Ok(Algo::Sliding)
    } else if is_keyword(value, "GCRA") {
        Ok(Algo::Gcra)
    } else {
        Err(CmdError::msg(format!(
            "ERR ALGO must be FIXED, SLIDING or GCRA, got '{}'",
            printable(value)
        )))
    }
}

/// The options of one limit as given, before the cross-checks of [`finish`].
#[derive(Default)]
struct Draft {
    algo: Option<Algo>,
    burst: Option<i64>,
    offset: Option<i64>,
}

impl Draft {
    /// Take `opt` (and its `value`) if it is a limit option: the words used, 0 if not one.
    fn take(&mut self, opt: &[u8], value: Option<&[u8]>) -> Result<usize, CmdError> {
        let (name, taken) = if is_keyword(opt, "ALGO") {
            ("ALGO", self.algo.is_some())
        } else if is_keyword(opt, "BURST") {
            ("BURST", self.burst.is_some())
        } else if is_keyword(opt, "OFFSET") {
            ("OFFSET", self.offset.is_some())
        } else {
            return Ok(0);
        };
        if taken {
            return Err(repeated_option(name));
        }
        let value = value.ok_or_else(|| missing_value(name))?;
        match name {
            "ALGO" => self.algo = Some(parse_algo(value)?),
            "BURST" => self.burst = Some(int(value, "BURST", 1, MAX_AMOUNT)?),
            _ => self.offset = Some(int(value, "OFFSET", 0, MAX_HORIZON_MS)?),
        }
        Ok(2)
    }

    fn finish(self, limit: i64, period_ms: i64) -> Result<Limit, CmdError> {
        let algo = self.algo.unwrap_or(Algo::Fixed);
        if self.burst.is_some() && algo != Algo::Gcra {
            return Err(CmdError::Static("ERR BURST applies only to ALGO GCRA"));
        }
        if self.offset.is_some() && algo == Algo::Gcra {
            return Err(CmdError::Static(
                "ERR OFFSET applies only to ALGO FIXED and SLIDING (GCRA has no windows)",
            ));
        }
        let offset_ms = self.offset.unwrap_or(0);
        if offset_ms >= period_ms {
            return Err(CmdError::msg(format!(
                "ERR OFFSET must be from 0 to period_ms - 1 ({}), got {offset_ms}",
                period_ms.saturating_sub(1)
            )));
        }
        let burst = self.burst.unwrap_or(limit);
        // GCRA needs BURST * period / limit ms to drain a full bucket; keep it bounded like the
        // period itself so every expiry fits the server's clock range.
        if algo == Algo::Gcra
            // Both products are of two i64 values, far inside i128.
            && i128::from(burst).saturating_mul(i128::from(period_ms))
                > i128::from(MAX_HORIZON_MS).saturating_mul(i128::from(limit))
        {
            return Err(CmdError::msg(format!(
                "ERR BURST * period_ms / limit must be at most {MAX_HORIZON_MS} ms"
            )));
        }
        Ok(Limit {
            limit,
            period_ms,
            algo,
            burst,
            offset_ms,
        })
    }
}

fn limit_and_period(limit_w: &[u8], period_w: &[u8]) -> Result<(i64, i64), CmdError> {
    Ok((
        int(limit_w, "limit", 1, MAX_AMOUNT)?,
        int(period_w, "period_ms", 1, MAX_HORIZON_MS)?,
    ))
}

/// The call-wide options: COST, PEEK, WAIT, and PARTIAL where it is offered.
#[derive(Default)]
struct CallOpts {
    cost: Option<i64>,
    peek: bool,
    partial: bool,
    wait: Option<i64>,
}

impl CallOpts {
    /// Take `opt` (and its `value`) if it is a call option: the words used, 0 if not one.
    fn take(
        &mut self,
        opt: &[u8],
        value: Option<&[u8]>,
        with_partial: bool,
    ) -> Result<usize, CmdError> {
        if is_keyword(opt, "PEEK") {
            if self.peek {
                return Err(repeated_option("PEEK"));
            }
            self.peek = true;
            return Ok(1);
        }
        if with_partial && is_keyword(opt, "PARTIAL") {
            if self.partial {
                return Err(repeated_option("PARTIAL"));
            }
            self.partial = true;
            return Ok(1);
        }
        let (name, slot) = if is_keyword(opt, "COST") {
            ("COST", &mut self.cost)
        } else if is_keyword(opt, "WAIT") {
            ("WAIT", &mut self.wait)
        } else {
            return Ok(0);
        };
        if slot.is_some() {
            return Err(repeated_option(name));
        }
        let value = value.ok_or_else(|| missing_value(name))?;
        *slot = Some(if name == "COST" {
            int(value, "COST", -MAX_AMOUNT, MAX_AMOUNT)?
        } else {
            int(value, "WAIT timeout_ms", 0, MAX_WAIT_MS)?
        });
        Ok(2)
    }
}

/// `words` are the arguments after the key.
pub fn parse(words: &[&[u8]]) -> Result<Request, CmdError> {
    let (limit_w, period_w, opts) = match words {
        [l, p, rest @ ..] => (*l, *p, rest),
        _ => return Err(CmdError::arity("HACK.RATEHIT")),
    };
    let (limit, period_ms) = limit_and_period(limit_w, period_w)?;
    let mut draft = Draft::default();
    let mut call = CallOpts::default();
    let mut i = 0usize;
    while let Some(&opt) = opts.get(i) {
        let value = opts.get(i.saturating_add(1)).copied();
        let mut used = draft.take(opt, value)?;
        if used == 0 {
            used = call.take(opt, value, false)?;
        }
        if used == 0 {
            return Err(unknown_option(opt));
        }
        i = i.saturating_add(used);
    }
    Ok(Request {
        lim: draft.finish(limit, period_ms)?,
        cost: call.cost.unwrap_or(1),
        peek: call.peek,
        wait_ms: call.wait.unwrap_or(0),
    })
}

/// Most keys one HACK.QUOTA call may name (a fixed-size array holds them: no allocation).
pub const MAX_KEYS: usize = 16;

/// A parsed HACK.QUOTA call (the keys themselves stay in argv).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub n: usize,
    pub limits: [Limit; MAX_KEYS],
    pub cost: i64,
    pub partial: bool,
    pub peek: bool,
    pub wait_ms: i64,
}

impl Quota {
    pub fn limits(&self) -> &[Limit] {
        self.limits.get(..self.n).unwrap_or(&[])
    }
}

/// `numkeys` as given at argv\[1\], checked against the argument count (`argc` includes the
/// command name): at least one key, and a limit group (two words at least) for each.
pub fn numkeys(word: &[u8], argc: usize) -> Result<usize, CmdError> {
    let n = match parse_i64(word) {
        Some(v) if v >= 1 => usize::try_from(v).unwrap_or(usize::MAX),
        _ => {
            return Err(CmdError::msg(format!(
                "ERR numkeys must be a positive integer, got '{}'",
                printable(word)
            )))
        }
    };
    if n > MAX_KEYS {
        return Err(CmdError::msg(format!(
            "ERR numkeys must be at most {MAX_KEYS}, got {n}"
        )));
    }
    // name, numkeys, n keys, n * (limit period_ms).
    if n.saturating_mul(3).saturating_add(2) > argc {
        return Err(CmdError::Static(
            "ERR numkeys is larger than the arguments allow (each key needs a 'limit period_ms' group)",
        ));
    }
    Ok(n)
}

/// `words` are the arguments after the `n` keys: exactly `n` limit groups, then the call
/// options. A group ends at the first word that is not ALGO, BURST or OFFSET.
pub fn parse_quota(n: usize, words: &[&[u8]]) -> Result<Quota, CmdError> {
    parse_quota_with(n, |i| words.get(i).copied())
}

/// [`parse_quota`] reading word `i` through `word` (the command reads argv in place, with no
/// copy of the words).
pub fn parse_quota_with<'a>(
    n: usize,
    word: impl Fn(usize) -> Option<&'a [u8]>,
) -> Result<Quota, CmdError> {
    let mut q = Quota {
        n,
        limits: [Limit::NONE; MAX_KEYS],
        cost: 1,
        partial: false,
        peek: false,
        wait_ms: 0,
    };
    let short = |got: usize| {
        CmdError::msg(format!(
            "ERR expected {n} 'limit period_ms' groups (one per key), got {got}"
        ))
    };
    let mut i = 0usize;
    for (g, slot) in q.limits.iter_mut().enumerate().take(n) {
        let (Some(l), Some(p)) = (word(i), word(i.saturating_add(1))) else {
            return Err(short(g));
        };
        if is_call_option(l) {
            return Err(short(g));
        }
        let (limit, period_ms) = limit_and_period(l, p)?;
        i = i.saturating_add(2);
        let mut draft = Draft::default();
        while let Some(opt) = word(i) {
            let used = draft.take(opt, word(i.saturating_add(1)))?;
            if used == 0 {
                break;
            }
            i = i.saturating_add(used);
        }
        *slot = draft.finish(limit, period_ms)?;
    }
    let mut call = CallOpts::default();
    while let Some(opt) = word(i) {
        let used = call.take(opt, word(i.saturating_add(1)), true)?;
        if used == 0 {
            return Err(if parse_i64(opt).is_some() {
                CmdError::msg(format!(
                    "ERR more limit groups than numkeys ({n}): unexpected '{}'",
                    printable(opt)
                ))
            } else {
                unknown_option(opt)
            });
        }
        i = i.saturating_add(used);
    }
    q.cost = call.cost.unwrap_or(1);
    q.partial = call.partial;
    q.peek = call.peek;
    q.wait_ms = call.wait.unwrap_or(0);
    Ok(q)
}

fn is_call_option(w: &[u8]) -> bool {
    ["COST", "PARTIAL", "PEEK", "WAIT"]
        .iter()
        .any(|k| is_keyword(w, k))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(words: &[&str]) -> Result<Request, CmdError> {
        let w: Vec<&[u8]> = words.iter().map(|s| s.as_bytes()).collect();
        parse(&w)
    }

    #[test]
    fn defaults_and_options() {
        let r = p(&["10", "1000"]).unwrap();
        assert_eq!(
            r,
            Request {
                lim: Limit {
                    limit: 10,
                    period_ms: 1000,
                    algo: Algo::Fixed,
                    burst: 10,
                    offset_ms: 0
                },
                cost: 1,
                peek: false,
                wait_ms: 0
            }
        );
        let r = p(&[
            "10", "1000", "peek", "algo", "gcra", "burst", "20", "cost", "-3",
        ])
        .unwrap();
        assert_eq!(
            r,
            Request {
                lim: Limit {
                    limit: 10,
                    period_ms: 1000,
                    algo: Algo::Gcra,
                    burst: 20,
                    offset_ms: 0
                },
                cost: -3,
                peek: true,
                wait_ms: 0
            }
        );
        assert_eq!(
            p(&["1", "1", "ALGO", "Sliding"]).unwrap().lim.algo,
            Algo::Sliding
        );
    }

    #[test]
    fn errors() {
        let cases: &[(&[&str], &str)] = &[
            (&["10"], "wrong number of arguments"),
            (&["0", "1000"], "limit must be"),
            (&["x", "1000"], "limit must be"),
            (&["-1", "1000"], "limit must be"),
            (&["10", "0"], "period_ms must be"),
            (&["10", "1.5"], "period_ms must be"),
            (&["10", "99999999999999999999"], "period_ms must be"),
            (&["10", "1000", "COST"], "COST needs a value"),
            (&["10", "1000", "COST", "x"], "COST must be"),
            (
                &["10", "1000", "COST", "1", "COST", "1"],
                "COST given more than once",
            ),
            (&["10", "1000", "PEEK", "PEEK"], "PEEK given more than once"),
            (&["10", "1000", "ALGO", "LEAKY"], "ALGO must be"),
            (
                &["10", "1000", "ALGO", "GCRA", "ALGO", "GCRA"],
                "ALGO given more than once",
            ),
            (
                &["10", "1000", "BURST", "5"],
                "BURST applies only to ALGO GCRA",
            ),
            (
                &["10", "1000", "ALGO", "FIXED", "BURST", "5"],
                "BURST applies only",
            ),
            (
                &["10", "1000", "ALGO", "GCRA", "BURST", "0"],
                "BURST must be",
            ),
            (&["10", "1000", "FOO"], "unknown option 'FOO'"),
            (
                &["1", "10000000000000", "ALGO", "GCRA", "BURST", "2"],
                "BURST * period_ms / limit",
            ),
            (
                &["10", "1000", "OFFSET", "1000"],
                "OFFSET must be from 0 to period_ms - 1",
            ),
            (&["10", "1000", "OFFSET", "-1"], "OFFSET must be"),
            (
                &["10", "1000", "ALGO", "GCRA", "OFFSET", "5"],
                "OFFSET applies only",
            ),
            (
                &["10", "1000", "OFFSET", "5", "OFFSET", "5"],
                "OFFSET given more than once",
            ),
            (&["10", "1000", "WAIT"], "WAIT needs a value"),
            (&["10", "1000", "WAIT", "-1"], "WAIT timeout_ms must be"),
            (&["10", "1000", "PARTIAL"], "unknown option 'PARTIAL'"),
        ];
        for (words, want) in cases {
            let e = p(words).unwrap_err();
            assert!(e.text().starts_with("ERR "), "{e}");
            assert!(e.text().contains(want), "{words:?}: {e}");
        }
    }

    fn q(n: usize, words: &[&str]) -> Result<Quota, CmdError> {
        let w: Vec<&[u8]> = words.iter().map(|s| s.as_bytes()).collect();
        parse_quota(n, &w)
    }

    #[test]
    fn offset_and_wait() {
        let r = p(&["10", "1000", "OFFSET", "250", "WAIT", "500"]).unwrap();
        assert_eq!((r.lim.offset_ms, r.wait_ms), (250, 500));
        let r = p(&["10", "1000", "ALGO", "SLIDING", "OFFSET", "999"]).unwrap();
        assert_eq!(r.lim.offset_ms, 999);
    }

    #[test]
    fn quota_groups_and_options() {
        let r = q(
            3,
            &[
                "10", "1000", "100", "60000", "ALGO", "SLIDING", "OFFSET", "7", "5", "100", "ALGO",
                "GCRA", "BURST", "9", "COST", "2", "PARTIAL", "PEEK", "WAIT", "50",
            ],
        )
        .unwrap();
        assert_eq!(r.limits().len(), 3);
        assert_eq!(r.limits()[0].algo, Algo::Fixed);
        assert_eq!(
            (r.limits()[1].algo, r.limits()[1].offset_ms),
            (Algo::Sliding, 7)
        );
        assert_eq!((r.limits()[2].algo, r.limits()[2].burst), (Algo::Gcra, 9));
        assert_eq!((r.cost, r.partial, r.peek, r.wait_ms), (2, true, true, 50));
        let r = q(1, &["3", "100"]).unwrap();
        assert_eq!((r.cost, r.partial, r.peek, r.wait_ms), (1, false, false, 0));
    }

    #[test]
    fn quota_errors() {
        let cases: &[(usize, &[&str], &str)] = &[
            (2, &["10", "1000"], "expected 2 'limit period_ms' groups"),
            (
                2,
                &["10", "1000", "COST", "1"],
                "expected 2 'limit period_ms' groups",
            ),
            (
                1,
                &["10", "1000", "5", "100"],
                "more limit groups than numkeys",
            ),
            (1, &["10", "1000", "FOO"], "unknown option 'FOO'"),
            (
                1,
                &["10", "1000", "PARTIAL", "PARTIAL"],
                "PARTIAL given more than once",
            ),
            (1, &["10", "1000", "BURST", "3"], "BURST applies only"),
            (
                1,
                &["10", "1000", "ALGO", "GCRA", "OFFSET", "3"],
                "OFFSET applies only",
            ),
            (
                1,
                &["10", "1000", "ALGO", "FIXED", "ALGO", "FIXED"],
                "ALGO given more than once",
            ),
            (1, &["0", "1000"], "limit must be"),
            (1, &["10", "1000", "COST", "x"], "COST must be"),
        ];
        for (n, words, want) in cases {
            let e = q(*n, words).unwrap_err();
            assert!(e.text().starts_with("ERR "), "{e}");
            assert!(e.text().contains(want), "{words:?}: {e}");
        }
        assert!(numkeys(b"0", 10).is_err());
        assert!(numkeys(b"x", 10).is_err());
        assert!(numkeys(b"17", 100).is_err());
        assert!(numkeys(b"3", 10).is_err(), "3 keys need 3 + 6 words");
        assert_eq!(numkeys(b"3", 11).unwrap(), 3);
    }
}
