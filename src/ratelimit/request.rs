//! Parsing and validating `HACK.RATEHIT key limit period_ms [COST n] [ALGO ...] [BURST n]
//! [PEEK]` — pure, so every error case is unit-tested without a server.

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub limit: i64,
    pub period_ms: i64,
    pub cost: i64,
    pub algo: Algo,
    /// Burst capacity (GCRA only; equals `limit` unless BURST is given).
    pub burst: i64,
    pub peek: bool,
}

/// Most words after the key: limit, period and four options (one with no value).
pub const MAX_WORDS: usize = 9;

fn int(word: &[u8], what: &str, min: i64, max: i64) -> Result<i64, CmdError> {
    match parse_i64(word) {
        Some(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(CmdError::msg(format!(
            "ERR {what} must be an integer from {min} to {max}, got '{}'",
            printable(word)
        ))),
    }
}

/// `words` are the arguments after the key.
pub fn parse(words: &[&[u8]]) -> Result<Request, CmdError> {
    let (limit_w, period_w, opts) = match words {
        [l, p, rest @ ..] => (*l, *p, rest),
        _ => return Err(CmdError::arity("HACK.RATEHIT")),
    };
    let limit = int(limit_w, "limit", 1, MAX_AMOUNT)?;
    let period_ms = int(period_w, "period_ms", 1, MAX_HORIZON_MS)?;
    let (mut cost, mut algo, mut burst, mut peek) = (None, None, None, false);
    let mut i = 0;
    while let Some(&opt) = opts.get(i) {
        i = i.saturating_add(1);
        if is_keyword(opt, "PEEK") {
            if peek {
                return Err(repeated_option("PEEK"));
            }
            peek = true;
            continue;
        }
        let (name, slot_taken) = if is_keyword(opt, "COST") {
            ("COST", cost.is_some())
        } else if is_keyword(opt, "ALGO") {
            ("ALGO", algo.is_some())
        } else if is_keyword(opt, "BURST") {
            ("BURST", burst.is_some())
        } else {
            return Err(unknown_option(opt));
        };
        if slot_taken {
            return Err(repeated_option(name));
        }
        let value = *opts.get(i).ok_or_else(|| missing_value(name))?;
        i = i.saturating_add(1);
        match name {
            "COST" => cost = Some(int(value, "COST", -MAX_AMOUNT, MAX_AMOUNT)?),
            "BURST" => burst = Some(int(value, "BURST", 1, MAX_AMOUNT)?),
            _ => {
                algo = Some(if is_keyword(value, "FIXED") {
                    Algo::Fixed
                } else if is_keyword(value, "SLIDING") {
                    Algo::Sliding
                } else if is_keyword(value, "GCRA") {
                    Algo::Gcra
                } else {
                    return Err(CmdError::msg(format!(
                        "ERR ALGO must be FIXED, SLIDING or GCRA, got '{}'",
                        printable(value)
                    )));
                })
            }
        }
    }
    let algo = algo.unwrap_or(Algo::Fixed);
    if burst.is_some() && algo != Algo::Gcra {
        return Err(CmdError::Static("ERR BURST applies only to ALGO GCRA"));
    }
    let burst = burst.unwrap_or(limit);
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
    Ok(Request {
        limit,
        period_ms,
        cost: cost.unwrap_or(1),
        algo,
        burst,
        peek,
    })
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
                limit: 10,
                period_ms: 1000,
                cost: 1,
                algo: Algo::Fixed,
                burst: 10,
                peek: false
            }
        );
        let r = p(&[
            "10", "1000", "peek", "algo", "gcra", "burst", "20", "cost", "-3",
        ])
        .unwrap();
        assert_eq!(
            r,
            Request {
                limit: 10,
                period_ms: 1000,
                cost: -3,
                algo: Algo::Gcra,
                burst: 20,
                peek: true
            }
        );
        assert_eq!(
            p(&["1", "1", "ALGO", "Sliding"]).unwrap().algo,
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
        ];
        for (words, want) in cases {
            let e = p(words).unwrap_err();
            assert!(e.text().starts_with("ERR "), "{e}");
            assert!(e.text().contains(want), "{words:?}: {e}");
        }
    }
}
