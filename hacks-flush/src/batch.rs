//! A batch handed out by `HACK.DRAIN`, read from its RESP2 reply.

use redis::Value;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    pub id: i64,
    pub deliveries: i64,
    pub entries: Vec<(Vec<u8>, i64)>,
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
            (Value::BulkString(m), Value::Int(v)) => entries.push((m, v)),
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
pub fn checksum(entries: &[(Vec<u8>, i64)]) -> i64 {
    let mut sorted: Vec<&(Vec<u8>, i64)> = entries.iter().collect();
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
        eat(&v.to_le_bytes());
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
                entries: vec![(b"1".to_vec(), 5), (b"x".to_vec(), -3)]
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
        let a = vec![(b"1".to_vec(), 5), (b"2".to_vec(), 7)];
        let b = vec![(b"2".to_vec(), 7), (b"1".to_vec(), 5)];
        assert_eq!(checksum(&a), checksum(&b));
        assert_ne!(
            checksum(&a),
            checksum(&[(b"1".to_vec(), 5), (b"2".to_vec(), 8)])
        );
        assert_ne!(checksum(&a), checksum(&a[..1]));
        // Length-prefixed: ("ab", "") differs from ("a", "b").
        assert_ne!(
            checksum(&[(b"ab".to_vec(), 0), (b"".to_vec(), 0)]),
            checksum(&[(b"a".to_vec(), 0), (b"b".to_vec(), 0)])
        );
    }
}
