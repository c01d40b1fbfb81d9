//! A batch handed out by `HACK.DRAIN`, read from its RESP2 reply: plain members as
//! integers, rows (`HACK.BUFUPDATE`) as flat `column, [op, value], ...` arrays.

use redis::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    Incr,
    Set,
    Max,
    Min,
}

/// Each op with the word HACK.DRAIN replies spell it with, in declaration order.
const OP_WORDS: [(Op, &str); 4] = [
    (Op::Incr, "INCR"),
    (Op::Set, "SET"),
    (Op::Max, "MAX"),
    (Op::Min, "MIN"),
];

impl Op {
    pub fn parse(word: &[u8]) -> Option<Op> {
        let (op, _) = OP_WORDS.iter().find(|(_, w)| w.as_bytes() == word)?;
        Some(*op)
    }

    pub fn word(self) -> &'static str {
        OP_WORDS[self as usize].1
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CellVal {
    Int(i64),
    Bytes(Vec<u8>),
}

/// One column of a drained row.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cell {
    pub column: Vec<u8>,
    pub op: Op,
    pub value: CellVal,
}

/// A drained value: a plain member's integer, or a row's columns in order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Entry {
    Plain(i64),
    Row(Vec<Cell>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    pub id: i64,
    pub deliveries: i64,
    pub entries: Vec<(Vec<u8>, Entry)>,
}

fn row_from(flat: Vec<Value>) -> Option<Vec<Cell>> {
    if flat.is_empty() || !flat.len().is_multiple_of(2) {
        return None;
    }
    let mut cells = Vec::with_capacity(flat.len() / 2);
    let mut it = flat.into_iter();
    while let (Some(Value::BulkString(column)), Some(Value::Array(pair))) = (it.next(), it.next()) {
        let [op, v] = <[Value; 2]>::try_from(pair).ok()?;
        let Value::BulkString(op) = op else {
            return None;
        };
        let op = Op::parse(&op)?;
        let value = match (op, v) {
            (Op::Set, Value::BulkString(b)) => CellVal::Bytes(b),
            (Op::Incr | Op::Max | Op::Min, Value::Int(n)) => CellVal::Int(n),
            _ => return None,
        };
        cells.push(Cell { column, op, value });
    }
    (it.next().is_none() && !cells.is_empty()).then_some(cells)
}

/// `nil` → None; `[batch_id, delivery_count, [member, value, ...]]` → a batch.
pub fn from_reply(v: Value) -> Result<Option<Batch>, String> {
    let shape = |what: &str| format!("unexpected HACK.DRAIN reply ({what})");
    let parts = match v {
        Value::Nil => return Ok(None),
        Value::Array(parts) => parts,
        other => return Err(shape(&format!("{other:?}"))),
    };
    let [id, deliveries, flat] = <[Value; 3]>::try_from(parts)
        .map_err(|p| shape(&format!("{} elements instead of 3", p.len())))?;
    let (Value::Int(id), Value::Int(deliveries), Value::Array(flat)) = (id, deliveries, flat)
    else {
        return Err(shape("element types"));
    };
    if flat.len() % 2 != 0 {
        return Err(shape("odd number of member/value items"));
    }
    let mut entries = Vec::with_capacity(flat.len() / 2);
    let mut it = flat.into_iter();
    while let (Some(m), Some(v)) = (it.next(), it.next()) {
        match (m, v) {
            (Value::BulkString(m), Value::Int(v)) => entries.push((m, Entry::Plain(v))),
            (Value::BulkString(m), Value::Array(flat)) => match row_from(flat) {
                Some(cells) => entries.push((m, Entry::Row(cells))),
                None => return Err(shape("a row entry")),
            },
            (m, v) => return Err(shape(&format!("entry {m:?} {v:?}"))),
        }
    }
    Ok(Some(Batch {
        id,
        deliveries,
        entries,
    }))
}

