//! A row's cells packed into one allocation, in plain Rust. A pending row is held by the
//! thousand (Sentry buffers every group seen in the last minutes), so its size is the
//! buffer's memory: one boxed byte string per row instead of a vector, a box per column
//! name and a box per SET value (seven allocations for a four-column row, each rounded up to
//! its size class) takes a Sentry-shaped row from ~640 to ~450 heap bytes.
//!
//! Layout, cell after cell in first-update order: `op` (1 byte, [`Op::code`]), the name's
//! length (1 byte: names are at most 64 bytes) and the name, then the value: 8 bytes
//! (little-endian `i64`) for INCR/MAX/MIN, or a 4-byte little-endian length and the bytes for
//! SET (values are capped far below 4 GiB). Only [`Packed::build`] writes it; reading is
//! still checked (a cut-off cell ends the iteration, never a panic).

use super::row::{CellRef, Op};

#[derive(Clone, PartialEq, Eq)]
pub struct Packed(Box<[u8]>);

/// One cell as it is packed: (column, op, value).
pub type PackedCell<'a> = (&'a [u8], Op, CellRef<'a>);

fn cell_len(c: &PackedCell<'_>) -> usize {
    let value = match c.2 {
        CellRef::Int(_) => 8,
        CellRef::Bytes(b) => b.len().saturating_add(4),
    };
    c.0.len().saturating_add(2).saturating_add(value)
}

impl Packed {
    /// Pack `cells` (column names of at most 255 bytes and SET values under 4 GiB: the
    /// callers' caps are far lower; a longer one is cut, never written past).
    pub fn build(cells: &[PackedCell<'_>]) -> Packed {
        let len = cells.iter().map(cell_len).fold(0, usize::saturating_add);
        let mut out = Vec::with_capacity(len);
        for &(name, op, value) in cells {
            let name = name.get(..usize::from(u8::MAX)).unwrap_or(name);
            out.push(op.code() as u8);
            out.push(name.len() as u8);
            out.extend_from_slice(name);
            match value {
                CellRef::Int(v) => out.extend_from_slice(&v.to_le_bytes()),
                CellRef::Bytes(b) => {
                    let b = b.get(..u32::MAX as usize).unwrap_or(b);
                    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
                    out.extend_from_slice(b);
                }
            }
        }
        Packed(out.into_boxed_slice())
    }

    pub fn iter(&self) -> PackedIter<'_> {
        PackedIter { rest: &self.0 }
    }

    /// Columns held.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Bytes of the one allocation.
    pub fn byte_len(&self) -> usize {
        self.0.len()
    }
}

impl std::fmt::Debug for Packed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

pub struct PackedIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for PackedIter<'a> {
    type Item = PackedCell<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&op, rest) = self.rest.split_first()?;
        let (&n, rest) = rest.split_first()?;
        let (name, rest) = rest.split_at_checked(usize::from(n))?;
        let op = Op::from_code(u64::from(op))?;
        let (value, rest) = if op == Op::Set {
            let (len, rest) = rest.split_first_chunk::<4>()?;
            let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
            let (b, rest) = rest.split_at_checked(len)?;
            (CellRef::Bytes(b), rest)
        } else {
            let (v, rest) = rest.split_first_chunk::<8>()?;
            (CellRef::Int(i64::from_le_bytes(*v)), rest)
        };
        self.rest = rest;
        Some((name, op, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_kind_in_order() {
        let cells: Vec<PackedCell<'_>> = vec![
            (b"times_seen", Op::Incr, CellRef::Int(-3)),
            (b"last_seen", Op::Max, CellRef::Int(i64::MAX)),
            (b"first", Op::Min, CellRef::Int(i64::MIN)),
            (b"message", Op::Set, CellRef::Bytes(b"hello")),
            (b"empty", Op::Set, CellRef::Bytes(b"")),
        ];
        let p = Packed::build(&cells);
        assert_eq!(p.iter().collect::<Vec<_>>(), cells);
        assert_eq!(p.len(), 5);
        // 2 header bytes per cell, the names, 3 x 8 integer bytes, 2 x 4 length bytes, 5.
        let names: usize = cells.iter().map(|c| c.0.len()).sum();
        assert_eq!(p.byte_len(), 10 + names + 24 + 8 + 5);
    }

    #[test]
    fn a_cut_off_cell_ends_the_iteration() {
        let p = Packed::build(&[
            (b"a", Op::Incr, CellRef::Int(1)),
            (b"b", Op::Set, CellRef::Bytes(b"xyz")),
        ]);
        for cut in 0..p.byte_len() {
            let short = Packed(p.0.get(..cut).unwrap().into());
            assert!(short.iter().count() <= 1, "cut at {cut}");
        }
    }
}