/// A fingerprint of the entries (FNV-1a over the sorted member/value pairs), recorded with
/// the batch id: a redelivery must match it. A mismatch means a batch id was reused (Redis
/// lost its data), which would otherwise be skipped as "already applied" and silently lost.
///
/// Plain entries hash as they always did (batches recorded before rows existed still match);
/// a row adds a marker and its cells, length-prefixed.
pub fn checksum(entries: &[(Vec<u8>, Entry)]) -> i64 {
    let mut sorted: Vec<&(Vec<u8>, Entry)> = entries.iter().collect();
    sorted.sort();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    for (m, v) in sorted {
        eat(&(m.len() as u64).to_le_bytes());
        eat(m);
        match v {
            Entry::Plain(v) => eat(&v.to_le_bytes()),
            Entry::Row(cells) => {
                eat(b"\xffrow");
                eat(&(cells.len() as u64).to_le_bytes());
                for c in cells {
                    eat(&(c.column.len() as u64).to_le_bytes());
                    eat(&c.column);
                    eat(c.op.word().as_bytes());
                    match &c.value {
                        CellVal::Int(n) => eat(&n.to_le_bytes()),
                        CellVal::Bytes(b) => {
                            eat(&(b.len() as u64).to_le_bytes());
                            eat(b);
                        }
                    }
                }
            }
        }
    }
    h as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn op_words_both_ways() {
        for (op, word) in OP_WORDS {
            assert_eq!(op.word(), word);
            assert_eq!(Op::parse(word.as_bytes()), Some(op));
        }
        assert_eq!(Op::parse(b"incr"), None);
    }

    #[test]
    fn parses_nil_and_batches() {
        assert_eq!(from_reply(Value::Nil), Ok(None));
        let v = Value::Array(vec![
            Value::Int(7),
            Value::Int(2),
            Value::Array(vec![bulk("1"), Value::Int(5), bulk("x"), Value::Int(-3)]),
        ]);
        assert_eq!(
            from_reply(v),
            Ok(Some(Batch {
                id: 7,
                deliveries: 2,
                entries: vec![
                    (b"1".to_vec(), Entry::Plain(5)),
                    (b"x".to_vec(), Entry::Plain(-3))
                ]
            }))
        );
    }

    #[test]
    fn rejects_other_shapes() {
        for v in [
            Value::Int(1),
            Value::Array(vec![Value::Int(1), Value::Int(1)]),
            Value::Array(vec![Value::Int(1), Value::Int(1), Value::Int(1)]),
            Value::Array(vec![
                Value::Int(1),
                Value::Int(1),
                Value::Array(vec![bulk("a")]),
            ]),
            Value::Array(vec![
                Value::Int(1),
                Value::Int(1),
                Value::Array(vec![bulk("a"), bulk("1")]),
            ]),
        ] {
            assert!(from_reply(v.clone()).is_err(), "{v:?}");
        }
    }

    #[test]
    fn checksum_ignores_order_but_not_contents() {
        let p = Entry::Plain;
        let a = vec![(b"1".to_vec(), p(5)), (b"2".to_vec(), p(7))];
        let b = vec![(b"2".to_vec(), p(7)), (b"1".to_vec(), p(5))];
        assert_eq!(checksum(&a), checksum(&b));
        assert_ne!(
            checksum(&a),
            checksum(&[(b"1".to_vec(), p(5)), (b"2".to_vec(), p(8))])
        );
        assert_ne!(checksum(&a), checksum(&a[..1]));
        // Length-prefixed: ("ab", "") differs from ("a", "b").
        assert_ne!(
            checksum(&[(b"ab".to_vec(), p(0)), (b"".to_vec(), p(0))]),
            checksum(&[(b"a".to_vec(), p(0)), (b"b".to_vec(), p(0))])
        );
    }

    #[test]
    fn parses_rows_and_keeps_plain_checksums() {
        let row = Value::Array(vec![
            bulk("n"),
            Value::Array(vec![bulk("INCR"), Value::Int(2)]),
            bulk("m"),
            Value::Array(vec![bulk("SET"), bulk("hi")]),
        ]);
        let v = Value::Array(vec![
            Value::Int(7),
            Value::Int(1),
            Value::Array(vec![bulk("1"), row, bulk("2"), Value::Int(3)]),
        ]);
        let b = from_reply(v).unwrap().unwrap();
        assert_eq!(
            b.entries[0].1,
            Entry::Row(vec![
                Cell {
                    column: b"n".to_vec(),
                    op: Op::Incr,
                    value: CellVal::Int(2)
                },
                Cell {
                    column: b"m".to_vec(),
                    op: Op::Set,
                    value: CellVal::Bytes(b"hi".to_vec())
                }
            ])
        );
        // The checksum of a plain batch is the one recorded before rows existed.
        assert_eq!(checksum(&[(b"1".to_vec(), Entry::Plain(5))]), {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in (1u64.to_le_bytes().iter())
                .chain(b"1".iter())
                .chain(5i64.to_le_bytes().iter())
            {
                h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
            }
            h as i64
        });
        let bad = Value::Array(vec![
            bulk("n"),
            Value::Array(vec![bulk("SET"), Value::Int(1)]),
        ]);
        assert!(from_reply(Value::Array(vec![
            Value::Int(7),
            Value::Int(1),
            Value::Array(vec![bulk("1"), bad]),
        ]))
        .is_err());
    }
}
